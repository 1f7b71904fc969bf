//! Key choice for `magpie bench`, as memtier_benchmark's `--key-pattern`
//! letters: `R` uniform random, `S` sequential, `G` gaussian around
//! `--key-median`, `Z` zipf with `--key-zipf-exp`, and `P` sequential over
//! this client's own slice of the range (so clients never share keys).

/// A small, fast, seedable generator (SplitMix64): deterministic runs make
/// comparisons between servers fair, and no crate is needed for it.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        lo + self.next_u64() % (span + 1)
    }

    /// Standard normal (Box-Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Zipf over ranks 1..=n with exponent s, by rejection-inversion
/// (Hörmann and Derflinger, as in Apache Commons RNG): constant memory and
/// time whatever the range, unlike a cumulative table.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

impl Zipf {
    /// A sampler over `n >= 1` items with exponent `s > 0`.
    pub fn new(n: u64, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            cut: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(z.n + 0.5);
        z.cut = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let lx = x.ln();
        helper2((1.0 - self.s) * lx) * lx
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }

    /// A rank in 1..=n; rank 1 is the most likely.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.next_f64() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// One side (SET or GET) of `--key-pattern`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `R`: uniform over the range.
    Random,
    /// `S`: min, min+1, ... wrapping; every client walks the whole range.
    Sequential,
    /// `G`: normal around the median.
    Gaussian,
    /// `Z`: zipf, the low end of the range hottest.
    Zipf,
    /// `P`: sequential over this client's slice of the range.
    Parallel,
}

impl Pattern {
    /// Parses one pattern letter.
    pub fn from_letter(c: char) -> Option<Pattern> {
        Some(match c {
            'R' => Pattern::Random,
            'S' => Pattern::Sequential,
            'G' => Pattern::Gaussian,
            'Z' => Pattern::Zipf,
            'P' => Pattern::Parallel,
            _ => return None,
        })
    }
}

/// Settings shared by every client's key generators.
#[derive(Clone, Debug)]
pub struct KeySpace {
    /// Lowest key number.
    pub min: u64,
    /// Highest key number (inclusive).
    pub max: u64,
    /// Gaussian centre.
    pub median: f64,
    /// Gaussian spread.
    pub stddev: f64,
    /// Zipf exponent.
    pub zipf_exp: f64,
}

/// Chooses key numbers for one client and one operation type.
#[derive(Clone, Debug)]
pub struct KeyGen {
    pattern: Pattern,
    min: u64,
    max: u64,
    next: u64,
    median: f64,
    stddev: f64,
    zipf: Option<Zipf>,
}

impl KeyGen {
    /// A generator for client `index` of `clients` in total.
    pub fn new(pattern: Pattern, space: &KeySpace, index: u64, clients: u64) -> KeyGen {
        let (mut min, mut max) = (space.min, space.max);
        if pattern == Pattern::Parallel {
            // memtier: range / (clients * threads) + 1 keys each
            let per = (space.max - space.min) / clients.max(1) + 1;
            min = space
                .min
                .saturating_add(per.saturating_mul(index))
                .min(space.max);
            max = min.saturating_add(per - 1).min(space.max);
        }
        KeyGen {
            pattern,
            min,
            max,
            next: min,
            median: space.median,
            stddev: space.stddev,
            zipf: (pattern == Pattern::Zipf)
                .then(|| Zipf::new(space.max - space.min + 1, space.zipf_exp)),
        }
    }

    /// The next key number.
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        match self.pattern {
            Pattern::Random => rng.range(self.min, self.max),
            Pattern::Sequential | Pattern::Parallel => {
                let k = self.next;
                self.next = if k >= self.max { self.min } else { k + 1 };
                k
            }
            Pattern::Gaussian => {
                for _ in 0..16 {
                    let x = (self.median + rng.gaussian() * self.stddev).round();
                    if x >= self.min as f64 && x <= self.max as f64 {
                        return x as u64;
                    }
                }
                (self.median.round() as u64).clamp(self.min, self.max)
            }
            Pattern::Zipf => {
                let z = self.zipf.as_ref().expect("zipf sampler built for Z");
                self.min + z.sample(rng) - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(min: u64, max: u64) -> KeySpace {
        KeySpace {
            min,
            max,
            median: (min + max) as f64 / 2.0,
            stddev: (max - min) as f64 / 6.0,
            zipf_exp: 1.0,
        }
    }

    #[test]
    fn sequential_wraps_and_parallel_slices_do_not_overlap() {
        let mut rng = Rng::new(1);
        let mut s = KeyGen::new(Pattern::Sequential, &space(5, 7), 0, 1);
        let got: Vec<u64> = (0..5).map(|_| s.next(&mut rng)).collect();
        assert_eq!(got, [5, 6, 7, 5, 6]);
        let sp = space(1, 1000);
        let mut a = KeyGen::new(Pattern::Parallel, &sp, 0, 2);
        let mut b = KeyGen::new(Pattern::Parallel, &sp, 1, 2);
        assert_eq!(a.next(&mut rng), 1);
        assert_eq!(b.next(&mut rng), 501);
        let last_a = (0..499).map(|_| a.next(&mut rng)).last().unwrap();
        assert_eq!(last_a, 500);
        assert_eq!(a.next(&mut rng), 1, "wraps inside its own slice");
    }

    #[test]
    fn random_patterns_stay_in_range_and_zipf_is_skewed() {
        let mut rng = Rng::new(7);
        let sp = space(100, 1099);
        for p in [Pattern::Random, Pattern::Gaussian, Pattern::Zipf] {
            let mut g = KeyGen::new(p, &sp, 0, 1);
            for _ in 0..5000 {
                let k = g.next(&mut rng);
                assert!((100..=1099).contains(&k), "{p:?} gave {k}");
            }
        }
        let mut z = KeyGen::new(Pattern::Zipf, &sp, 0, 1);
        let hot = (0..10_000).filter(|_| z.next(&mut rng) < 110).count();
        // with s = 1 over 1000 items the top 10 ranks get ~39% of draws
        assert!((3_300..4_500).contains(&hot), "{hot}");
        let mut g = KeyGen::new(Pattern::Gaussian, &sp, 0, 1);
        let mid = (0..10_000)
            .filter(|_| (433..=766).contains(&g.next(&mut rng)))
            .count();
        // +-1 sigma holds ~68%
        assert!((6_300..7_300).contains(&mid), "{mid}");
    }
}
