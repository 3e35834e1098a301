//! Phase timings of the grouped-pairs kernel on the single-IP case (5,000 events, 12,497,500
//! pairs): `cargo run --release --example distance_phases`. A profiling aid, not a test.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Int64Array};
use pktstream::distance::pairs::group_pairs;
use pktstream::distance::{pdist, sort, Metric, PairOptions, PairStream, PairsInput};

fn main() {
    let (m, d) = (5000, 9);
    let mut s = 7u64;
    let x: Vec<f64> = (0..m * d)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    let t = Instant::now();
    let p = pdist(&x, m, d, Metric::Euclidean).unwrap();
    println!("pdist (warm-up) {:?} ({} pairs)", t.elapsed(), p.len());
    let rows: Vec<u32> = (0..m as u32).collect();
    let t = Instant::now();
    let p = pdist(&x, m, d, Metric::Euclidean).unwrap();
    println!("pdist {:?} ({} pairs)", t.elapsed(), p.len());
    let t = Instant::now();
    let mut items: Vec<(u64, u32)> = p.iter().enumerate().map(|(i, &v)| (sort::dist_key(v), i as u32)).collect();
    println!("keys {:?}", t.elapsed());
    let t = Instant::now();
    sort::sort_by_key_then_payload(&mut items).unwrap();
    println!("radix sort {:?}", t.elapsed());
    let t = Instant::now();
    let g = group_pairs(&x, m, d, &rows, &PairOptions::new(Metric::Euclidean)).unwrap();
    println!("group_pairs {:?}", t.elapsed());
    let key: ArrayRef = Arc::new(Int64Array::from(vec![0; m]));
    let id: ArrayRef = Arc::new(Int64Array::from((0..m as i64).collect::<Vec<_>>()));
    let t = Instant::now();
    let s =
        PairStream::new(PairsInput::new(key, id, x.clone(), d).unwrap(), PairOptions::new(Metric::Euclidean), 1 << 20)
            .unwrap();
    let n: usize = s.map(|b| b.unwrap().num_rows()).sum();
    println!("stream {:?} {n} {}", t.elapsed(), g.len());
}
