//! Capture file to flow batches: the crate's sources read the records, the crate's decoder
//! decodes them, the meter turns them into flows and [`FlowColumns`] into Arrow.
//!
//! A batch is handed out once `batch_size` flows have ended, or once a batch's worth of packets
//! has gone by with some flows ended (so a long capture with few flows still streams), and at the
//! end of the input, after the meter has flushed what is still active. File problems after the
//! header end the input as in [`crate::reader::PacketReader`]: a warning by default, an error with
//! `strict`, either way after every flow before them.

use std::path::Path;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};

use super::{FlowColumns, FlowMeter, FlowOptions, MeterStats};
use crate::decode::{decode, Packet};
use crate::error::{Error, Result};
use crate::source::{self, PacketSource, SourceInfo};

/// Packets read without handing out a batch before the flows ended so far are handed out.
const PACKETS_PER_BATCH: u64 = 1 << 20;

/// A single-use stream of flow record batches from one capture.
pub struct FlowReader {
    source: Box<dyn PacketSource>,
    packet: Packet,
    meter: FlowMeter,
    columns: FlowColumns,
    batch_size: usize,
    strict: bool,
    finished: bool,
    flushed: bool,
    pending_error: Option<Error>,
    warnings: Vec<String>,
    records: u64,
    /// Records without a link type (pcapng packets of an undescribed interface).
    undecodable: u64,
    /// Hand the frames to the meter, for `requested_server_name`.
    server_name: bool,
    /// Return [`Error::Interrupted`] after this many packets without a flow to hand out (0: never).
    yield_every: u64,
    /// When the source is quiet ([`Error::Interrupted`]), end the flows idle by the wall clock.
    idle_clock: bool,
}

impl FlowReader {
    /// Opens `path` (pcap, pcapng, either gzip-compressed), keeping only the packets passing the
    /// BPF filter `bpf` if one is given; fails now if it is not a capture or the filter does not
    /// compile.
    pub fn open(
        path: &Path,
        opts: FlowOptions,
        columns: Option<&[String]>,
        batch_size: usize,
        strict: bool,
        bpf: Option<&str>,
    ) -> Result<Self> {
        let source = source::open_filtered(path, bpf)?;
        Self::from_source(source, opts, columns, batch_size, strict)
    }

    /// Meters any record source.
    pub fn from_source(
        source: Box<dyn PacketSource>,
        opts: FlowOptions,
        columns: Option<&[String]>,
        batch_size: usize,
        strict: bool,
    ) -> Result<Self> {
        opts.validate()?;
        if batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be at least 1".into()));
        }
        let columns = FlowColumns::new(opts.statistics, opts.server_name, columns)?;
        let server_name = opts.server_name;
        Ok(Self {
            source,
            packet: Packet::default(),
            meter: FlowMeter::new(opts),
            columns,
            batch_size,
            strict,
            finished: false,
            flushed: false,
            pending_error: None,
            warnings: Vec::new(),
            records: 0,
            undecodable: 0,
            server_name,
            yield_every: 0,
            idle_clock: false,
        })
    }

    /// With `packets > 0`, [`Self::next_batch`] returns [`Error::Interrupted`] after reading that
    /// many packets without a flow to hand out, so a caller can check for Ctrl-C during a long
    /// capture of few flows, then call again (nothing is lost). Off by default.
    pub fn yield_every(&mut self, packets: u64) {
        self.yield_every = packets;
    }

    /// With `on`, a quiet source (a live capture's read timeout) ends the flows that the wall
    /// clock says are idle and hands them out, instead of waiting for the next packet. For live
    /// sources only: their timestamps are the wall clock's.
    pub fn expire_on_idle(&mut self, on: bool) {
        self.idle_clock = on;
    }

    /// The schema of every batch (the projected flow columns).
    pub fn schema(&self) -> SchemaRef {
        self.columns.schema()
    }

    /// What the source learnt about the capture while opening it.
    pub fn info(&self) -> &SourceInfo {
        self.source.info()
    }

    /// The meter's counters (`packets` counts every record read past the filter, `filtered` the
    /// records a BPF filter dropped).
    pub fn stats(&self) -> MeterStats {
        let mut s = self.meter.stats();
        s.packets = self.records;
        s.filtered = self.source.filtered();
        s.not_ip += self.undecodable;
        s
    }

    /// Bytes of the file consumed so far (compressed bytes for gzip input): the progress.
    pub fn bytes_read(&self) -> u64 {
        self.source.bytes_read()
    }

    /// Problems that ended the input early without `strict`, as messages.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The next batch of ended flows, `Ok(None)` once the input is exhausted and flushed.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        let mut packets = 0u64;
        while self.columns.len() < self.batch_size {
            if self.meter.pending() > 0 {
                let room = self.batch_size - self.columns.len();
                for r in self.meter.drain_up_to(room) {
                    self.columns.append(&r);
                }
                continue;
            }
            if self.finished {
                if self.flushed {
                    break;
                }
                let room = self.batch_size - self.columns.len();
                self.flushed = self.meter.finish_some(room);
                continue;
            }
            if packets >= PACKETS_PER_BATCH && !self.columns.is_empty() {
                break;
            }
            if self.yield_every > 0 && packets >= self.yield_every && self.columns.is_empty() {
                return Err(Error::Interrupted);
            }
            match self.source.next_record() {
                Ok(Some(record)) => {
                    packets += 1;
                    self.records += 1;
                    match record.link_type {
                        Some(lt) => {
                            decode(lt, record.data, &mut self.packet);
                            let frame = self.server_name.then_some(record.data);
                            self.meter.observe_frame(&self.packet, record.ts_ns, record.wirelen, frame);
                        }
                        None => self.undecodable += 1,
                    }
                }
                Ok(None) => self.finished = true,
                Err(e @ Error::Format { .. }) => {
                    self.finished = true;
                    if self.strict || self.records + self.source.filtered() == 0 {
                        self.pending_error = Some(e);
                    } else {
                        self.warnings.push(e.to_string());
                    }
                }
                Err(Error::Interrupted) => {
                    if self.idle_clock {
                        self.meter.expire_at(wall_clock_ns());
                        let room = self.batch_size - self.columns.len();
                        for r in self.meter.drain_up_to(room) {
                            self.columns.append(&r);
                        }
                    }
                    if self.columns.is_empty() {
                        return Err(Error::Interrupted);
                    }
                    break;
                }
                Err(e) => {
                    self.finished = true;
                    self.pending_error = Some(e);
                }
            }
        }
        // A strict error or a failed read is raised only after the flows before it.
        if self.pending_error.is_some() && self.records == 0 {
            return Err(self.pending_error.take().unwrap_or(Error::Interrupted));
        }
        if self.columns.is_empty() {
            return match self.pending_error.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        self.columns.finish().map(Some)
    }
}

/// Nanoseconds since the Unix epoch by the system clock (0 before it).
fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl Iterator for FlowReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().map_err(|e| ArrowError::ExternalError(Box::new(e))).transpose()
    }
}

impl RecordBatchReader for FlowReader {
    fn schema(&self) -> SchemaRef {
        self.columns.schema()
    }
}
