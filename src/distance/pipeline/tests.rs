//! Unit tests of the pipeline state machine: watermark across partitions, idle partitions, safe
//! offsets, late events, flush, revoke and re-assignment; no Kafka.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};

use super::events::{EventSpec, Normalize};
use super::state::{PairSink, Pipeline};
use super::Result;
use crate::distance::{LargeGroup, Metric, PairOptions, WindowedPairs};

const S: i64 = 1_000_000; // one second in µs
const WINDOW_NS: i64 = 5_000_000_000;

/// Collects what would be produced.
#[derive(Default)]
struct Collect(Vec<RecordBatch>);

impl PairSink for Collect {
    fn deliver(&mut self, rows: &[RecordBatch], _: &mut dyn FnMut() -> crate::kafka::Result<()>) -> Result<u64> {
        self.0.extend_from_slice(rows);
        Ok(rows.iter().map(|b| b.num_rows() as u64).sum())
    }
}

impl Collect {
    fn rows(&self) -> usize {
        self.0.iter().map(RecordBatch::num_rows).sum()
    }
}

fn no_interrupt() -> crate::kafka::Result<()> {
    Ok(())
}

fn pipeline(normalize: Normalize) -> Pipeline {
    let opts = PairOptions {
        metric: Metric::Euclidean,
        top_k: None,
        max_distance: None,
        sort: true,
        max_group_events: None,
        on_large_group: LargeGroup::TopK,
    };
    let spec = EventSpec { key: "k".into(), id: "id".into(), time: "t".into(), features: vec!["x".into()], normalize };
    Pipeline::new(WindowedPairs::new(WINDOW_NS, 0, 1, opts, 1 << 20).unwrap(), spec, WINDOW_NS, 5.0)
}

/// One consumed batch: `(partition, offset, key, id, time in s, x)` rows of topic "in"; a `None`
/// key makes the row invalid, as does `error`.
/// `(partition, offset, key, id, time in s, x)`.
type Row<'a> = (i32, i64, Option<&'a str>, &'a str, i64, f64);

fn batch(rows: &[Row<'_>], error: Option<usize>) -> RecordBatch {
    let col = |a: ArrayRef| a;
    let n = rows.len();
    RecordBatch::try_from_iter([
        ("k", col(Arc::new(rows.iter().map(|r| r.2).collect::<StringArray>()))),
        ("id", col(Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))))),
        (
            "t",
            col(Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.4 * S)).with_timezone("UTC"),
            )),
        ),
        ("x", col(Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.5))))),
        ("_topic", col(Arc::new(StringArray::from_iter_values(std::iter::repeat_n("in", n))))),
        ("_partition", col(Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))))),
        ("_offset", col(Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))))),
        ("_error", col(Arc::new((0..n).map(|i| (Some(i) == error).then_some("bad json")).collect::<StringArray>()))),
    ])
    .unwrap()
}

fn parts(ps: &[i32]) -> Vec<(String, i32)> {
    ps.iter().map(|&p| ("in".to_string(), p)).collect()
}

fn positions(ps: &[(i32, i64)]) -> Vec<(String, i32, i64)> {
    ps.iter().map(|&(p, o)| ("in".to_string(), p, o)).collect()
}

#[test]
fn a_partition_behind_holds_the_others_back() {
    let mut p = pipeline(Normalize::None);
    let mut sink = Collect::default();
    let both = parts(&[0, 1]);
    // Partition 0 runs to t=12 s; partition 1 has said nothing yet: nothing may be pushed.
    p.ingest(
        &batch(
            &[(0, 0, Some("a"), "e1", 1, 0.0), (0, 1, Some("a"), "e2", 2, 3.0), (0, 2, Some("a"), "e3", 12, 9.0)],
            None,
        ),
        0.0,
    )
    .unwrap();
    p.release(0.1, &both, false, &mut sink, &mut no_interrupt).unwrap();
    assert_eq!((p.held(), p.in_flight(), sink.rows()), (3, 0, 0));
    // Everything held: each partition is safe from its oldest held event.
    assert_eq!(p.safe_offsets(&positions(&[(0, 3)]))[&("in".into(), 0)], 0);
    // Partition 1 reaches t=11 s: events up to 11 s go; [0, 5) closes with the pair e1-e2.
    p.ingest(&batch(&[(1, 0, Some("b"), "f1", 11, 1.0)], None), 0.2).unwrap();
    p.release(0.2, &both, false, &mut sink, &mut no_interrupt).unwrap();
    assert_eq!((p.held(), sink.rows()), (1, 1));
    let out = &sink.0[0];
    assert_eq!(out.schema().field(0).name(), "eventid_1");
    assert_eq!(out.column(2).as_primitive::<Float64Type>().value(0), 3.0);
    // e3 (offset 2) is held, f1 (offset 0 of partition 1) in the open window [10, 15).
    let safe = p.safe_offsets(&positions(&[(0, 3), (1, 1)]));
    assert_eq!((safe[&("in".into(), 0)], safe[&("in".into(), 1)]), (2, 0));
    // Never committed: offset 0 of partition 1 counts as a move (as the Python pipeline did).
    assert_eq!(p.commit_plan(&positions(&[(0, 3), (1, 1)]), &both), positions(&[(0, 2), (1, 0)]));
}

#[test]
fn an_idle_partition_stops_holding_the_watermark_back() {
    let mut p = pipeline(Normalize::None);
    let mut sink = Collect::default();
    let both = parts(&[0, 1]);
    p.ingest(
        &batch(
            &[(0, 0, Some("a"), "e1", 1, 0.0), (0, 1, Some("a"), "e2", 2, 4.0), (0, 2, Some("a"), "e3", 7, 0.0)],
            None,
        ),
        0.0,
    )
    .unwrap();
    p.release(0.0, &both, false, &mut sink, &mut no_interrupt).unwrap();
    assert_eq!(p.held(), 3); // partition 1 first noticed at 0.0
    p.release(4.9, &both, false, &mut sink, &mut no_interrupt).unwrap();
    assert_eq!(p.held(), 3);
    p.release(5.0, &both, false, &mut sink, &mut no_interrupt).unwrap(); // 5 s silent: idle
    assert_eq!((p.held(), p.in_flight(), sink.rows()), (0, 1, 1));
    assert_eq!(p.watermark_limit(5.0, &both), i128::MAX); // both silent for 5 s
                                                          // Once it speaks again it holds the watermark back again.
    p.ingest(&batch(&[(1, 0, Some("b"), "f1", 3, 1.0)], None), 6.0).unwrap();
    assert_eq!(p.watermark_limit(6.0, &both), i128::from(3 * S * 1000));
}

#[test]
fn invalid_rows_are_counted_and_committed_late_rows_counted() {
    let mut p = pipeline(Normalize::None);
    let mut sink = Collect::default();
    let one = parts(&[0]);
    let rows = [
        (0, 0, Some("a"), "e1", 1, 0.0),
        (0, 1, None, "e2", 2, 0.0),
        (0, 2, Some("a"), "e3", 2, 1.0),
        (0, 3, Some("a"), "e4", 11, 0.0),
    ];
    p.ingest(&batch(&rows, Some(2)), 0.0).unwrap();
    assert_eq!((p.report.events, p.report.invalid), (4, 2));
    p.release(0.0, &one, false, &mut sink, &mut no_interrupt).unwrap();
    // [0, 5) closed with a single valid event: no pair; e4 is in the open window [10, 15).
    assert_eq!((sink.rows(), p.in_flight()), (0, 1));
    assert_eq!(p.commit_plan(&positions(&[(0, 4)]), &one), positions(&[(0, 3)]));
    p.ingest(&batch(&[(0, 4, Some("a"), "e5", 3, 0.0)], None), 0.1).unwrap(); // [0, 5) has closed
    p.release(0.1, &one, false, &mut sink, &mut no_interrupt).unwrap();
    assert_eq!(p.report.late_events, 1);
    // The late event's offset is safe at once; the open window still holds offset 3.
    assert_eq!(p.commit_plan(&positions(&[(0, 5)]), &one), positions(&[(0, 3)]));
    p.flush(0.2, &mut sink, &mut no_interrupt).unwrap();
    assert_eq!(p.commit_plan(&positions(&[(0, 5)]), &one), positions(&[(0, 5)]));
    p.report.record_commit(&positions(&[(0, 5)]));
    assert!(p.commit_plan(&positions(&[(0, 5)]), &one).is_empty());
    assert_eq!((p.report.commits, p.report.committed("in", 0)), (1, Some(5)));
}

#[test]
fn flush_delivers_every_window_and_counts_them() {
    let mut p = pipeline(Normalize::None);
    let mut sink = Collect::default();
    let rows = [
        (0, 0, Some("a"), "e1", 1, 0.0),
        (0, 1, Some("a"), "e2", 2, 1.0),
        (0, 2, Some("b"), "e3", 3, 0.0),
        (0, 3, Some("b"), "e4", 3, 2.0),
        (0, 4, Some("b"), "e5", 4, 5.0),
    ];
    p.ingest(&batch(&rows, None), 0.0).unwrap();
    p.flush(0.0, &mut sink, &mut no_interrupt).unwrap();
    assert_eq!((sink.rows(), p.report.pairs, p.report.delivered, p.report.windows), (4, 4, 4, 2));
    assert_eq!((p.held(), p.in_flight()), (0, 0));
    // Window bounds are whole µs: written in µs.
    let ts = sink.0[0].schema().field(3).data_type().clone();
    assert_eq!(ts, arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into())));
}

#[test]
fn normalization_is_applied_per_event() {
    let mut p = pipeline(Normalize::Log1p);
    let mut sink = Collect::default();
    let e = std::f64::consts::E;
    p.ingest(&batch(&[(0, 0, Some("a"), "e1", 1, 0.0), (0, 1, Some("a"), "e2", 2, e - 1.0)], None), 0.0).unwrap();
    p.flush(0.0, &mut sink, &mut no_interrupt).unwrap();
    let d = sink.0[0].column(2).as_primitive::<Float64Type>().value(0);
    assert!((d - 1.0).abs() < 1e-12, "{d}");
    let mut p = pipeline(Normalize::Affine(vec![Some((10.0, 2.0))]));
    let mut sink = Collect::default();
    p.ingest(&batch(&[(0, 0, Some("a"), "e1", 1, 10.0), (0, 1, Some("a"), "e2", 2, 16.0)], None), 0.0).unwrap();
    p.flush(0.0, &mut sink, &mut no_interrupt).unwrap();
    assert_eq!(sink.0[0].column(2).as_primitive::<Float64Type>().value(0), 3.0);
}

#[test]
fn revoke_forgets_held_events_and_a_returning_partition_is_not_paired_twice() {
    let mut p = pipeline(Normalize::None);
    let mut sink = Collect::default();
    let both = parts(&[0, 1]);
    p.ingest(&batch(&[(0, 0, Some("a"), "e1", 1, 0.0), (0, 1, Some("a"), "e2", 8, 0.0)], None), 0.0).unwrap();
    p.ingest(&batch(&[(1, 0, Some("a"), "f1", 2, 1.0), (1, 1, Some("a"), "f2", 3, 2.0)], None), 0.0).unwrap();
    p.release(0.0, &both, false, &mut sink, &mut no_interrupt).unwrap();
    // Watermark limit 3 s: e1, f1, f2 in flight in [0, 5); e2 held.
    assert_eq!((p.held(), p.in_flight()), (1, 3));
    p.revoke(&parts(&[0])).unwrap();
    assert_eq!(p.held(), 0); // e2 is uncommitted: its next owner reads it
                             // Partition 0 is no longer ours: not committed, and it no longer holds anything back.
    assert_eq!(p.commit_plan(&positions(&[(1, 2)]), &parts(&[1])), positions(&[(1, 0)]));
    assert_eq!(p.watermark_limit(0.1, &parts(&[1])), i128::from(3 * S * 1000));
    // It comes back, and is read again from offset 0: e1 (in flight) is skipped, e2 taken again.
    p.ingest(&batch(&[(0, 0, Some("a"), "e1", 1, 0.0), (0, 1, Some("a"), "e2", 8, 0.0)], None), 0.2).unwrap();
    assert_eq!((p.report.events, p.held(), p.in_flight()), (6, 1, 3));
    p.flush(0.3, &mut sink, &mut no_interrupt).unwrap();
    // [0, 5): e1, f1, f2 once each: three pairs; [5, 10): e2 alone.
    assert_eq!(sink.rows(), 3);
}

#[test]
fn a_missing_or_non_numeric_feature_is_an_error_and_nothing_is_held() {
    let mut spec = EventSpec {
        key: "k".into(),
        id: "id".into(),
        time: "t".into(),
        features: vec!["nope".into()],
        normalize: Normalize::None,
    };
    let mut parts = super::events::Partitions::default();
    let b = batch(&[(0, 0, Some("a"), "e1", 1, 0.0)], None);
    let e = super::events::extract(&b, &spec, &mut parts).unwrap_err().to_string();
    assert!(e.contains("no column \"nope\""), "{e}");
    spec.features = vec!["id".into()];
    let e = super::events::extract(&b, &spec, &mut parts).unwrap_err().to_string();
    assert!(e.contains("not numeric"), "{e}");
}

#[test]
fn windows_of_fractional_microseconds_are_written_in_ns() {
    let opts = PairOptions {
        metric: Metric::Euclidean,
        top_k: None,
        max_distance: None,
        sort: true,
        max_group_events: None,
        on_large_group: LargeGroup::TopK,
    };
    let window = 1_000_000_500; // 1 s + 500 ns
    let spec = EventSpec {
        key: "k".into(),
        id: "id".into(),
        time: "t".into(),
        features: vec!["x".into()],
        normalize: Normalize::None,
    };
    let mut p = Pipeline::new(WindowedPairs::new(window, 0, 1, opts, 1 << 20).unwrap(), spec, window, 5.0);
    let mut sink = Collect::default();
    p.ingest(&batch(&[(0, 0, Some("a"), "e1", 1, 0.0), (0, 1, Some("a"), "e2", 1, 1.0)], None), 0.0).unwrap();
    p.flush(0.0, &mut sink, &mut no_interrupt).unwrap();
    let ts = sink.0[0].schema().field(5).data_type().clone();
    assert_eq!(ts, arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC".into())));
}
