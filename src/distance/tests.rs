//! Unit tests across the module: the kernels against a naive reference, grouped pairs and windows.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};

use super::pairs::group_pairs;
use super::*;

fn lcg(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % 1000) as f64 / 100.0 - 5.0
        })
        .collect()
}

fn naive(a: &[f64], b: &[f64], m: Metric) -> f64 {
    let diffs = a.iter().zip(b).map(|(x, y)| x - y);
    match m {
        Metric::Euclidean => diffs.map(|t| t * t).sum::<f64>().sqrt(),
        Metric::SqEuclidean => diffs.map(|t| t * t).sum(),
        Metric::Cityblock => diffs.map(f64::abs).sum(),
        Metric::Chebyshev => diffs.map(f64::abs).fold(0.0, f64::max),
        Metric::Cosine => {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            1.0 - (dot / (na * nb)).clamp(-1.0, 1.0)
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(1.0)
}

#[test]
fn pdist_and_cdist_match_naive_for_every_metric() {
    let (n, d) = (300, 9);
    let x = lcg(1, n * d);
    let y = lcg(2, 7 * d);
    for name in Metric::NAMES {
        let m: Metric = name.parse().unwrap();
        let p = pdist(&x, n, d, m).unwrap();
        let mut k = 0;
        for i in 0..n {
            for j in i + 1..n {
                assert!(close(p[k], naive(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d], m)), "{name} {i} {j}");
                k += 1;
            }
        }
        assert_eq!(k, p.len());
        let c = cdist(&x, n, &y, 7, d, m).unwrap();
        for i in 0..n {
            for j in 0..7 {
                assert!(close(c[i * 7 + j], naive(&x[i * d..(i + 1) * d], &y[j * d..(j + 1) * d], m)), "{name}");
            }
        }
    }
}

#[test]
fn shapes_are_checked_not_panicked_on() {
    assert!(matches!(pdist(&[1.0, 2.0, 3.0], 2, 2, Metric::Euclidean), Err(DistanceError::Shape(_))));
    assert!(matches!(cdist(&[1.0, 2.0], 1, &[1.0], 1, 2, Metric::Euclidean), Err(DistanceError::Shape(_))));
    assert_eq!(pdist(&[], 0, 3, Metric::Cosine).unwrap(), Vec::<f64>::new());
    assert_eq!(pdist(&[1.0], 1, 1, Metric::Cosine).unwrap(), Vec::<f64>::new());
    assert_eq!(pdist(&[], 3, 0, Metric::Euclidean).unwrap(), vec![0.0; 3]);
    assert!(cdist(&[], 2, &[], 1, 0, Metric::Cosine).unwrap().iter().all(|v| v.is_nan()));
}

/// Brute-force reference of one group's rule (positions, sorted by (dist, a, b)).
fn reference(x: &[f64], m: usize, d: usize, opts: &PairOptions) -> Vec<(u32, u32, f64)> {
    let dist = |i: usize, j: usize| naive(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d], opts.metric);
    let key = |v: f64| sort::dist_key(v);
    let knn = |i: usize, k: usize| {
        let mut c: Vec<(u64, usize)> = (0..m).filter(|&j| j != i).map(|j| (key(dist(i, j)), j)).collect();
        c.sort();
        c.truncate(k);
        c.into_iter().map(|(_, j)| j).collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for i in 0..m {
        for j in i + 1..m {
            let v = dist(i, j);
            let ok_k = opts.top_k.is_none_or(|k| knn(i, k).contains(&j) || knn(j, k).contains(&i));
            let ok_t = opts.max_distance.is_none_or(|t| v <= t);
            if ok_k && ok_t {
                out.push((i as u32, j as u32, v));
            }
        }
    }
    if opts.sort {
        out.sort_by_key(|&(i, j, v)| (key(v), i, j));
    }
    out
}

#[test]
fn group_pairs_match_the_reference_rules() {
    // Integer-valued features give many tied distances; a NaN row sorts last.
    let (m, d) = (60, 3);
    let mut x: Vec<f64> = lcg(3, m * d).iter().map(|v| v.round()).collect();
    x[5 * d] = f64::NAN;
    let rows: Vec<u32> = (0..m as u32).collect();
    for metric in [Metric::Euclidean, Metric::Cityblock, Metric::Chebyshev, Metric::Cosine] {
        for (top_k, max_distance, sort) in [
            (None, None, true),
            (None, None, false),
            (Some(3), None, true),
            (Some(1), Some(4.0), true),
            (None, Some(3.0), false),
            (Some(0), None, true),
            (Some(500), None, true),
        ] {
            let opts = PairOptions { top_k, max_distance, sort, ..PairOptions::new(metric) };
            let p = group_pairs(&x, m, d, &rows, &opts).unwrap();
            let got: Vec<(u32, u32, f64)> = (0..p.len()).map(|i| (p.a[i], p.b[i], p.dist[i])).collect();
            let want = reference(&x, m, d, &opts);
            assert_eq!(got.len(), want.len(), "{opts:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.0 == w.0 && g.1 == w.1 && (close(g.2, w.2) || (g.2.is_nan() && w.2.is_nan())),
                    "{opts:?}: {g:?} {w:?}"
                );
            }
        }
    }
}

#[test]
fn large_group_uses_the_radix_path_and_stays_exact() {
    let (m, d) = (400, 2); // 79,800 pairs: above the radix threshold
    let x: Vec<f64> = lcg(4, m * d).iter().map(|v| (v * 4.0).round()).collect();
    let rows: Vec<u32> = (0..m as u32).collect();
    let opts = PairOptions::new(Metric::SqEuclidean);
    let p = group_pairs(&x, m, d, &rows, &opts).unwrap();
    let want = reference(&x, m, d, &opts);
    let got: Vec<(u32, u32, f64)> = (0..p.len()).map(|i| (p.a[i], p.b[i], p.dist[i])).collect();
    assert_eq!(got, want);
}

#[test]
fn all_pairs_sorted_are_exactly_pdist_sorted_with_nan_and_ties() {
    // Sizes around the scatter threshold, many ties (rounded features), NaN and infinite rows,
    // a group of identical rows (one run), and every metric: bit-identical to pdist, sorted by
    // (key, a, b).
    // (1500, 2, 20.0): 1.1M pairs on a coarse grid, so buckets hold long runs of equal keys.
    let cases: [(usize, usize, f64); 6] =
        [(30, 3, 1.0), (300, 4, 1.0), (700, 3, 4.0), (900, 9, 1e6), (260, 2, 0.0), (1500, 2, 20.0)];
    for (m, d, scale) in cases {
        let mut x: Vec<f64> = lcg(m as u64, m * d).iter().map(|v| (v * scale).round() / 7.0).collect();
        if m > 100 {
            x[17 * d] = f64::NAN;
            x[90 * d + 1] = f64::INFINITY;
        }
        let rows: Vec<u32> = (0..m as u32).map(|r| r * 3 + 1).collect();
        for metric in [Metric::Euclidean, Metric::SqEuclidean, Metric::Cityblock, Metric::Chebyshev, Metric::Cosine] {
            let p = group_pairs(&x, m, d, &rows, &PairOptions::new(metric)).unwrap();
            let dist = pdist(&x, m, d, metric).unwrap();
            let mut want: Vec<(u64, u32, u32)> = Vec::with_capacity(dist.len());
            let mut t = 0;
            for i in 0..m as u32 {
                for j in i + 1..m as u32 {
                    want.push((sort::dist_key(dist[t]), i * 3 + 1, j * 3 + 1));
                    t += 1;
                }
            }
            want.sort_unstable();
            let got: Vec<(u64, u32, u32)> = (0..p.len()).map(|i| (sort::dist_key(p.dist[i]), p.a[i], p.b[i])).collect();
            assert!(got == want, "m={m} d={d} scale={scale} {metric}");
            for (g, w) in p.dist.iter().zip(&want) {
                assert!(g.to_bits() == sort::key_dist(w.0).to_bits());
            }
        }
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column(b.schema().index_of(name).unwrap())
}

#[test]
fn stream_groups_by_key_orders_by_id_and_batches() {
    let key: ArrayRef = Arc::new(StringArray::from(vec!["b", "a", "b", "a", "b", "c"]));
    let id: ArrayRef = Arc::new(Int64Array::from(vec![50, 40, 30, 20, 10, 0]));
    let features = vec![0.0, 1.0, 3.0, 2.0, 7.0, 9.0];
    let input = PairsInput::new(key, id, features, 1).unwrap();
    let stream = PairStream::new(input, PairOptions::new(Metric::Euclidean), 2).unwrap();
    assert_eq!(stream.groups(), 3);
    let batches: Vec<RecordBatch> = stream.map(|b| b.unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), vec![2, 2]);
    let keys: Vec<String> = batches
        .iter()
        .flat_map(|b| column(b, "key").as_string::<i32>().iter().map(|s| s.unwrap().to_string()).collect::<Vec<_>>())
        .collect();
    assert_eq!(keys, ["a", "b", "b", "b"]);
    let ids = |name| {
        batches.iter().flat_map(|b| column(b, name).as_primitive::<Int64Type>().values().to_vec()).collect::<Vec<_>>()
    };
    // group a: rows 1 (id 40, x=1) and 3 (id 20, x=2): id order puts 20 first.
    // group b: ids 10 (x=7), 30 (x=3), 50 (x=0): pairs (30,50)=3, (10,30)=4, (10,50)=7
    assert_eq!(ids("id_1"), vec![20, 30, 10, 10]);
    assert_eq!(ids("id_2"), vec![40, 50, 30, 50]);
    let dist: Vec<f64> =
        batches.iter().flat_map(|b| column(b, "distance").as_primitive::<Float64Type>().values().to_vec()).collect();
    assert_eq!(dist, vec![1.0, 3.0, 4.0, 7.0]);
    assert!(batches.iter().all(|b| column(b, "window_start").null_count() == b.num_rows()));
}

#[test]
fn windows_close_on_the_watermark_and_count_late_rows() {
    let opts = PairOptions::new(Metric::Cityblock);
    let mut w = WindowedPairs::new(10, 5, 1, opts, 1000).unwrap();
    let arr = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    // window [0,10): ids 1,2,3; the watermark reaches 14 - 5 = 9: nothing closes yet.
    let out = w.push(&arr(vec![7, 7, 7]), &arr(vec![1, 2, 3]), &[1, 2, 14], &[0.0, 1.0, 5.0]).unwrap();
    assert!(out.is_empty());
    assert_eq!((w.open_windows(), w.watermark()), (2, Some(9)));
    // t=3 still joins [0,10); t=16 moves the watermark to 11: [0,10) closes with 3 rows.
    let out = w.push(&arr(vec![7, 7]), &arr(vec![4, 5]), &[3, 16], &[3.0, 0.5]).unwrap();
    let rows: usize = out.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);
    let starts = out[0].column(1).as_primitive::<arrow_array::types::TimestampNanosecondType>().values().to_vec();
    assert_eq!(starts, vec![0, 0, 0]);
    assert_eq!(out[0].column(5).as_primitive::<Float64Type>().values().to_vec(), vec![1.0, 2.0, 3.0]);
    // A row for the closed window is late: counted, not paired.
    let out = w.push(&arr(vec![7]), &arr(vec![6]), &[9], &[0.0]).unwrap();
    assert!(out.is_empty());
    assert_eq!(w.late_events(), 1);
    let out = w.flush().unwrap();
    assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 1); // ids 3 and 5 in [10,20)
    assert_eq!(w.open_windows(), 0);
    // Type changes are refused without changing the state.
    let s: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
    assert!(w.push(&s, &arr(vec![1]), &[30], &[0.0]).is_err());
    assert_eq!(w.watermark(), Some(11));
}

fn out_of_memory<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(e @ DistanceError::OutOfMemory { .. }) => e.to_string(),
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
}

#[test]
fn size_checks_refuse_overflow_and_absurd_sizes_without_allocating() {
    // Checked arithmetic: the exact count never overflows, the usize conversion is refused.
    assert_eq!(pdist::pair_count_u128(usize::MAX), (usize::MAX as u128) * (usize::MAX as u128 - 1) / 2);
    assert!(pdist::pair_count(usize::MAX).is_none());
    let msg = out_of_memory(pdist::checked_pairs::<f64>(usize::MAX, || "test".into()));
    assert!(msg.contains("max_group_events") && msg.contains("bytes"), "{msg}");
    // Beyond isize::MAX bytes, or beyond RAM + swap.
    assert!(matches!(super::alloc_bytes::<u64>(u128::MAX, String::new), Err(DistanceError::OutOfMemory { .. })));
    assert!(super::alloc_bytes::<u64>(1 << 60, String::new).is_err());
    assert!(super::alloc_bytes::<u8>(1 << 50, String::new).is_err()); // 1 PiB: no machine here has it
    assert_eq!(super::alloc_bytes::<u64>(1000, String::new).unwrap(), 8000);
    assert!(super::try_zeroed::<u64>(1 << 60, String::new).is_err());
    assert!(super::try_with_capacity::<u32>(usize::MAX / 2, String::new).is_err());
    assert_eq!(super::try_zeroed::<f64>(3, String::new).unwrap(), vec![0.0; 3]);
    assert!(super::try_zeroed::<(u64, u64)>(0, String::new).unwrap().is_empty());
    // Zero features make a huge row count cheap to describe: pdist/cdist must refuse, not abort.
    let msg = out_of_memory(pdist(&[], 1 << 40, 0, Metric::Euclidean));
    assert!(msg.contains("pdist of 1099511627776 rows"), "{msg}");
    assert!(msg.contains(&format!("{} pairs", pdist::pair_count_u128(1 << 40))), "{msg}");
    out_of_memory(pdist(&[], usize::MAX, 0, Metric::Euclidean));
    out_of_memory(cdist(&[], 1 << 33, &[], 1 << 33, 0, Metric::Cityblock));
    out_of_memory(cdist(&[], usize::MAX, &[], 3, 0, Metric::Cityblock));
    // A group of 2M events, unsorted (so not refused as "too many to sort"): 2e12 pairs.
    let m = 2_000_000;
    let rows: Vec<u32> = (0..m as u32).collect();
    let opts = PairOptions { sort: false, ..PairOptions::new(Metric::Euclidean) };
    out_of_memory(group_pairs(&[], m, 0, &rows, &opts));
    // The stream refuses such a group when it is planned.
    let key: ArrayRef = Arc::new(Int64Array::from(vec![1; m]));
    let id: ArrayRef = Arc::new(Int64Array::from((0..m as i64).collect::<Vec<_>>()));
    let input = PairsInput::new(key, id, vec![], 0).unwrap();
    out_of_memory(PairStream::new(input.clone(), opts, 1000).map(|s| s.groups()));
    // ... unless max_group_events turns it into top_k pairs (m * 1 at most) or skips it.
    let limited = PairOptions { max_group_events: Some(1000), top_k: Some(1), ..opts };
    assert_eq!(PairStream::new(input.clone(), limited, 1000).unwrap().large_groups().len(), 1);
    let skip = PairOptions { max_group_events: Some(1000), on_large_group: LargeGroup::Skip, ..opts };
    let mut s = PairStream::new(input, skip, 1000).unwrap();
    assert!(s.next_batch().unwrap().is_none());
}

#[test]
fn large_groups_switch_to_top_k_or_are_skipped() {
    // key 1: 40 events (large), key 2: 5 events (not).
    let (m1, m2) = (40usize, 5usize);
    let x: Vec<f64> = lcg(11, (m1 + m2) * 2).iter().map(|v| (v * 8.0).round()).collect();
    let key: ArrayRef =
        Arc::new(Int64Array::from((0..m1 + m2).map(|r| if r < m1 { 1 } else { 2 }).collect::<Vec<_>>()));
    let id: ArrayRef = Arc::new(Int64Array::from((0..(m1 + m2) as i64).collect::<Vec<_>>()));
    let input = PairsInput::new(key, id, x.clone(), 2).unwrap();
    let rows_of = |opts: PairOptions| -> Vec<(i64, i64, i64, f64)> {
        let stream = PairStream::new(input.clone(), opts, 7).unwrap();
        stream
            .flat_map(|b| {
                let b = b.unwrap();
                let col = |n: &str| column(&b, n).as_primitive::<Int64Type>().values().to_vec();
                let (k, a, c) = (col("key"), col("id_1"), col("id_2"));
                let d = column(&b, "distance").as_primitive::<Float64Type>().values().to_vec();
                (0..b.num_rows()).map(|i| (k[i], a[i], c[i], d[i])).collect::<Vec<_>>()
            })
            .collect()
    };
    let full = rows_of(PairOptions::new(Metric::Euclidean));
    let small: Vec<_> = full.iter().filter(|r| r.0 == 2).cloned().collect();
    assert_eq!(small.len(), m2 * (m2 - 1) / 2);
    for (top_k, k) in [(None, LARGE_GROUP_TOP_K), (Some(3), 3)] {
        let opts = PairOptions { top_k, max_group_events: Some(39), ..PairOptions::new(Metric::Euclidean) };
        let got = rows_of(opts);
        let group = &x[..m1 * 2];
        let rows: Vec<u32> = (0..m1 as u32).collect();
        let want =
            group_pairs(group, m1, 2, &rows, &PairOptions { top_k: Some(k), ..PairOptions::new(Metric::Euclidean) })
                .unwrap();
        let large: Vec<_> = got.iter().filter(|r| r.0 == 1).map(|r| (r.1 as u32, r.2 as u32, r.3)).collect();
        let want: Vec<_> = (0..want.len()).map(|i| (want.a[i], want.b[i], want.dist[i])).collect();
        assert_eq!(large, want);
        assert!(large.len() < m1 * (m1 - 1) / 2);
        // With the user's top_k, the small group is top_k too; without, it is whole.
        if top_k.is_none() {
            assert_eq!(got.iter().filter(|r| r.0 == 2).cloned().collect::<Vec<_>>(), small);
        }
    }
    let skip = PairOptions {
        max_group_events: Some(39),
        on_large_group: LargeGroup::Skip,
        ..PairOptions::new(Metric::Euclidean)
    };
    assert_eq!(rows_of(skip), small);
    let s = PairStream::new(input.clone(), skip, 7).unwrap();
    assert_eq!(s.large_groups(), &[LargeGroupInfo { key: "1".into(), window: None, events: m1 }]);
    // At the limit, a group is not large.
    let at = PairOptions { max_group_events: Some(40), ..skip };
    assert!(PairStream::new(input, at, 7).unwrap().large_groups().is_empty());
    assert_eq!("skip".parse::<LargeGroup>().unwrap(), LargeGroup::Skip);
    assert!("drop".parse::<LargeGroup>().is_err());
}

#[test]
fn windowed_pairs_count_large_groups_per_window() {
    let opts = PairOptions {
        max_group_events: Some(2),
        on_large_group: LargeGroup::Skip,
        ..PairOptions::new(Metric::Cityblock)
    };
    let mut w = WindowedPairs::new(10, 0, 1, opts, 1000).unwrap();
    let arr = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    // window [0,10): key 7 has 3 events (large), key 8 has 2; window [10,20): key 7 has 1.
    let out = w
        .push(&arr(vec![7, 7, 7, 8, 8]), &arr(vec![1, 2, 3, 4, 5]), &[1, 2, 3, 4, 5], &[0.0, 1.0, 2.0, 0.0, 4.0])
        .unwrap();
    assert!(out.is_empty());
    let out = w.push(&arr(vec![7]), &arr(vec![6]), &[15], &[0.0]).unwrap();
    assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 1); // key 8's one pair
    assert_eq!((w.large_groups(), w.large_group_events()), (1, 3));
    assert_eq!(w.take_large_groups(), vec![LargeGroupInfo { key: "7".into(), window: Some(0), events: 3 }]);
    assert!(w.take_large_groups().is_empty());
}

#[test]
fn stream_ids_are_the_same_whether_written_directly_or_taken() {
    // Int64/UInt64/Int32/UInt32 ids are written by the kernel, strings through `take`: same rows.
    // One group above the scatter threshold, small ones, and batches that cut across groups.
    let n = 420;
    let keys: Vec<&str> = (0..n)
        .map(|r| {
            if r % 7 == 0 {
                "small"
            } else if r % 11 == 0 {
                "x"
            } else {
                "big"
            }
        })
        .collect();
    let raw: Vec<i64> = (0..n as i64).map(|r| (r * 7919) % 1009).collect();
    let features: Vec<f64> = lcg(9, n * 3).iter().map(|v| (v * 8.0).round()).collect();
    let run = |id: ArrayRef| {
        let input = PairsInput::new(Arc::new(StringArray::from(keys.clone())), id, features.clone(), 3).unwrap();
        let stream = PairStream::new(input, PairOptions::new(Metric::Euclidean), 7777).unwrap();
        let mut rows = Vec::new();
        for b in stream {
            let b = b.unwrap();
            let as_i64 = |name| arrow_cast::cast(column(&b, name), &arrow_schema::DataType::Int64).unwrap();
            let (a, c) = (as_i64("id_1"), as_i64("id_2"));
            let (a, c) = (a.as_primitive::<Int64Type>(), c.as_primitive::<Int64Type>());
            let k = column(&b, "key").as_string::<i32>();
            let dist = column(&b, "distance").as_primitive::<Float64Type>();
            for t in 0..b.num_rows() {
                rows.push((k.value(t).to_string(), a.value(t), c.value(t), dist.value(t).to_bits()));
            }
        }
        rows
    };
    let want = run(Arc::new(Int64Array::from(raw.clone())));
    assert_eq!(want.len(), 60 * 59 / 2 + 33 * 32 / 2 + 327 * 326 / 2);
    let padded: Vec<String> = raw.iter().map(|v| format!("{v:06}")).collect();
    let others: [ArrayRef; 4] = [
        Arc::new(arrow_array::UInt64Array::from(raw.iter().map(|&v| v as u64).collect::<Vec<_>>())),
        Arc::new(arrow_array::Int32Array::from(raw.iter().map(|&v| v as i32).collect::<Vec<_>>())),
        Arc::new(arrow_array::UInt32Array::from(raw.iter().map(|&v| v as u32).collect::<Vec<_>>())),
        Arc::new(StringArray::from(padded)),
    ];
    for id in others {
        let ty = id.data_type().clone();
        assert!(run(id) == want, "{ty}");
    }
}
