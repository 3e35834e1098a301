//! The pump against scripted readers and a recording sink: no broker needed. The producers
//! themselves are tested against Apache Kafka by the Python suites (tests/test_kafka.py, ...).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, RecordBatch, RecordBatchIterator};

use super::*;
use crate::source::{PacketSource, Record, SourceInfo};

/// One step of a scripted source.
enum Step {
    Frame(&'static [u8]),
    /// "Nothing lost, ask again" (a live capture's read timeout).
    Idle,
    /// A record cut short by the end of the file.
    Cut,
    /// An error that is not about the file's structure.
    Fail,
}

/// A packet source that plays a script; records borrow its own buffer, as real sources' do.
struct Script {
    steps: VecDeque<Step>,
    buf: Vec<u8>,
    bytes: u64,
    info: SourceInfo,
}

impl Script {
    fn boxed(steps: Vec<Step>) -> Box<dyn PacketSource> {
        let info = SourceInfo {
            path: PathBuf::from("script"),
            format: "pcap",
            big_endian: false,
            gzip: false,
            file_size: None,
            link_type: Some(1),
        };
        Box::new(Self { steps: steps.into(), buf: Vec::new(), bytes: 0, info })
    }
}

impl PacketSource for Script {
    fn next_record(&mut self) -> crate::error::Result<Option<Record<'_>>> {
        match self.steps.pop_front() {
            None => Ok(None),
            Some(Step::Frame(data)) => {
                self.buf.clear();
                self.buf.extend_from_slice(data);
                self.bytes += 16 + data.len() as u64;
                let len = data.len() as u32;
                Ok(Some(Record {
                    ts_ns: Some(1),
                    caplen: len,
                    wirelen: len,
                    interface_id: None,
                    link_type: Some(1),
                    data: &self.buf,
                }))
            }
            Some(Step::Idle) => Err(Error::Interrupted),
            Some(Step::Cut) => Err(Error::Format {
                path: PathBuf::from("script"),
                offset: self.bytes,
                record: None,
                message: "cut".into(),
            }),
            Some(Step::Fail) => Err(Error::InvalidArgument("broken".into())),
        }
    }

    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// A sink that keeps what it was sent and what it saw of `control`.
#[derive(Default)]
struct Recorder {
    sent: Vec<Vec<u8>>,
    /// Return `Error::Interrupted` from this send (0-based), as a producer does when `control`
    /// stops a wait on a full queue.
    interrupt_at: Option<usize>,
    finished: Option<bool>,
}

/// The sink is handed out by `&mut`, so a test can look at it after the pump consumed it.
impl Sink<Frames> for &mut Recorder {
    fn send(&mut self, record: Record<'_>, control: &mut Control<'_>) -> Result<()> {
        if self.interrupt_at == Some(self.sent.len()) {
            return Err(KafkaError::Core(Error::Interrupted));
        }
        self.sent.push(record.data.to_vec());
        control(&Progress { rows: self.sent.len() as u64, ..Progress::default() })
    }

    fn progress(&self) -> Progress {
        Progress { rows: self.sent.len() as u64, messages: self.sent.len() as u64, ..Progress::default() }
    }

    fn finish(self, control: &mut Control<'_>, interrupted: bool) -> Result<ProduceReport> {
        self.finished = Some(interrupted);
        let _ = control(&self.progress());
        Ok(ProduceReport { rows: self.sent.len() as u64, interrupted, ..ProduceReport::default() })
    }
}

/// A sink of batches that keeps each batch's first value.
#[derive(Default)]
struct Seen {
    first: Vec<i32>,
    finished: Option<bool>,
}

impl Sink<Batches> for &mut Seen {
    fn send(&mut self, batch: RecordBatch, control: &mut Control<'_>) -> Result<()> {
        use arrow_array::cast::AsArray;
        self.first.push(batch.column(0).as_primitive::<arrow_array::types::Int32Type>().value(0));
        control(&Progress { rows: self.first.len() as u64, ..Progress::default() })
    }

    fn progress(&self) -> Progress {
        Progress::default()
    }

    fn finish(self, _: &mut Control<'_>, interrupted: bool) -> Result<ProduceReport> {
        self.finished = Some(interrupted);
        Ok(ProduceReport { rows: self.first.len() as u64, interrupted, ..ProduceReport::default() })
    }
}

fn batch(v: i32) -> RecordBatch {
    let col: ArrayRef = Arc::new(Int32Array::from(vec![v, v]));
    RecordBatch::try_from_iter([("v", col)]).unwrap()
}

#[test]
fn every_frame_is_sent_in_order_without_a_copy_of_our_own_and_the_deliveries_are_awaited() {
    let mut frames = RawFrames::new(Script::boxed(vec![Step::Frame(b"a"), Step::Frame(b"bb"), Step::Frame(b"ccc")]));
    let mut sink = Recorder::default();
    let report = pump(&mut frames, &mut sink, &mut |_| Ok(())).unwrap();
    assert_eq!(sink.sent, [b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
    assert_eq!(sink.finished, Some(false));
    assert_eq!(report.rows, 3);
    assert!(!report.interrupted && report.warnings.is_empty());
}

#[test]
fn progress_carries_the_bytes_read_before_the_unit_being_sent() {
    let mut frames = RawFrames::new(Script::boxed(vec![Step::Frame(b"a"), Step::Frame(b"bb")]));
    let mut sink = Recorder::default();
    let mut seen = Vec::new();
    pump(&mut frames, &mut sink, &mut |p| {
        seen.push(p.source_bytes);
        Ok(())
    })
    .unwrap();
    // A lent frame borrows the source while it is sent: its own bytes show from the next call;
    // the final wait reports everything read.
    assert_eq!(seen, [0, 17, 17 + 18]);
}

#[test]
fn an_idle_source_checks_in_and_a_stop_there_still_awaits_the_deliveries() {
    let steps = vec![Step::Frame(b"a"), Step::Idle, Step::Idle, Step::Frame(b"b"), Step::Idle, Step::Frame(b"c")];
    let mut frames = RawFrames::new(Script::boxed(steps));
    let mut sink = Recorder::default();
    let mut calls = 0;
    let report = pump(&mut frames, &mut sink, &mut |_| {
        calls += 1;
        // Calls: send a, idle, idle, send b, then the third idle stops.
        if calls == 5 {
            Err(KafkaError::Core(Error::Interrupted))
        } else {
            Ok(())
        }
    })
    .unwrap();
    assert_eq!(sink.sent, [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(sink.finished, Some(true));
    assert!(report.interrupted);
}

#[test]
fn a_stop_inside_the_sink_ends_the_reading_and_still_awaits() {
    let mut frames = RawFrames::new(Script::boxed(vec![Step::Frame(b"a"), Step::Frame(b"b"), Step::Frame(b"c")]));
    let mut sink = Recorder { interrupt_at: Some(1), ..Recorder::default() };
    let report = pump(&mut frames, &mut sink, &mut |_| Ok(())).unwrap();
    assert_eq!(sink.sent, [b"a".to_vec()]);
    assert_eq!(sink.finished, Some(true));
    assert!(report.interrupted);
}

#[test]
fn a_cut_tail_is_a_warning_once_a_frame_was_read() {
    let mut frames = RawFrames::new(Script::boxed(vec![Step::Frame(b"a"), Step::Cut, Step::Frame(b"never")]));
    let mut sink = Recorder::default();
    let report = pump(&mut frames, &mut sink, &mut |_| Ok(())).unwrap();
    assert_eq!(sink.sent, [b"a".to_vec()]);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("cut"), "{:?}", report.warnings);
}

#[test]
fn a_cut_file_with_no_frame_and_other_read_errors_fail_without_a_report() {
    for steps in [vec![Step::Cut], vec![Step::Frame(b"a"), Step::Fail]] {
        let mut frames = RawFrames::new(Script::boxed(steps));
        let mut sink = Recorder::default();
        let err = pump(&mut frames, &mut sink, &mut |_| Ok(())).unwrap_err();
        assert!(matches!(err, KafkaError::Core(Error::Format { .. } | Error::InvalidArgument(_))), "{err:?}");
        assert_eq!(sink.finished, None);
    }
}

#[test]
fn a_control_error_that_is_not_a_stop_is_returned() {
    let mut frames = RawFrames::new(Script::boxed(vec![Step::Frame(b"a"), Step::Frame(b"b")]));
    let mut sink = Recorder::default();
    let err = pump(&mut frames, &mut sink, &mut |_| Err(KafkaError::invalid("callback failed"))).unwrap_err();
    assert!(matches!(err, KafkaError::Core(Error::InvalidArgument(_))), "{err:?}");
    assert_eq!(sink.sent.len(), 1);
}

#[test]
fn arrow_streams_and_packet_readers_are_readers_of_batches() {
    let batches: Vec<_> = (1..=3).map(|v| Ok(batch(v))).collect();
    let schema = batch(0).schema();
    let mut stream = ArrowStream(RecordBatchIterator::new(batches, schema));
    let mut sink = Seen::default();
    let report = pump(&mut stream, &mut sink, &mut |_| Ok(())).unwrap();
    assert_eq!(sink.first, [1, 2, 3]);
    assert_eq!((report.rows, sink.finished), (3, Some(false)));

    // A packet reader over a source that goes idle between packets (a quiet live link): each
    // idle hands out what is buffered, and every packet arrives.
    let steps = vec![Step::Frame(&[0; 14]), Step::Idle, Step::Frame(&[0; 14]), Step::Frame(&[0; 14]), Step::Idle];
    let opts = crate::reader::ReadOptions { batch_size: 100, ..Default::default() };
    let mut reader = PacketReader::from_source(Script::boxed(steps), opts).flush_on_idle(true);
    let mut rows = 0;
    struct Count<'a>(&'a mut u64);
    impl Sink<Batches> for Count<'_> {
        fn send(&mut self, b: RecordBatch, _: &mut Control<'_>) -> Result<()> {
            *self.0 += b.num_rows() as u64;
            Ok(())
        }
        fn progress(&self) -> Progress {
            Progress::default()
        }
        fn finish(self, _: &mut Control<'_>, interrupted: bool) -> Result<ProduceReport> {
            Ok(ProduceReport { rows: *self.0, interrupted, ..ProduceReport::default() })
        }
    }
    let report = pump(&mut reader, Count(&mut rows), &mut |_| Ok(())).unwrap();
    assert_eq!(report.rows, 3);
    assert!(report.warnings.is_empty());
}
