//! The aclfile, in Redis 7.0's format: one `user <name> <rules...>` line
//! per user (what `ACL LIST` prints), blank lines and `#` comments
//! ignored. Passwords are stored only as SHA-256 hashes (`#<hex>`).

use std::io::Write;
use std::path::Path;

use super::catalog::Catalog;
use super::user::User;

/// Splits a line into words as Redis's `sdssplitargs` does for the
/// aclfile: spaces separate, `"..."` (with `\n`, `\r`, `\t`, `\"`, `\\`,
/// `\xHH`) and `'...'` group. None for an unbalanced quote.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut cur = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    match *line.get(i)? {
                        b'"' => break,
                        b'\\'
                            if i + 3 < line.len()
                                && line[i + 1] == b'x'
                                && line[i + 2].is_ascii_hexdigit()
                                && line[i + 3].is_ascii_hexdigit() =>
                        {
                            let h = std::str::from_utf8(&line[i + 2..i + 4]).ok()?;
                            cur.push(u8::from_str_radix(h, 16).ok()?);
                            i += 3;
                        }
                        b'\\' => {
                            i += 1;
                            cur.push(match *line.get(i)? {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                c => c,
                            });
                        }
                        c => cur.push(c),
                    }
                    i += 1;
                }
                i += 1;
                if i < line.len() && !line[i].is_ascii_whitespace() {
                    return None;
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match *line.get(i)? {
                        b'\'' => break,
                        b'\\' if line.get(i + 1) == Some(&b'\'') => {
                            cur.push(b'\'');
                            i += 1;
                        }
                        c => cur.push(c),
                    }
                    i += 1;
                }
                i += 1;
                if i < line.len() && !line[i].is_ascii_whitespace() {
                    return None;
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    cur.push(line[i]);
                    i += 1;
                }
            }
        }
        out.push(cur);
    }
    Some(out)
}

/// Reads every user of an aclfile's text; `origin` names the file in
/// errors. All or nothing: any bad line fails the whole file with Redis's
/// message for it.
pub fn parse(catalog: &Catalog, text: &[u8], origin: &str) -> Result<Vec<User>, String> {
    let mut users: Vec<User> = Vec::new();
    let mut errors = String::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let n = n + 1;
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let Some(words) = split_args(line) else {
            errors.push_str(&format!("{origin}:{n}: unbalanced quotes in acl line. "));
            continue;
        };
        if words[0] != b"user" || words.len() < 2 {
            errors.push_str(&format!("{origin}:{n} should start with user keyword. "));
            continue;
        }
        let name = String::from_utf8_lossy(&words[1]).into_owned();
        if !valid_name(&words[1]) {
            errors.push_str(&format!(
                "{origin}:{n}: Usernames can't contain spaces or null characters. "
            ));
            continue;
        }
        if users.iter().any(|u| u.name == name) {
            errors.push_str(&format!("{origin}:{n}: Duplicate user '{name}' found. "));
            continue;
        }
        let mut user = User::new(&name, catalog);
        let mut bad = false;
        for rule in &words[2..] {
            if let Err(e) = user.apply(catalog, rule) {
                errors.push_str(&format!(
                    "{origin}:{n}: Error in applying operation '{}': {}. ",
                    String::from_utf8_lossy(rule),
                    e.0
                ));
                bad = true;
                break;
            }
        }
        if !bad {
            users.push(user);
        }
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(errors.trim_end().to_string())
    }
}

/// Redis's rule for user names: no spaces and no NUL bytes.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.iter().any(|&b| b == b' ' || b == 0)
}

/// The aclfile text for `users` (one `ACL LIST` line each).
pub fn render(catalog: &Catalog, users: &[std::sync::Arc<User>]) -> String {
    users.iter().map(|u| u.describe(catalog) + "\n").collect()
}

/// Writes `bytes` to a temporary file beside `path`, fsyncs it and renames
/// it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::catalog::{category_bit, CommandAcl};
    use super::*;

    fn catalog() -> Catalog {
        Catalog::new(vec![CommandAcl {
            name: "get",
            categories: category_bit("read").unwrap(),
            keys: vec![],
            no_auth: false,
            channels: Default::default(),
            parent: None,
        }])
    }

    #[test]
    fn split_args_handles_quotes() {
        let w = split_args(br#"user "a b" 'c d' >x\"y "\x41""#).unwrap();
        assert_eq!(w, [&b"user"[..], b"a b", b"c d", b">x\\\"y", b"A"]);
        assert!(split_args(b"user \"open").is_none());
    }

    #[test]
    fn files_round_trip_and_bad_lines_fail_the_whole_file() {
        let cat = catalog();
        let text = b"# users\n\nuser alice on >pw ~a:* +get\nuser bob off\n";
        let users = parse(&cat, text, "f").unwrap();
        assert_eq!(users.len(), 2);
        let arcs: Vec<_> = users.into_iter().map(std::sync::Arc::new).collect();
        let rendered = render(&cat, &arcs);
        assert!(!rendered.contains(">pw"), "only the hash is stored");
        let again = parse(&cat, rendered.as_bytes(), "f").unwrap();
        assert_eq!(
            again,
            arcs.iter().map(|u| (**u).clone()).collect::<Vec<_>>()
        );
        let err = parse(&cat, b"user a on\nuser a off\nbogus\nuser c +nosuch\n", "f").unwrap_err();
        assert_eq!(
            err,
            "f:2: Duplicate user 'a' found. f:3 should start with user keyword. \
             f:4: Error in applying operation '+nosuch': Unknown command or category name in ACL."
        );
    }
}
