//! The pump: the one loop that feeds a reader into a producer.
//!
//! Every produce call (a capture file, a live capture, any Arrow stream; decoded rows or `raw`
//! frames) is the same loop, and its rules are easy to get subtly wrong in a copy:
//!
//! * **Ctrl-C and progress go through `control`.** The reader says "nothing lost, ask again"
//!   with [`Error::Interrupted`] (a live capture's read timeout, a signal during a blocking
//!   read); that is when the pump checks in, so a quiet link stays interruptible. The sink checks
//!   in too: after each batch, every few thousand frames and while librdkafka's queue is full.
//! * **Stopping early still waits.** A stop from `control` ([`Error::Interrupted`]; any other
//!   error fails the call) ends the reading, but what was queued is awaited (a second Ctrl-C
//!   stops that wait too), so the report says what reached the broker.
//! * **A cut input is a warning, not a failure**, once something was read: the reader ends there
//!   and its warnings go into the report.
//!
//! [`Reader`] is a lending stream: a `raw` frame borrows the source's buffer until it is sent, so
//! frames reach librdkafka without a copy of their own. [`Sink`] is implemented by
//! [`BatchProducer`] (record batches) and [`RawProducer`] (records).

use arrow_array::{RecordBatch, RecordBatchReader};

use super::config::Config;
use super::error::{KafkaError, Result};
use super::produce::{BatchProducer, Control, ProduceOptions, ProduceReport, Progress};
use super::raw::{RawFrames, RawProducer};
use crate::error::Error;
use crate::reader::PacketReader;
use crate::source::{PacketSource, Record};

/// What a reader hands out, one unit at a time: [`Batches`] or [`Frames`]. Sinks are written
/// for a unit, not a reader: a bound such as `for<'a> Reader<Item<'a> = Record<'a>>` would
/// demand `'static` readers of today's compiler.
pub trait Unit {
    /// One unit; it may borrow the reader (for `'a`) until the sink is done with it.
    type Item<'a>;
}

/// Units that are record batches.
pub enum Batches {}

impl Unit for Batches {
    type Item<'a> = RecordBatch;
}

/// Units that are a capture's records, lent from the source's buffer.
pub enum Frames {}

impl Unit for Frames {
    type Item<'a> = Record<'a>;
}

/// What the pump reads from: record batches ([`PacketReader`], [`ArrowStream`]) or a capture's
/// records ([`RawFrames`]).
pub trait Reader {
    /// What it hands out.
    type Unit: Unit;

    /// The next unit; `Ok(None)` at the end; [`Error::Interrupted`] when nothing was lost and the
    /// caller may ask again (after checking for Ctrl-C).
    fn next_item(&mut self) -> crate::error::Result<Option<<Self::Unit as Unit>::Item<'_>>>;

    /// Bytes of the input read so far (a capture file's, for progress bars); 0 when unknown.
    fn bytes_read(&self) -> u64 {
        0
    }

    /// Problems that ended the input early (a cut capture file).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where the pump sends what it reads: a producer for one topic.
pub trait Sink<U: Unit> {
    /// Sends one unit. `control` is called with the progress at the sink's own pace and while
    /// librdkafka's queue is full; an error it returns is returned.
    fn send(&mut self, item: U::Item<'_>, control: &mut Control<'_>) -> Result<()>;

    /// The counters so far (`source_bytes` is the pump's to fill in).
    fn progress(&self) -> Progress;

    /// Waits for every delivery report (calling `control` while waiting) and reports.
    fn finish(self, control: &mut Control<'_>, interrupted: bool) -> Result<ProduceReport>;
}

/// Feeds `reader` into `sink` until the reader ends or `control` stops it, waits for the
/// deliveries and returns the report (with the reader's warnings). An error from `control`
/// (`Error::Interrupted`) ends the loop, not the call: the report then has `interrupted` set.
pub fn pump<R, S>(reader: &mut R, mut sink: S, control: &mut Control<'_>) -> Result<ProduceReport>
where
    R: Reader + ?Sized,
    S: Sink<R::Unit>,
{
    let mut interrupted = false;
    // Updated after each unit: a lent frame borrows the reader until it is sent.
    let mut source_bytes = reader.bytes_read();
    loop {
        let item = match reader.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(Error::Interrupted) => {
                if control(&Progress { source_bytes, ..sink.progress() }).is_err() {
                    interrupted = true;
                    break;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match sink.send(item, &mut |p| control(&Progress { source_bytes, ..*p })) {
            Ok(()) => {}
            Err(KafkaError::Core(Error::Interrupted)) => {
                interrupted = true;
                break;
            }
            Err(e) => return Err(e),
        }
        source_bytes = reader.bytes_read();
    }
    source_bytes = reader.bytes_read();
    let mut report = sink.finish(&mut |p| control(&Progress { source_bytes, ..*p }), interrupted)?;
    report.warnings = reader.warnings();
    Ok(report)
}

impl Reader for PacketReader {
    type Unit = Batches;

    fn next_item(&mut self) -> crate::error::Result<Option<RecordBatch>> {
        self.next_batch()
    }

    fn bytes_read(&self) -> u64 {
        PacketReader::bytes_read(self)
    }

    fn warnings(&self) -> Vec<String> {
        PacketReader::warnings(self).to_vec()
    }
}

/// Any Arrow record batch stream as a [`Reader`] (what `pktstream.produce` takes).
pub struct ArrowStream<S>(pub S);

impl<S: RecordBatchReader> Reader for ArrowStream<S> {
    type Unit = Batches;

    fn next_item(&mut self) -> crate::error::Result<Option<RecordBatch>> {
        self.0.next().transpose().map_err(Error::from)
    }
}

/// A capture to produce: its frames as they are (`raw`), or its packets decoded into batches.
pub enum Capture {
    /// The records of a source, for `format="raw"`.
    Frames(Box<dyn PacketSource>),
    /// A packet reader, for the decoded formats.
    Packets(Box<PacketReader>),
}

/// Produces a capture file or a live capture to `opts.topic`: [`Capture::Frames`] through a
/// [`RawProducer`], [`Capture::Packets`] through a [`BatchProducer`]. The capture is dropped
/// before this returns (a live source then publishes its final counters).
pub fn produce_capture(
    config: Config,
    opts: ProduceOptions,
    capture: Capture,
    control: &mut Control<'_>,
) -> Result<ProduceReport> {
    match capture {
        Capture::Frames(source) => pump(&mut RawFrames::new(source), RawProducer::new(config, &opts)?, control),
        Capture::Packets(mut reader) => pump(&mut *reader, BatchProducer::new(config, opts)?, control),
    }
}

#[cfg(test)]
#[path = "pump_tests.rs"]
mod tests;
