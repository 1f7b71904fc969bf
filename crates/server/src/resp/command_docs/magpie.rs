//! Argument trees of magpie's own commands and options, which no
//! redis-server can generate: the tag commands, and SET's TAGS option
//! (this row replaces the generated one for `set`). Kept by hand; sorted
//! by name like the generated table.

use super::Arg;
use super::Kind::*;

const fn a(name: &'static str, kind: super::Kind) -> Arg {
    Arg::new(name, kind)
}

/// `(command name, its arguments)`, sorted by name.
#[rustfmt::skip]
pub const ARGUMENTS: &[(&str, &[Arg])] = &[
    ("invalidate", &[]),
    ("invalidate|help", &[]),
    ("invalidate|prefix", &[
        a("prefix", Str).multiple(),
    ]),
    ("invalidate|tag", &[
        a("tag", Str).multiple(),
    ]),
    ("set", &[
        a("key", Key).key_spec(0),
        a("value", Str),
        a("condition", OneOf).since("2.6.12").optional().args(&[
            a("nx", Token).token("NX"),
            a("xx", Token).token("XX"),
        ]),
        a("get", Token).token("GET").since("6.2.0").optional(),
        a("expiration", OneOf).optional().args(&[
            a("seconds", Int).token("EX").since("2.6.12"),
            a("milliseconds", Int).token("PX").since("2.6.12"),
            a("unix-time-seconds", UnixTime).token("EXAT").since("6.2.0"),
            a("unix-time-milliseconds", UnixTime).token("PXAT").since("6.2.0"),
            a("keepttl", Token).token("KEEPTTL").since("6.0.0"),
        ]),
        a("tags", Block).optional().args(&[
            a("tags", Token).token("TAGS"),
            a("tag", Str).multiple(),
        ]),
    ]),
    ("tag", &[]),
    ("tag|add", &[
        a("key", Key).key_spec(0),
        a("tag", Str).multiple(),
    ]),
    ("tag|card", &[
        a("tag", Str),
    ]),
    ("tag|get", &[
        a("key", Key).key_spec(0),
    ]),
    ("tag|help", &[]),
    ("tag|remove", &[
        a("key", Key).key_spec(0),
        a("tag", Str).multiple(),
    ]),
    ("tag|scan", &[
        a("tag", Str),
        a("cursor", Int),
        a("count", Int).token("COUNT").optional(),
        a("withvalues", Token).token("WITHVALUES").optional(),
    ]),
];
