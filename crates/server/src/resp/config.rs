//! CONFIG and its subcommands (GET, SET, RESETSTAT, HELP): every
//! parameter magpie knows, how it is read and how it may be changed
//! while running.

use std::sync::atomic::Ordering;

use magpie_engine::glob::matches_nocase;
use magpie_protocol::int::parse_i64;
use magpie_protocol::resp::Args;

use super::handler::{
    dispatch_subcommand, is, sanitize, server_subcommand as sub, write_help, CommandSpec, Ctx,
};
use crate::config::parse_memory;
use crate::pubsub::OutputLimit;
use crate::shared::{Runtime, Shared};
use crate::tls::{AuthClients, TlsSettings};

/// CONFIG's table.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "config",
    arity: -2,
    flags: &[],
    first_key: 0,
    last_key: 0,
    step: 0,
    group: "server",
    summary: "A container for server configuration commands.",
    syntax: "",
    handler: config,
}];

/// CONFIG's subcommands.
pub const CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    sub(
        "config|get",
        -3,
        &["admin", "noscript", "loading", "stale"],
        "Returns the effective values of configuration parameters.",
        "parameter [parameter ...]",
        config_get,
    ),
    sub(
        "config|set",
        -4,
        &["admin", "noscript", "loading", "stale"],
        "Sets configuration parameters in-flight.",
        "parameter value [parameter value ...]",
        config_set,
    ),
    sub(
        "config|resetstat",
        2,
        &["admin", "noscript", "loading", "stale"],
        "Resets the server's statistics.",
        "",
        config_resetstat,
    ),
    sub(
        "config|help",
        2,
        &["loading", "stale"],
        "Returns helpful text about the different subcommands.",
        "",
        config_help,
    ),
];

/// How CONFIG SET checks and stores one parameter.
enum Setter {
    /// Read-only while running (`can't set immutable config`).
    Immutable,
    /// Stored in [`Runtime`]; returns Redis's error text on bad input.
    Runtime(fn(&mut Runtime, &[u8]) -> Result<(), String>),
    /// Accepts only the value magpie runs with (fixed at start or by
    /// design); the function validates like Redis then says why others are
    /// refused.
    Fixed(fn(&Shared, &[u8]) -> Result<(), String>),
    /// A `tls-*` setting: stored in a copy of the TLS settings, which are
    /// applied together (the certificate files reread) once every value
    /// checked; if they do not load, nothing changes.
    Tls(fn(&mut TlsSettings, &[u8]) -> Result<(), String>),
}

/// One parameter CONFIG GET / SET knows.
struct Param {
    name: &'static str,
    get: fn(&Shared) -> String,
    set: Setter,
}

const PARAMS: &[Param] = &[
    Param {
        name: "maxclients",
        get: |s| s.runtime.read().maxclients.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.maxclients = parse_int_in(v, 1, u32::MAX as i64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory",
        get: |s| s.runtime.read().memory_limit.max_bytes.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.memory_limit.max_bytes = parse_memory_in(v, 0, i64::MAX as u64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-policy",
        get: |s| s.runtime.read().memory_limit.policy.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.memory_limit.policy = crate::config::eviction_policy(&String::from_utf8_lossy(v))?;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-samples",
        get: |s| s.runtime.read().memory_limit.samples.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.memory_limit.samples =
                parse_int_in(v, 1, magpie_engine::MAX_SAMPLES as i64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "max-tags-per-key",
        get: |s| s.runtime.read().tag_limits.max_tags_per_key.to_string(),
        set: Setter::Runtime(|rt, v| {
            let max = magpie_engine::tags::MAX_TAGS_PER_KEY_CEILING as i64;
            rt.tag_limits.max_tags_per_key = parse_int_in(v, 1, max)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "max-tag-len",
        get: |s| s.runtime.read().tag_limits.max_tag_len.to_string(),
        set: Setter::Runtime(|rt, v| {
            let max = magpie_engine::tags::MAX_TAG_LEN_CEILING as i64;
            rt.tag_limits.max_tag_len = parse_int_in(v, 1, max)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "hash-max-listpack-entries",
        get: |s| {
            s.runtime
                .read()
                .type_limits
                .hash_max_listpack_entries
                .to_string()
        },
        set: Setter::Runtime(|rt, v| {
            rt.type_limits.hash_max_listpack_entries = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "hash-max-listpack-value",
        get: |s| {
            s.runtime
                .read()
                .type_limits
                .hash_max_listpack_value
                .to_string()
        },
        set: Setter::Runtime(|rt, v| {
            rt.type_limits.hash_max_listpack_value = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "hash-max-ziplist-entries",
        get: |s| {
            s.runtime
                .read()
                .type_limits
                .hash_max_listpack_entries
                .to_string()
        },
        set: Setter::Runtime(|rt, v| {
            rt.type_limits.hash_max_listpack_entries = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "hash-max-ziplist-value",
        get: |s| {
            s.runtime
                .read()
                .type_limits
                .hash_max_listpack_value
                .to_string()
        },
        set: Setter::Runtime(|rt, v| {
            rt.type_limits.hash_max_listpack_value = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "set-max-intset-entries",
        get: |s| {
            s.runtime
                .read()
                .type_limits
                .set_max_intset_entries
                .to_string()
        },
        set: Setter::Runtime(|rt, v| {
            rt.type_limits.set_max_intset_entries = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "set-max-listpack-entries",
        get: |s| {
            s.runtime
                .read()
                .type_limits
                .set_max_listpack_entries
                .to_string()
        },
        set: Setter::Runtime(|rt, v| {
            rt.type_limits.set_max_listpack_entries = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "set-max-listpack-value",
        get: |s| {
            s.runtime
                .read()
                .type_limits
                .set_max_listpack_value
                .to_string()
        },
        set: Setter::Runtime(|rt, v| {
            rt.type_limits.set_max_listpack_value = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "requirepass",
        get: |s| s.runtime.read().requirepass.clone().unwrap_or_default(),
        // the default user's password follows (see Shared::set_runtime)
        set: Setter::Runtime(|rt, v| {
            rt.requirepass = if v.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(v).into_owned())
            };
            Ok(())
        }),
    },
    Param {
        name: "timeout",
        get: |s| s.runtime.read().timeout.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.timeout = parse_int_in(v, 0, i32::MAX as i64)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "protected-mode",
        get: |s| yes_no(s.runtime.read().protected_mode).into(),
        set: Setter::Runtime(|rt, v| {
            rt.protected_mode = crate::config::yes_no(&String::from_utf8_lossy(v))
                .map_err(|_| "argument must be 'yes' or 'no'".to_string())?;
            Ok(())
        }),
    },
    Param {
        name: "databases",
        get: |s| s.engine.databases().to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "proto-max-bulk-len",
        get: |s| s.runtime.read().limits.max_bulk_len.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.limits.max_bulk_len =
                parse_memory_in(v, 1024 * 1024, magpie_engine::MAX_PART_LEN as u64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "client-query-buffer-limit",
        get: |s| s.runtime.read().client_query_buffer_limit.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.client_query_buffer_limit =
                parse_memory_in(v, 1024 * 1024, i64::MAX as u64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "client-output-buffer-limit",
        get: |s| {
            format!(
                "normal {} slave {} pubsub {}",
                OutputLimit::NORMAL_DEFAULT.render(),
                OutputLimit::REPLICA_DEFAULT.render(),
                s.runtime.read().pubsub_output_limit.render()
            )
        },
        set: Setter::Runtime(set_output_limits),
    },
    Param {
        name: "hz",
        get: |s| s.runtime.read().hz.to_string(),
        set: Setter::Runtime(|rt, v| {
            // Redis accepts any non-negative int and clamps it to 1..=500
            rt.hz = parse_int_in(v, 0, i32::MAX as i64)?.clamp(1, 500) as u32;
            Ok(())
        }),
    },
    Param {
        name: "port",
        get: |s| s.config.port.to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "bind",
        get: |s| s.config.bind.clone(),
        set: Setter::Immutable,
    },
    Param {
        name: "save",
        get: |_| String::new(),
        set: Setter::Fixed(|_, v| {
            if v.is_empty() {
                Ok(())
            } else {
                Err("magpie does not write RDB snapshots; only \"\" is accepted".into())
            }
        }),
    },
    Param {
        name: "appendonly",
        get: |s| yes_no(!s.config.ephemeral).into(),
        set: Setter::Fixed(|s, v| {
            let on = !s.config.ephemeral;
            if !is(v, "yes") && !is(v, "no") {
                Err("argument must be 'yes' or 'no'".into())
            } else if is(v, yes_no(on)) {
                Ok(())
            } else {
                Err(format!(
                    "the log is chosen at start (--ephemeral); only '{}' is accepted",
                    yes_no(on)
                ))
            }
        }),
    },
    Param {
        name: "appendfsync",
        get: |s| s.config.appendfsync.to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "dir",
        get: |s| s.config.dir.display().to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "slowlog-log-slower-than",
        get: |s| s.runtime.read().slowlog_log_slower_than.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.slowlog_log_slower_than = parse_int_in(v, -1, i64::MAX)?;
            Ok(())
        }),
    },
    Param {
        name: "slowlog-max-len",
        get: |s| s.runtime.read().slowlog_max_len.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.slowlog_max_len = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "command-log-sample",
        get: |s| s.runtime.read().command_log_sample.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.command_log_sample = parse_int_in(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "tls-port",
        get: |s| s.config.tls_port.to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "tls-memcache-port",
        get: |s| s.config.tls_memcache_port.to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "tls-http-port",
        get: |s| s.config.tls_http_port.to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "tls-cert-file",
        get: |s| s.tls.settings().cert_file,
        set: Setter::Tls(|t, v| {
            t.cert_file = String::from_utf8_lossy(v).into_owned();
            Ok(())
        }),
    },
    Param {
        name: "tls-key-file",
        get: |s| s.tls.settings().key_file,
        set: Setter::Tls(|t, v| {
            t.key_file = String::from_utf8_lossy(v).into_owned();
            Ok(())
        }),
    },
    Param {
        name: "tls-ca-cert-file",
        get: |s| s.tls.settings().ca_cert_file,
        set: Setter::Tls(|t, v| {
            t.ca_cert_file = String::from_utf8_lossy(v).into_owned();
            Ok(())
        }),
    },
    Param {
        name: "tls-ca-cert-dir",
        get: |s| s.tls.settings().ca_cert_dir,
        set: Setter::Tls(|t, v| {
            t.ca_cert_dir = String::from_utf8_lossy(v).into_owned();
            Ok(())
        }),
    },
    Param {
        name: "tls-auth-clients",
        get: |s| s.tls.settings().auth_clients.to_string(),
        set: Setter::Tls(|t, v| {
            t.auth_clients = AuthClients::parse(v)?;
            Ok(())
        }),
    },
    Param {
        name: "tls-protocols",
        get: |s| s.tls.settings().protocols,
        set: Setter::Tls(|t, v| {
            t.protocols = String::from_utf8_lossy(v).into_owned();
            Ok(())
        }),
    },
    Param {
        name: "tls-ciphersuites",
        get: |s| s.tls.settings().ciphersuites,
        set: Setter::Tls(|t, v| {
            t.ciphersuites = String::from_utf8_lossy(v).into_owned();
            Ok(())
        }),
    },
];

/// CONFIG SET client-output-buffer-limit: `<class> <hard> <soft>
/// <soft-seconds>` groups, checked whole before any is applied, with
/// Redis's error texts. magpie enforces the pubsub class; the normal and
/// replica classes (it has no limit for ordinary replies, and no
/// replicas) accept only the values they have.
fn set_output_limits(rt: &mut Runtime, v: &[u8]) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let words: Vec<&[u8]> = v.split(|&b| b == b' ').collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut pubsub = rt.pubsub_output_limit;
    for group in words.chunks(4) {
        let class = group[0];
        let fixed = if is(class, "normal") {
            Some(OutputLimit::NORMAL_DEFAULT)
        } else if is(class, "slave") || is(class, "replica") {
            Some(OutputLimit::REPLICA_DEFAULT)
        } else if is(class, "pubsub") {
            None
        } else {
            return Err("Invalid client class specified in buffer limit configuration.".into());
        };
        let limit = crate::config::output_limit(group[1], group[2], group[3]).ok_or_else(|| {
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string()
        })?;
        match fixed {
            None => pubsub = limit,
            Some(f) if f == limit => {}
            Some(f) => {
                return Err(format!(
                    "magpie limits only the pubsub class; {} stays '{}'",
                    String::from_utf8_lossy(class).to_ascii_lowercase(),
                    f.render()
                ))
            }
        }
    }
    rt.pubsub_output_limit = pubsub;
    Ok(())
}

/// Parses a Redis integer config value within `[min, max]`, with Redis's
/// error texts.
fn parse_int_in(v: &[u8], min: i64, max: i64) -> Result<i64, String> {
    let n =
        parse_i64(v).ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn parse_memory_in(v: &[u8], min: u64, max: u64) -> Result<u64, String> {
    let n = parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn find_param(name: &[u8]) -> Option<&'static Param> {
    PARAMS.iter().find(|p| is(name, p.name))
}

fn config(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "config", CONFIG_SUBCOMMANDS);
}

fn config_get(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    // (name as reported, parameter), first match wins, each parameter once
    let mut found: Vec<(&[u8], &Param)> = Vec::new();
    for pattern in args.iter().skip(2) {
        let is_glob = pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        if !is_glob {
            if let Some(p) = find_param(pattern) {
                if !found.iter().any(|(_, q)| q.name == p.name) {
                    found.push((pattern, p));
                }
            }
            continue;
        }
        for p in PARAMS {
            if matches_nocase(pattern, p.name.as_bytes())
                && !found.iter().any(|(_, q)| q.name == p.name)
            {
                found.push((p.name.as_bytes(), p));
            }
        }
    }
    ctx.out.map(found.len());
    for (name, p) in found {
        ctx.out.bulk(name);
        ctx.out.bulk((p.get)(ctx.shared).as_bytes());
    }
}

fn config_set(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() & 1 == 1 {
        ctx.syntax_error();
        return;
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    let fail = |ctx: &mut Ctx<'_, '_>, name: &[u8], why: &str| {
        ctx.out.error(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
            sanitize(name)
        ));
    };
    // first every name: unknown, immutable or repeated names fail before
    // anything is applied
    let mut params = Vec::with_capacity(pairs.len());
    for (i, (name, _)) in pairs.iter().enumerate() {
        let Some(p) = find_param(name) else {
            ctx.out.error(&format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                sanitize(name)
            ));
            return;
        };
        if matches!(p.set, Setter::Immutable) {
            fail(ctx, name, "can't set immutable config");
            return;
        }
        if pairs[..i].iter().any(|(n, _)| is(n, p.name)) {
            fail(ctx, name, "duplicate parameter");
            return;
        }
        params.push(p);
    }
    // then apply them all to a copy, and publish it only if all succeed
    let mut rt = ctx.shared.runtime.read().clone();
    let mut tls = ctx.shared.tls.settings();
    // the first tls-* parameter, named if the TLS settings fail to apply
    let mut tls_name = None;
    for (p, (name, value)) in params.iter().zip(&pairs) {
        let res = match p.set {
            Setter::Runtime(set) => set(&mut rt, value),
            Setter::Fixed(check) => check(ctx.shared, value),
            Setter::Tls(set) => {
                tls_name.get_or_insert(*name);
                set(&mut tls, value)
            }
            Setter::Immutable => unreachable!("rejected above"),
        };
        if let Err(why) = res {
            fail(ctx, name, &why);
            return;
        }
    }
    if let Some(name) = tls_name {
        // rereads the certificate files even when the paths are the same
        if let Err(why) = ctx.shared.tls.apply(tls) {
            tracing::warn!(error = %why, "CONFIG SET: TLS configuration not changed");
            fail(
                ctx,
                name,
                &format!("Unable to update TLS configuration: {why}"),
            );
            return;
        }
    }
    ctx.shared.set_runtime(rt);
    ctx.out.ok();
}

fn config_resetstat(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let c = &ctx.shared.counters;
    for counter in [
        &c.connections_received,
        &c.rejected_connections,
        &c.commands_processed,
        &c.keyspace_hits,
        &c.keyspace_misses,
        &c.net_input_bytes,
        &c.net_output_bytes,
        &ctx.shared.engine.stats().expired_keys,
        &ctx.shared.engine.stats().evicted_keys,
        &ctx.shared.engine.stats().tag_invalidations,
        &ctx.shared.engine.stats().prefix_invalidations,
        &ctx.shared.engine.stats().keys_invalidated,
        &ctx.shared.engine.stats().dead_reclaimed,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    ctx.shared.command_stats.reset();
    ctx.out.ok();
}

fn config_help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    write_help(
        ctx.out,
        "CONFIG",
        &[
            (
                "GET <pattern>",
                "Return parameters matching the glob-like <pattern> and their values.",
            ),
            (
                "SET <directive> <value>",
                "Set the configuration <directive> to <value>.",
            ),
            (
                "RESETSTAT",
                "Reset statistics reported by the INFO command.",
            ),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_values_parse_like_redis() {
        assert_eq!(parse_memory(b"1mb"), Some(1024 * 1024));
        assert_eq!(parse_memory(b"2MB"), Some(2 * 1024 * 1024));
        assert_eq!(parse_memory(b"1k"), Some(1000));
        assert_eq!(parse_memory(b"100"), Some(100));
        assert_eq!(parse_memory(b"100b"), Some(100));
        for bad in [
            &b""[..],
            b"x",
            b"-1",
            b"1.5mb",
            b"1tb",
            b"mb",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_memory(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
