//! Numbers exactly as memcached reads them: its `safe_strto*` helpers wrap
//! C's `strtol`/`strtoul`/`strtoull`, so leading whitespace and a `+`/`-`
//! sign are accepted, the number must be followed by whitespace or the end
//! of the token, and the 64-bit result is then truncated to the field's
//! width (a flags value of 4294967296 is stored as 0, as memcached does).

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtoull`/`strtoll` core: (negative, magnitude, digits end), or None
/// when there are no digits or the magnitude overflows u64 (ERANGE).
fn scan(s: &[u8]) -> Option<(bool, u64, usize)> {
    let mut i = 0;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        match v
            .checked_mul(10)
            .and_then(|v| v.checked_add((s[i] - b'0') as u64))
        {
            Some(n) => v = n,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start || overflow {
        return None;
    }
    // memcached accepts the number only if whitespace or the end follows it
    if i < s.len() && !is_space(s[i]) {
        return None;
    }
    Some((neg, v, i))
}

/// memcached's `safe_strtoull`: a u64 ("-1" is rejected, "-0" is 0).
pub fn strtoull(s: &[u8]) -> Option<u64> {
    let (neg, v, _) = scan(s)?;
    let v = if neg { v.wrapping_neg() } else { v };
    if (v as i64) < 0 && s.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// memcached's `safe_strtoul` into a `uint32_t`: parsed as a 64-bit
/// unsigned long, then truncated.
pub fn strtoul32(s: &[u8]) -> Option<u32> {
    strtoull(s).map(|v| v as u32)
}

/// memcached's `safe_strtol` into an `int32_t`: parsed as a 64-bit long
/// (overflow rejected), then truncated.
pub fn strtol32(s: &[u8]) -> Option<i32> {
    let (neg, v, _) = scan(s)?;
    let l: i64 = if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        (v as i64).wrapping_neg()
    } else {
        i64::try_from(v).ok()?
    };
    Some(l as i32)
}

/// The value of an item as incr/decr reads it: `safe_strtoull` over the
/// stored bytes followed by memcached's "\r\n" terminator.
pub fn item_counter(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    // memcached stores the value followed by "\r\n", which counts as the
    // whitespace after the number, so an all-digit value is accepted
    let (neg, v, end) = scan(value)?;
    let v = if neg { v.wrapping_neg() } else { v };
    if (v as i64) < 0 && value[..end].contains(&b'-') {
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_memcached_safe_strto() {
        assert_eq!(strtoul32(b"4294967296"), Some(0));
        assert_eq!(strtoul32(b"4294967295"), Some(u32::MAX));
        assert_eq!(strtoul32(b"+5"), Some(5));
        assert_eq!(strtoul32(b"-1"), None);
        assert_eq!(strtoul32(b"-0"), Some(0));
        assert_eq!(strtoul32(b"5x"), None);
        assert_eq!(strtoul32(b"5\t"), Some(5));
        assert_eq!(strtoul32(b""), None);
        assert_eq!(strtol32(b"-1"), Some(-1));
        assert_eq!(strtol32(b"4294967296"), Some(0));
        assert_eq!(strtol32(b"2147483648"), Some(i32::MIN));
        assert_eq!(strtol32(b"99999999999999999999"), None);
        assert_eq!(strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(strtoull(b"18446744073709551616"), None);
        assert_eq!(item_counter(b"5 "), Some(5));
        assert_eq!(item_counter(b" 7"), Some(7));
        assert_eq!(item_counter(b"1 2"), Some(1));
        assert_eq!(item_counter(b"12abc"), None);
        assert_eq!(item_counter(b""), None);
        assert_eq!(item_counter(b"-0"), Some(0));
        assert_eq!(item_counter(b"-1"), None);
    }
}
