//! The x86-64 `long double` arithmetic INCRBYFLOAT needs, in software.
//!
//! Redis parses both operands with `strtold`, adds them in 80-bit extended
//! precision (64-bit mantissa) and stores `%.17Lf` with trailing zeros
//! trimmed. Plain `f64` gives different text for everyday inputs (10.5 + 0.1
//! would read `10.59999999999999964` instead of `10.6`), so this module keeps
//! a 64-bit mantissa and a wide exponent, rounds to nearest-even exactly as
//! the hardware does, and prints the exact decimal expansion.
//!
//! Not modelled: the reduced precision of subnormal values below 2^-16382;
//! they print as `0` either way.

use std::cmp::Ordering;

/// Largest binary exponent of the top mantissa bit (values below 2^16384).
const MAX_TOP_EXP: i64 = 16383;
/// Smallest binary exponent of the top bit of a value that does not
/// underflow to zero (the smallest subnormal is 2^-16445).
const MIN_TOP_EXP: i64 = -16445;

/// A finite, non-NaN extended-precision value or an infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LongDouble {
    /// Signed zero.
    Zero { neg: bool },
    /// `mant * 2^exp` with the top bit of `mant` set.
    Finite { neg: bool, mant: u64, exp: i64 },
    /// Signed infinity.
    Inf { neg: bool },
}

impl LongDouble {
    /// Parses `s` as Redis's `string2ld` accepts it (the whole string must be
    /// a `strtold` number: decimal, hex float, `inf`/`infinity`; no spaces).
    /// None for NaN, overflow, underflow to zero, or anything else.
    pub(crate) fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= 5 * 1024 {
            return None;
        }
        let (neg, rest) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::Inf { neg });
        }
        let hex = rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x';
        let magnitude = if hex {
            parse_hex(&rest[2..])?
        } else {
            parse_decimal(rest)?
        };
        match magnitude {
            None => Some(LongDouble::Zero { neg }),
            Some((mant, exp)) => finite(neg, mant, exp),
        }
    }

    /// The rounded sum; None when it is infinite or NaN (the operands may be
    /// infinite).
    pub(crate) fn add(self, other: LongDouble) -> Option<LongDouble> {
        use LongDouble::*;
        match (self, other) {
            (Inf { .. }, _) | (_, Inf { .. }) => None,
            (Zero { neg: a }, Zero { neg: b }) => Some(Zero { neg: a && b }),
            (Zero { .. }, x) | (x, Zero { .. }) => Some(x),
            (
                Finite {
                    neg: na,
                    mant: ma,
                    exp: ea,
                },
                Finite {
                    neg: nb,
                    mant: mb,
                    exp: eb,
                },
            ) => {
                // a tiny operand (below half an ulp of the other) cannot change it
                if ea - eb >= 67 {
                    return Some(self);
                }
                if eb - ea >= 67 {
                    return Some(other);
                }
                let e0 = ea.min(eb);
                let a = Big::from_u64(ma).shl((ea - e0) as usize);
                let b = Big::from_u64(mb).shl((eb - e0) as usize);
                let (neg, sum) = if na == nb {
                    (na, a.add(&b))
                } else {
                    match a.cmp(&b) {
                        Ordering::Equal => return Some(Zero { neg: false }),
                        Ordering::Greater => (na, a.sub(&b)),
                        Ordering::Less => (nb, b.sub(&a)),
                    }
                };
                let (mant, exp) = sum.round_to_64(false);
                match finite(neg, mant, exp + e0) {
                    Some(v @ Finite { .. }) => Some(v),
                    // overflow is infinite; underflow cannot happen in a sum
                    _ => None,
                }
            }
        }
    }

    /// `%.17Lf` with trailing zeros (and a bare point) trimmed, `-0` shown
    /// as `0`: the text Redis stores for an INCRBYFLOAT result.
    pub(crate) fn to_human(self) -> String {
        let (neg, mant, exp) = match self {
            LongDouble::Zero { .. } => return "0".into(),
            LongDouble::Inf { neg } => return if neg { "-inf".into() } else { "inf".into() },
            LongDouble::Finite { neg, mant, exp } => (neg, mant, exp),
        };
        let mut out = String::new();
        if neg {
            out.push('-');
        }
        if exp >= 0 {
            out.push_str(&Big::from_u64(mant).shl(exp as usize).to_decimal());
            return out;
        }
        // value * 10^17 rounded half-even; m * 10^17 < 2^121 fits a u128
        let shift = (-exp) as u32;
        let scaled = mant as u128 * 100_000_000_000_000_000u128;
        let q = if shift >= 128 {
            0
        } else {
            let q = scaled >> shift;
            let rem = scaled & ((1u128 << shift) - 1);
            let half = 1u128 << (shift - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        };
        let digits = format!("{q:018}");
        let (int, frac) = digits.split_at(digits.len() - 17);
        out.push_str(int);
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

/// Builds a value from an already rounded `mant * 2^exp`, or None when it
/// overflows or underflows to zero.
fn finite(neg: bool, mant: u64, exp: i64) -> Option<LongDouble> {
    let top = exp + 63;
    if !(MIN_TOP_EXP..=MAX_TOP_EXP).contains(&top) {
        return None;
    }
    Some(LongDouble::Finite { neg, mant, exp })
}

/// Reads a decimal exponent's digits, saturating far beyond any value that
/// could still be finite and non-zero.
fn parse_exponent(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |v, &d| {
        (v * 10 + (d - b'0') as i64).min(1_000_000_000)
    });
    Some(if neg { -v } else { v })
}

/// A number's text split up: integer digits, fraction digits, exponent.
struct NumberText<'a> {
    int: &'a [u8],
    frac: &'a [u8],
    exp: Option<&'a [u8]>,
}

/// Splits `digits[.digits]` (at least one digit) from an exponent part
/// starting with `marker`.
fn split_number(s: &[u8], is_digit: fn(&u8) -> bool, marker: u8) -> Option<NumberText<'_>> {
    let int_end = s.iter().position(|c| !is_digit(c)).unwrap_or(s.len());
    let (int, rest) = s.split_at(int_end);
    let (frac, rest) = match rest.first() {
        Some(b'.') => {
            let rest = &rest[1..];
            let end = rest.iter().position(|c| !is_digit(c)).unwrap_or(rest.len());
            rest.split_at(end)
        }
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let exp = match rest.first() {
        None => None,
        Some(c) if c | 0x20 == marker => Some(&rest[1..]),
        Some(_) => return None,
    };
    Some(NumberText { int, frac, exp })
}

/// A parsed magnitude: None for zero, else `(mant, exp)` rounded to a
/// 64-bit mantissa with its top bit set, meaning `mant * 2^exp`.
type Magnitude = Option<(u64, i64)>;

/// `digits[.digits][e[+-]digits]`, correctly rounded to 64 bits.
fn parse_decimal(s: &[u8]) -> Option<Magnitude> {
    let NumberText { int, frac, exp } = split_number(s, u8::is_ascii_digit, b'e')?;
    let mut exp10 = match exp {
        Some(e) => parse_exponent(e)?,
        None => 0,
    };
    exp10 -= frac.len() as i64;
    let all = int.iter().chain(frac.iter()).copied();
    let mut digits: Vec<u8> = all.skip_while(|&d| d == b'0').collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
        exp10 += 1;
    }
    if digits.is_empty() {
        return Some(None);
    }
    let n = digits.len() as i64;
    // 10^(n+E-1) <= value < 10^(n+E): beyond these the result is out of range
    if n + exp10 > 4934 || n + exp10 < -4952 {
        return None;
    }
    let mut d = Big::zero();
    for chunk in digits.chunks(9) {
        let v = chunk.iter().fold(0u32, |v, &c| v * 10 + (c - b'0') as u32);
        d.mul_small(10u32.pow(chunk.len() as u32));
        d.add_small(v);
    }
    if exp10 >= 0 {
        d = d.mul(&Big::pow10(exp10 as usize));
        let (m, e) = d.round_to_64(false);
        return Some(Some((m, e)));
    }
    // d / 10^-E: scale d so the quotient has at least 66 bits, then round
    // with the remainder as the sticky bit
    let p = Big::pow10((-exp10) as usize);
    let k = (p.bits() + 66).saturating_sub(d.bits());
    let mut r = d.shl(k);
    let qbits = r.bits() + 1 - p.bits();
    let mut q = Big::zero();
    for i in (0..qbits).rev() {
        let ps = p.shl(i);
        if r.cmp(&ps) != Ordering::Less {
            r = r.sub(&ps);
            q = q.add(&Big::one().shl(i));
        }
    }
    let (m, e) = q.round_to_64(!r.is_zero());
    Some(Some((m, e - k as i64)))
}

/// The part of a hex float after `0x`: `h[.h][p[+-]digits]`.
fn parse_hex(s: &[u8]) -> Option<Magnitude> {
    let NumberText { int, frac, exp } = split_number(s, u8::is_ascii_hexdigit, b'p')?;
    let mut exp2 = match exp {
        Some(e) => parse_exponent(e)?,
        None => 0,
    };
    exp2 -= 4 * frac.len() as i64;
    let mut h = Big::zero();
    for &c in int.iter().chain(frac.iter()) {
        h.mul_small(16);
        h.add_small((c as char).to_digit(16).unwrap_or(0));
    }
    if h.is_zero() {
        return Some(None);
    }
    let (m, e) = h.round_to_64(false);
    Some(Some((m, e.saturating_add(exp2))))
}

/// Just enough of an unsigned big integer (little-endian u32 limbs, no
/// trailing zero limbs) for exact conversions.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn zero() -> Big {
        Big(Vec::new())
    }

    fn one() -> Big {
        Big(vec![1])
    }

    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(top) => self.0.len() * 32 - top.leading_zeros() as usize,
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|l| l >> (i % 32) & 1 == 1)
    }

    /// True when any bit below `i` is set.
    fn any_below(&self, i: usize) -> bool {
        let (limbs, bits) = (i / 32, i % 32);
        self.0.iter().take(limbs).any(|&l| l != 0)
            || (bits > 0
                && self
                    .0
                    .get(limbs)
                    .is_some_and(|&l| l & ((1 << bits) - 1) != 0))
    }

    /// 64 bits starting at bit `from`.
    fn bits_at(&self, from: usize) -> u64 {
        (0..64).fold(0u64, |v, i| v | (self.bit(from + i) as u64) << i)
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in self.0.iter_mut() {
            let v = *l as u64 * m as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = a as u64;
        for l in self.0.iter_mut() {
            if carry == 0 {
                break;
            }
            let v = *l as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn pow10(n: usize) -> Big {
        let mut b = Big::one();
        for _ in 0..n / 9 {
            b.mul_small(1_000_000_000);
        }
        b.mul_small(10u32.pow((n % 9) as u32));
        b
    }

    fn mul(&self, o: &Big) -> Big {
        let mut r = vec![0u32; self.0.len() + o.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in o.0.iter().enumerate() {
                let v = r[i + j] as u64 + a as u64 * b as u64 + carry;
                r[i + j] = v as u32;
                carry = v >> 32;
            }
            r[i + o.0.len()] = carry as u32;
        }
        let mut r = Big(r);
        r.trim();
        r
    }

    fn shl(&self, n: usize) -> Big {
        if self.is_zero() {
            return Big::zero();
        }
        let (limbs, bits) = (n / 32, n % 32);
        let mut r = vec![0u32; limbs];
        let mut carry = 0u32;
        for &l in &self.0 {
            if bits == 0 {
                r.push(l);
            } else {
                r.push(l << bits | carry);
                carry = l >> (32 - bits);
            }
        }
        r.push(carry);
        let mut r = Big(r);
        r.trim();
        r
    }

    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut r = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = *self.0.get(i).unwrap_or(&0) as u64 + *o.0.get(i).unwrap_or(&0) as u64 + carry;
            r.push(v as u32);
            carry = v >> 32;
        }
        r.push(carry as u32);
        let mut r = Big(r);
        r.trim();
        r
    }

    /// `self - o`; requires `self >= o`.
    fn sub(&self, o: &Big) -> Big {
        let mut r = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = self.0[i] as i64 - *o.0.get(i).unwrap_or(&0) as i64 - borrow;
            borrow = (v < 0) as i64;
            if v < 0 {
                v += 1 << 32;
            }
            r.push(v as u32);
        }
        let mut r = Big(r);
        r.trim();
        r
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    /// Rounds a non-zero value to a 64-bit mantissa (nearest, ties to even;
    /// `sticky` says non-zero bits were already cut below it). Returns
    /// `(mant, exp)` with `value ~= mant * 2^exp` and the top bit of `mant` set.
    fn round_to_64(&self, sticky: bool) -> (u64, i64) {
        let len = self.bits();
        if len <= 64 {
            let v = self.bits_at(0);
            return (v << (64 - len), len as i64 - 64);
        }
        let shift = len - 64;
        let mut top = self.bits_at(shift);
        let round = self.bit(shift - 1);
        let more = sticky || self.any_below(shift - 1);
        let mut exp = shift as i64;
        if round && (more || top & 1 == 1) {
            top = top.wrapping_add(1);
            if top == 0 {
                top = 1 << 63;
                exp += 1;
            }
        }
        (top, exp)
    }

    fn to_decimal(&self) -> String {
        let mut limbs = self.0.clone();
        let mut chunks = Vec::new();
        while !limbs.is_empty() {
            let mut rem = 0u64;
            for l in limbs.iter_mut().rev() {
                let v = rem << 32 | *l as u64;
                *l = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
            chunks.push(rem as u32);
        }
        let mut out = match chunks.pop() {
            Some(top) => top.to_string(),
            None => return "0".into(),
        };
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:09}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        let a = LongDouble::parse(a.as_bytes())?;
        let b = LongDouble::parse(b.as_bytes())?;
        Some(a.add(b)?.to_human())
    }

    #[test]
    fn sums_read_like_redis() {
        // expected texts taken from redis-server 7.0
        assert_eq!(incr("10.5", "0.1").unwrap(), "10.6");
        assert_eq!(incr("1", "0.1").unwrap(), "1.1");
        assert_eq!(incr("0", "1e20").unwrap(), "100000000000000000000");
        assert_eq!(incr("0", "0x10").unwrap(), "16");
        assert_eq!(incr("16", ".5").unwrap(), "16.5");
        assert_eq!(incr("0", "5.").unwrap(), "5");
        assert_eq!(incr("0", "+1").unwrap(), "1");
        assert_eq!(incr("0", "1e-4940").unwrap(), "0");
        assert_eq!(incr("-1", "1").unwrap(), "0");
        assert_eq!(incr("0", "-0.00000000000000000001").unwrap(), "0");
        assert_eq!(incr("3.0e3", "1.5e-1").unwrap(), "3000.14999999999999991");
        assert_eq!(incr("0.9", "1e-17").unwrap(), "0.90000000000000001");
        assert_eq!(
            incr("0.9", "123456789.123456789").unwrap(),
            "123456790.02345678900019266"
        );
        assert_eq!(incr("1", "-1.1").unwrap(), "-0.1");
        assert_eq!(incr("-0.1", "0x1.8p1").unwrap(), "2.9");
        assert_eq!(incr("1.5e-3", "0").unwrap(), "0.0015");
    }

    #[test]
    fn rejects_what_string2ld_rejects() {
        for bad in [
            "", " 1", "1 ", "nan", "-nan", "1.5e+", "1e", ".", "e5", "0x", "0xp1", "1e5000",
            "-1e5000", "1e-5000", "abc", "1\u{0}",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(incr("inf", "1"), None);
        assert_eq!(incr("inf", "-inf"), None);
        assert_eq!(incr("1.1e4932", "1.1e4932"), None);
    }

    #[test]
    fn parsing_rounds_to_nearest() {
        // 2^64 + 1 is not representable: rounds to 2^64 (tie to even)
        let v = LongDouble::parse(b"18446744073709551617").unwrap();
        assert_eq!(v.to_human(), "18446744073709551616");
        let v = LongDouble::parse(b"18446744073709551619").unwrap();
        assert_eq!(v.to_human(), "18446744073709551620");
    }
}
