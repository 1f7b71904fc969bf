//! Redis glob matching (`KEYS`, `SCAN MATCH`), ported from Redis 7's
//! `stringmatchlen` so that every pattern means exactly what it means there:
//! `*`, `?`, `[abc]`, `[^a-z]`, `\` escapes, the reversed ranges and
//! unterminated classes Redis tolerates, and the two guards against abusive
//! patterns added for CVE-2022-36021 (a nesting limit and the early stop once
//! a `*` suffix has failed everywhere).

/// True when `string` matches the Redis glob `pattern` (case-sensitive).
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, false, &mut skip_longer, 0)
}

/// True when `string` matches `pattern`, ASCII case-insensitively.
pub fn matches_nocase(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, true, &mut skip_longer, 0)
}

fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

fn match_impl(pat: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > 1000 {
        return false;
    }
    // C reads past the end into the NUL terminator; `at` mirrors that.
    let at = |v: &[u8], i: usize| v.get(i).copied().unwrap_or(0);
    let (mut p, mut si) = (0usize, 0usize);
    while p < pat.len() && si < s.len() {
        match pat[p] {
            b'*' => {
                while p + 1 < pat.len() && pat[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pat.len() {
                    return true;
                }
                while si < s.len() {
                    if match_impl(&pat[p + 1..], &s[si..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    si += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => si += 1,
            b'[' => {
                p += 1;
                let not = at(pat, p) == b'^';
                if not {
                    p += 1;
                }
                let c = s[si];
                let mut matched = false;
                loop {
                    let remaining = pat.len().saturating_sub(p);
                    if at(pat, p) == b'\\' && remaining >= 2 {
                        p += 1;
                        if pat[p] == c {
                            matched = true;
                        }
                    } else if at(pat, p) == b']' {
                        break;
                    } else if remaining == 0 {
                        p -= 1;
                        break;
                    } else if remaining >= 3 && pat[p + 1] == b'-' {
                        // C compares (signed) chars as ints
                        let (mut start, mut end) = (pat[p] as i8 as i32, pat[p + 2] as i8 as i32);
                        let mut ch = c as i8 as i32;
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start as u8) as i8 as i32;
                            end = lower(end as u8) as i8 as i32;
                            ch = lower(ch as u8) as i8 as i32;
                        }
                        p += 2;
                        if ch >= start && ch <= end {
                            matched = true;
                        }
                    } else if (!nocase && pat[p] == c) || (nocase && lower(pat[p]) == lower(c)) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                si += 1;
            }
            ch => {
                let mut ch = ch;
                if ch == b'\\' && pat.len() - p >= 2 {
                    p += 1;
                    ch = pat[p];
                }
                let equal = if nocase {
                    lower(ch) == lower(s[si])
                } else {
                    ch == s[si]
                };
                if !equal {
                    return false;
                }
                si += 1;
            }
        }
        p += 1;
        if si == s.len() {
            while p < pat.len() && pat[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && si == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_keyspace_test_cases() {
        let t = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes());
        assert!(t("*", "anything"));
        assert!(t("foo*", "foobar"));
        assert!(!t("foo*", "fobar"));
        assert!(t("h?llo", "hello"));
        assert!(t("h*llo", "heeeello"));
        assert!(t("h[ae]llo", "hallo"));
        assert!(!t("h[ae]llo", "hillo"));
        assert!(t("h[^e]llo", "hallo"));
        assert!(!t("h[^e]llo", "hello"));
        assert!(t("h[a-b]llo", "hbllo"));
        assert!(t("h[b-a]llo", "hbllo"), "reversed range");
        assert!(t("h\\*llo", "h*llo"));
        assert!(!t("h\\*llo", "hello"));
        assert!(t("[\\]]", "]"));
        assert!(!t("a[", "a["), "an unterminated class never matches");
        assert!(t("[a", "a"), "unterminated class still matches its members");
        assert!(t("*a*", "a"));
        // as in Redis: an empty string matches no pattern; KEYS and SCAN
        // special-case the bare "*" themselves
        assert!(!t("**", ""));
        assert!(!t("?", ""));
        assert!(t("", ""));
        assert!(!t("", "a"));
        assert!(matches_nocase(b"HELLO", b"hello"));
    }

    #[test]
    fn abusive_pattern_finishes_quickly() {
        let pat = "a*".repeat(500) + "b";
        let s = "a".repeat(10_000);
        assert!(!matches(pat.as_bytes(), s.as_bytes()));
    }
}
