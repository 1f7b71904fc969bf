//! ACL commands byte for byte against a real redis-server 7.0: users and
//! their rules (SETUSER, GETUSER, LIST, USERS, DELUSER, DRYRUN), Redis's
//! error texts, AUTH as a user, NOAUTH, WRONGPASS and NOPERM, and the
//! membership of every ACL category for the commands magpie serves.

mod common;

use common::*;

#[test]
fn acl_user_rules_and_errors_match_redis() {
    differential(
        r#"
ACL SETUSER alice
ACL GETUSER alice
ACL SETUSER alice on >pw ~cart:* %R~r:* %W~w:* &chan -@all +@read +set
ACL GETUSER alice
ACL SETUSER bob on nopass allkeys allchannels allcommands
ACL GETUSER bob
ACL SETUSER carol on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 resetchannels -@all +client|id
ACL GETUSER carol
ACL SETUSER carol +get -client|id
ACL GETUSER carol
ACL SETUSER carol -get +client|id
ACL SETUSER dave on >a >b <a resetkeys ~x:* reset
ACL GETUSER dave
ACL SETUSER erin on >p "(~sel:* +get)" ~main:* +set
ACL GETUSER erin
ACL USERS
ACL SETUSER x badrule
ACL SETUSER x #abc
ACL SETUSER x +nosuch
ACL SETUSER x +@nosuch
ACL SETUSER x <nothere
ACL SETUSER x allkeys ~more
ACL SETUSER x allchannels &more
ACL SETUSER x %X~a
ACL SETUSER "a b"
ACL SETUSER y on "(~a" +get
ACL GETUSER x
ACL GETUSER nosuch
ACL DRYRUN alice set cart:1 v
ACL DRYRUN alice get cart:1
ACL DRYRUN alice set r:1 v
ACL DRYRUN alice get r:1
ACL DRYRUN alice get w:1
ACL DRYRUN alice set w:1 v
ACL DRYRUN alice set w:1 v GET
ACL DRYRUN alice del cart:1
ACL DRYRUN carol client id
ACL DRYRUN carol client list
ACL DRYRUN erin get sel:1
ACL DRYRUN erin set sel:1 v
ACL DRYRUN erin set main:1 v
ACL DRYRUN erin get main:1
ACL DRYRUN nosuch get x
ACL SETUSER hs on nopass %R~r:* %W~w:* ~rw:* +@all
ACL SETUSER ro on nopass ~* -@all +@read
ACL DRYRUN hs hset w:1 f v
ACL DRYRUN hs hset r:1 f v
ACL DRYRUN hs hmset w:1 f v
ACL DRYRUN hs hsetnx w:1 f v
ACL DRYRUN hs hdel w:1 f
ACL DRYRUN hs hget r:1 f
ACL DRYRUN hs hget w:1 f
ACL DRYRUN hs hgetall w:1
ACL DRYRUN hs hincrby w:1 f 1
ACL DRYRUN hs hincrby rw:1 f 1
ACL DRYRUN hs hincrbyfloat w:1 f 1
ACL DRYRUN hs hlen w:1
ACL DRYRUN hs hexists w:1 f
ACL DRYRUN hs hstrlen w:1 f
ACL DRYRUN hs hscan w:1 0
ACL DRYRUN hs hrandfield w:1
ACL DRYRUN hs sadd w:1 m
ACL DRYRUN hs sadd r:1 m
ACL DRYRUN hs srem w:1 m
ACL DRYRUN hs spop w:1
ACL DRYRUN hs spop rw:1
ACL DRYRUN hs scard w:1
ACL DRYRUN hs sismember w:1 m
ACL DRYRUN hs smismember w:1 m
ACL DRYRUN hs smembers w:1
ACL DRYRUN hs smembers r:1
ACL DRYRUN hs srandmember w:1
ACL DRYRUN hs sinter r:1 r:2
ACL DRYRUN hs sinter r:1 w:2
ACL DRYRUN hs sinterstore w:d r:1 r:2
ACL DRYRUN hs sinterstore r:d r:1 r:2
ACL DRYRUN hs sinterstore w:d r:1 w:2
ACL DRYRUN hs sunionstore w:d r:1 rw:2
ACL DRYRUN hs sdiffstore w:d w:1
ACL DRYRUN hs smove rw:1 w:2 m
ACL DRYRUN hs smove w:1 w:2 m
ACL DRYRUN hs smove r:1 w:2 m
ACL DRYRUN hs smove rw:1 r:2 m
ACL DRYRUN hs sintercard 2 r:1 r:2
ACL DRYRUN hs sintercard 2 r:1 r:2 LIMIT 1
ACL DRYRUN hs sintercard 2 r:1 w:2
ACL DRYRUN hs sintercard 1 r:1 w:2
ACL DRYRUN ro hset k f v
ACL DRYRUN ro sadd k m
ACL DRYRUN ro sinterstore d a b
ACL DRYRUN ro hget k f
ACL DRYRUN ro smembers k
ACL DRYRUN alice nosuchcmd
ACL DRYRUN alice get
ACL DELUSER default
ACL DELUSER nosuch carol dave
ACL USERS
ACL WHOAMI
ACL CAT nosuch
ACL GENPASS 0
ACL GENPASS 4097
ACL GENPASS x
ACL LOG x
ACL LOG -1
ACL LOG RESET
ACL LOG
ACL LOAD
ACL SAVE
ACL NOSUCH
ACL HELP
"#,
    );
}

#[test]
fn acl_list_matches_redis_for_rules_that_describe_alike() {
    // each user's ACL LIST line, which Redis computes from its bitset; at
    // most one single-command rule per user, because Redis lists those in
    // the order of its command hash table, which differs run to run
    differential(
        r#"
ACL SETUSER a on >pw ~k:* resetchannels -@all +@read
ACL SETUSER b on nopass ~* &* +@all
ACL SETUSER c off
ACL SETUSER d on nopass %R~r:* %W~w:* &n:* -@all +get
ACL SETUSER e on nopass ~* -@all +client|id
ACL LIST
"#,
    );
}

#[test]
fn auth_as_an_acl_user_and_noperm_match_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let setup = r#"
ACL SETUSER ro on >ropw ~* -@all +@read +@connection
ACL SETUSER app on >apppw ~app:* +@all -@dangerous
ACL SETUSER off off >offpw +@all ~*
"#;
    for (r, m) in [(redis.client(), ours.client())]
        .iter_mut()
        .map(|(r, m)| (r, m))
    {
        run_differential(r, m, setup);
    }
    let (mut r, mut m) = (redis.client(), ours.client());
    run_differential(
        &mut r,
        &mut m,
        r#"
AUTH ro wrong
AUTH nosuch x
AUTH off offpw
AUTH ro ropw
ACL WHOAMI
GET k
SET k v
DEL k
FLUSHALL
~ CLIENT ID
~ CLIENT LIST
CONFIG GET maxclients
AUTH app apppw
ACL WHOAMI
SET app:1 v
GET app:1
SET other v
MGET app:1 other
FLUSHALL
KEYS *
HELLO 3 AUTH ro wrong
~ HELLO 2 AUTH ro ropw
~ ACL WHOAMI
"#,
    );
}

#[test]
fn requirepass_and_config_set_requirepass_are_the_default_users_password() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    run_differential(
        &mut r,
        &mut m,
        r#"
AUTH x
CONFIG SET requirepass secret
ACL LIST
AUTH default secret
CONFIG SET requirepass ""
ACL LIST
"#,
    );
    let (mut r, mut m) = (redis.client(), ours.client());
    run_differential(
        &mut r,
        &mut m,
        r#"
CONFIG SET requirepass secret
"#,
    );
    let (mut r2, mut m2) = (redis.client(), ours.client());
    run_differential(
        &mut r2,
        &mut m2,
        r#"
PING
AUTH secret
PING
CONFIG SET requirepass ""
"#,
    );
}

/// Redis's replies to `ACL CAT <cat>`, restricted to commands magpie has,
/// sorted.
fn category_members(c: &mut RawClient, cat: &str) -> Vec<String> {
    let reply = c.cmd_str(&["ACL", "CAT", cat]);
    let mut names: Vec<String> = reply
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn every_category_holds_what_redis_puts_in_it() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    assert_eq!(r.cmd_str(&["ACL", "CAT"]), m.cmd_str(&["ACL", "CAT"]));
    // the commands both serve (magpie has a few of 7.2's), subcommands
    // included
    let all = |c: &mut RawClient| {
        category_members(c, "slow")
            .into_iter()
            .chain(category_members(c, "fast"))
            .collect::<std::collections::HashSet<_>>()
    };
    let in_redis = all(&mut r);
    let served: std::collections::HashSet<_> =
        all(&mut m).intersection(&in_redis).cloned().collect();
    for cat in [
        "keyspace",
        "read",
        "write",
        "string",
        "hash",
        "set",
        "admin",
        "fast",
        "slow",
        "dangerous",
        "connection",
        "pubsub",
        "blocking",
    ] {
        let want: Vec<String> = category_members(&mut r, cat)
            .into_iter()
            .filter(|n| served.contains(n))
            .collect();
        let got: Vec<String> = category_members(&mut m, cat)
            .into_iter()
            .filter(|n| served.contains(n))
            .collect();
        assert_eq!(got, want, "ACL CAT {cat}");
    }
}

#[test]
fn channel_patterns_guard_publish_and_subscribe_as_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    run_differential(
        &mut r,
        &mut m,
        r#"
ACL SETUSER news on >pw ~* +@all resetchannels &news.* &exact
ACL DRYRUN news publish news.1 hi
ACL DRYRUN news publish other hi
ACL DRYRUN news subscribe news.1 other
ACL DRYRUN news psubscribe news.*
ACL DRYRUN news psubscribe news.x*
AUTH news pw
PUBLISH news.1 hi
PUBLISH exact hi
PUBLISH other hi
SUBSCRIBE news.1 other
PSUBSCRIBE news.x*
SSUBSCRIBE other
SPUBLISH other hi
PSUBSCRIBE news.*
"#,
    );
}
