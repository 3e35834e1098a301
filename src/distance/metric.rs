//! The metrics and their inner loops.
//!
//! Each metric is a zero-sized [`Kernel`] type so the row loops in [`super::pdist`],
//! [`super::cdist`] and [`super::pairs`] are monomorphised per metric: the match on [`Metric`]
//! happens once per call ([`dispatch!`](crate::dispatch_metric)), never per pair. The row loop
//! ([`row_to_rows`]) computes four pairs at a time with independent accumulators, each summing the
//! features in order, as scipy does.
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

/// One metric as a per-feature term, a reduction (sum, or max for chebyshev) and a final step.
pub(crate) trait Kernel: Copy + Send + Sync {
    /// Reduce with `max` (NaN terms skipped) instead of `+`.
    const MAX: bool = false;
    fn term(x: f64, y: f64) -> f64;
    /// The distance from the reduced terms; `aux_*` are the rows' [`Metric::row_aux`].
    fn finish(self, reduced: f64, aux_a: f64, aux_b: f64) -> f64;

    #[inline(always)]
    fn reduce(acc: f64, t: f64) -> f64 {
        if Self::MAX {
            // `acc < t` is false for a NaN term, so NaN never wins: scipy's behaviour.
            if acc < t {
                t
            } else {
                acc
            }
        } else {
            acc + t
        }
    }

    /// The distance between rows `a` and `b` (features in order, like scipy's loops).
    #[inline(always)]
    fn dist(self, a: &[f64], b: &[f64], aux_a: f64, aux_b: f64) -> f64 {
        let mut acc = 0.0;
        for (&x, &y) in a.iter().zip(b) {
            acc = Self::reduce(acc, Self::term(x, y));
        }
        self.finish(acc, aux_a, aux_b)
    }
}

/// Distances from row `a` to consecutive rows `others` (`out.len()` rows of `a.len()` features),
/// four rows at a time: four independent accumulators keep the FPU busy (the per-pair loop over
/// a few features is too short to vectorise), and each sum still runs over the features in order.
#[inline(always)]
pub(crate) fn row_to_rows<K: Kernel>(k: K, a: &[f64], aux_a: f64, others: &[f64], aux: &[f64], out: &mut [f64]) {
    let d = a.len();
    if d == 0 {
        // No features: the empty sum (0), or NaN for cosine (0/0), like scipy.
        for (o, &ab) in out.iter_mut().zip(aux) {
            *o = k.finish(0.0, aux_a, ab);
        }
        return;
    }
    let n = out.len();
    let (others, aux) = (&others[..n * d], &aux[..n]);
    let mut quads = out.chunks_exact_mut(4);
    let mut rows = others.chunks_exact(4 * d);
    let mut auxes = aux.chunks_exact(4);
    for ((o, r), x) in (&mut quads).zip(&mut rows).zip(&mut auxes) {
        let (b0, rest) = r.split_at(d);
        let (b1, rest) = rest.split_at(d);
        let (b2, b3) = rest.split_at(d);
        let (mut s0, mut s1, mut s2, mut s3) = (0.0, 0.0, 0.0, 0.0);
        for f in 0..d {
            let v = a[f];
            s0 = K::reduce(s0, K::term(v, b0[f]));
            s1 = K::reduce(s1, K::term(v, b1[f]));
            s2 = K::reduce(s2, K::term(v, b2[f]));
            s3 = K::reduce(s3, K::term(v, b3[f]));
        }
        o[0] = k.finish(s0, aux_a, x[0]);
        o[1] = k.finish(s1, aux_a, x[1]);
        o[2] = k.finish(s2, aux_a, x[2]);
        o[3] = k.finish(s3, aux_a, x[3]);
    }
    let rest_out = quads.into_remainder();
    for ((o, b), &ab) in rest_out.iter_mut().zip(rows.remainder().chunks_exact(d)).zip(auxes.remainder()) {
        *o = k.dist(a, b, aux_a, ab);
    }
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

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Kernel for Euclidean {
    #[inline(always)]
    fn term(x: f64, y: f64) -> f64 {
        let t = x - y;
        t * t
    }
    #[inline(always)]
    fn finish(self, s: f64, _: f64, _: f64) -> f64 {
        s.sqrt()
    }
}

impl Kernel for SqEuclidean {
    #[inline(always)]
    fn term(x: f64, y: f64) -> f64 {
        let t = x - y;
        t * t
    }
    #[inline(always)]
    fn finish(self, s: f64, _: f64, _: f64) -> f64 {
        s
    }
}

impl Kernel for Cityblock {
    #[inline(always)]
    fn term(x: f64, y: f64) -> f64 {
        (x - y).abs()
    }
    #[inline(always)]
    fn finish(self, s: f64, _: f64, _: f64) -> f64 {
        s
    }
}

impl Kernel for Chebyshev {
    const MAX: bool = true;
    #[inline(always)]
    fn term(x: f64, y: f64) -> f64 {
        (x - y).abs()
    }
    #[inline(always)]
    fn finish(self, m: f64, _: f64, _: f64) -> f64 {
        m
    }
}

impl Kernel for Cosine {
    #[inline(always)]
    fn term(x: f64, y: f64) -> f64 {
        x * y
    }
    #[inline(always)]
    fn finish(self, dot: f64, norm_a: f64, norm_b: f64) -> f64 {
        let mut c = dot / (norm_a * norm_b);
        if c.abs() > 1.0 {
            c = 1.0f64.copysign(c); // scipy's guard against rounding past +-1
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
