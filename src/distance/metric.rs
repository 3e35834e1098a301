//! The metrics and their inner loops.
//!
//! Each metric is a zero-sized [`Kernel`] type so the row loops in [`super::pdist`],
//! [`super::cdist`] and [`super::pairs`] are monomorphised per metric: the match on [`Metric`]
//! happens once per call ([`dispatch!`](crate::dispatch_metric)), never per pair. The loops
//! accumulate four lanes over `chunks_exact(4)` so the compiler vectorises them without bounds
//! checks.
//!
//! Semantics are scipy's (`scipy.spatial.distance.pdist`, scipy 1.17), checked by the test suite:
//! - NaN in either vector gives NaN, and infinity gives infinity (or NaN for `inf - inf`), for
//!   `euclidean`, `sqeuclidean` and `cityblock`;
//! - `chebyshev` is `max |u_i - v_i|` where a NaN difference never wins the comparison, so NaN
//!   features are skipped (`[nan, 1]` vs `[0, 3]` is 2), exactly as scipy does;
//! - `cosine` is `1 - u.v / (|u| |v|)` with the cosine clipped to [-1, 1] (scipy's rounding guard),
//!   so the result is always in [0, 2]; a zero vector, NaN or infinity gives NaN (0/0, inf/inf),
//!   as in scipy.

use std::str::FromStr;

use super::DistanceError;

/// A distance metric, parsed from its scipy name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `sqrt(sum (u_i - v_i)^2)`
    Euclidean,
    /// `sum (u_i - v_i)^2`
    SqEuclidean,
    /// `sum |u_i - v_i|` (Manhattan)
    Cityblock,
    /// `max |u_i - v_i|`
    Chebyshev,
    /// `1 - u.v / (|u| |v|)`
    Cosine,
}

impl Metric {
    /// The accepted names, as scipy spells them.
    pub const NAMES: [&'static str; 5] = ["euclidean", "sqeuclidean", "cityblock", "chebyshev", "cosine"];

    /// The metric's scipy name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::SqEuclidean => "sqeuclidean",
            Metric::Cityblock => "cityblock",
            Metric::Chebyshev => "chebyshev",
            Metric::Cosine => "cosine",
        }
    }

    /// Per-row values the metric needs besides the rows: the norms for `cosine`, nothing (zeros)
    /// otherwise.
    pub(crate) fn row_aux(self, x: &[f64], n: usize, d: usize) -> Vec<f64> {
        match self {
            Metric::Cosine if d > 0 => x.chunks_exact(d).take(n).map(|r| dot(r, r).sqrt()).collect(),
            _ => vec![0.0; n],
        }
    }
}

impl FromStr for Metric {
    type Err = DistanceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "euclidean" => Metric::Euclidean,
            "sqeuclidean" => Metric::SqEuclidean,
            "cityblock" => Metric::Cityblock,
            "chebyshev" => Metric::Chebyshev,
            "cosine" => Metric::Cosine,
            _ => return Err(DistanceError::UnknownMetric(s.to_string())),
        })
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One metric's distance between two rows of equal length; `aux_*` are the rows' [`Metric::row_aux`].
pub(crate) trait Kernel: Copy + Send + Sync {
    fn dist(self, a: &[f64], b: &[f64], aux_a: f64, aux_b: f64) -> f64;
}

/// Calls `$body` with `$k` bound to the kernel of `$metric` (monomorphised per metric).
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_metric {
    ($metric:expr, $k:ident => $body:expr) => {
        match $metric {
            $crate::distance::Metric::Euclidean => {
                let $k = $crate::distance::metric::Euclidean;
                $body
            }
            $crate::distance::Metric::SqEuclidean => {
                let $k = $crate::distance::metric::SqEuclidean;
                $body
            }
            $crate::distance::Metric::Cityblock => {
                let $k = $crate::distance::metric::Cityblock;
                $body
            }
            $crate::distance::Metric::Chebyshev => {
                let $k = $crate::distance::metric::Chebyshev;
                $body
            }
            $crate::distance::Metric::Cosine => {
                let $k = $crate::distance::metric::Cosine;
                $body
            }
        }
    };
}

#[derive(Clone, Copy)]
pub(crate) struct Euclidean;
#[derive(Clone, Copy)]
pub(crate) struct SqEuclidean;
#[derive(Clone, Copy)]
pub(crate) struct Cityblock;
#[derive(Clone, Copy)]
pub(crate) struct Chebyshev;
#[derive(Clone, Copy)]
pub(crate) struct Cosine;

/// `sum f(a_i, b_i)` with four independent accumulators (vectorisable, no bounds checks).
#[inline(always)]
fn sum_by(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s += f(x, y);
        }
    }
    let mut tail = 0.0;
    for (&x, &y) in ra.iter().zip(rb) {
        tail += f(x, y);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    sum_by(a, b, |x, y| x * y)
}

impl Kernel for Euclidean {
    #[inline(always)]
    fn dist(self, a: &[f64], b: &[f64], _: f64, _: f64) -> f64 {
        SqEuclidean.dist(a, b, 0.0, 0.0).sqrt()
    }
}

impl Kernel for SqEuclidean {
    #[inline(always)]
    fn dist(self, a: &[f64], b: &[f64], _: f64, _: f64) -> f64 {
        sum_by(a, b, |x, y| {
            let t = x - y;
            t * t
        })
    }
}

impl Kernel for Cityblock {
    #[inline(always)]
    fn dist(self, a: &[f64], b: &[f64], _: f64, _: f64) -> f64 {
        sum_by(a, b, |x, y| (x - y).abs())
    }
}

impl Kernel for Chebyshev {
    #[inline(always)]
    fn dist(self, a: &[f64], b: &[f64], _: f64, _: f64) -> f64 {
        // `m < t` is false for a NaN difference, so NaN never wins: scipy's behaviour.
        let mut m = 0.0f64;
        for (&x, &y) in a.iter().zip(b) {
            let t = (x - y).abs();
            if m < t {
                m = t;
            }
        }
        m
    }
}

impl Kernel for Cosine {
    #[inline(always)]
    fn dist(self, a: &[f64], b: &[f64], norm_a: f64, norm_b: f64) -> f64 {
        let mut c = dot(a, b) / (norm_a * norm_b);
        if c.abs() > 1.0 {
            c = 1.0f64.copysign(c);
        }
        1.0 - c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_lists_the_valid_ones() {
        for name in Metric::NAMES {
            assert_eq!(name.parse::<Metric>().unwrap().name(), name);
        }
        let err = "manhattan".parse::<Metric>().unwrap_err().to_string();
        assert!(err.contains("\"manhattan\"") && err.contains("euclidean, sqeuclidean, cityblock"), "{err}");
    }

    #[test]
    fn kernels_match_hand_computed_values() {
        let (a, b) = ([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 0.0, 3.0, 8.0, 5.0]);
        assert_eq!(SqEuclidean.dist(&a, &b, 0.0, 0.0), 1.0 + 4.0 + 16.0);
        assert_eq!(Euclidean.dist(&a, &b, 0.0, 0.0), 21.0f64.sqrt());
        assert_eq!(Cityblock.dist(&a, &b, 0.0, 0.0), 7.0);
        assert_eq!(Chebyshev.dist(&a, &b, 0.0, 0.0), 4.0);
        assert_eq!(Chebyshev.dist(&[f64::NAN, 1.0], &[0.0, 3.0], 0.0, 0.0), 2.0);
        let n = Metric::Cosine.row_aux(&[3.0, 4.0, 0.0, 0.0, 0.0, 0.0], 3, 2);
        assert_eq!(n[..2], [5.0, 0.0]);
        assert!(Cosine.dist(&[3.0, 4.0], &[0.0, 0.0], 5.0, 0.0).is_nan(), "zero vector: NaN like scipy");
        assert_eq!(Cosine.dist(&[1.0, 0.0], &[0.0, 2.0], 1.0, 2.0), 1.0);
        assert_eq!(Cosine.dist(&[2.0, 0.0], &[-3.0, 0.0], 2.0, 3.0), 2.0);
    }
}
