//! Capture file to Arrow record batches, streaming.
//!
//! [`PacketReader`] pulls records from a [`PacketSource`], decodes each frame and appends it to
//! the batch being built; a batch is handed out every `batch_size` packets, so memory stays flat
//! whatever the file size. Problems in the file's structure after its header (a record cut short
//! by the end of the file, a corrupt length) end the stream: by default the packets before the
//! problem are all delivered and the problem becomes a warning; with `strict` it is an error,
//! raised only after those packets have been handed out.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};

use crate::columns::{PacketColumns, RecordMeta};
use crate::decode::{decode, Packet};
use crate::error::{Error, Result};
use crate::schema::SchemaOptions;
use crate::source::{self, PacketSource, SourceInfo};

/// Options of a read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The projected columns and the address form.
    pub schema: SchemaOptions,
    /// Rows per batch (at least 1).
    pub batch_size: usize,
    /// Raise on a truncated or corrupt tail instead of warning.
    pub strict: bool,
    /// A BPF filter expression (tcpdump syntax) that [`PacketReader::open`] applies to the file's
    /// records (see [`crate::source::bpf`]); [`PacketReader::from_source`] ignores it.
    pub bpf: Option<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self { schema: SchemaOptions::default(), batch_size: 65_536, strict: false, bpf: None }
    }
}

/// Counters kept while reading.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    /// Packets handed out.
    pub packets: u64,
    /// Records a BPF filter dropped.
    pub filtered: u64,
    /// Packets whose `decode_status` is not null.
    pub decode_errors: u64,
    /// Packets per link type (`None`: record of an undescribed pcapng interface).
    pub link_types: BTreeMap<Option<u16>, u64>,
    /// Timestamp of the first packet handed out that had one (ns since the Unix epoch).
    pub first_ts_ns: Option<i64>,
    /// Timestamp of the last packet handed out that had one (ns since the Unix epoch).
    pub last_ts_ns: Option<i64>,
}

/// A single-use stream of packet record batches from one capture file.
pub struct PacketReader {
    source: Box<dyn PacketSource>,
    columns: PacketColumns,
    packet: Packet,
    /// The current record's bytes, when the `frame` column is projected.
    frame: Vec<u8>,
    batch_size: usize,
    strict: bool,
    stats: ReadStats,
    warnings: Vec<String>,
    pending_error: Option<Error>,
    finished: bool,
    /// The current run of packets with one link type, not yet in `stats.link_types`.
    link_run: Option<(Option<u16>, u64)>,
    /// Hand out a partial batch when the source reports [`Error::Interrupted`] (live capture).
    flush_on_idle: bool,
}

impl PacketReader {
    /// Opens `path`, with the filter `opts.bpf` if any; fails now if it is missing or not a
    /// capture, or if the filter does not compile.
    pub fn open(path: &Path, opts: ReadOptions) -> Result<Self> {
        if opts.batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be at least 1".into()));
        }
        let source = source::open_filtered(path, opts.bpf.as_deref())?;
        Ok(Self::from_source(source, opts))
    }

    /// Wraps any record source (files, and later live capture or Kafka `raw` topics).
    pub fn from_source(source: Box<dyn PacketSource>, opts: ReadOptions) -> Self {
        let capacity = opts.batch_size.min(65_536);
        Self {
            source,
            columns: PacketColumns::new(&opts.schema, capacity),
            packet: Packet::default(),
            frame: Vec::new(),
            batch_size: opts.batch_size,
            strict: opts.strict,
            stats: ReadStats::default(),
            warnings: Vec::new(),
            pending_error: None,
            finished: false,
            link_run: None,
            flush_on_idle: false,
        }
    }

    /// With `on`, a source that reports [`Error::Interrupted`] (a live capture's read timeout)
    /// while rows are buffered makes [`Self::next_batch`] return them as a short batch, so a
    /// quiet link still delivers promptly; with nothing buffered it still returns the error.
    /// Off by default: file readers always fill their batches.
    pub fn flush_on_idle(mut self, on: bool) -> Self {
        self.flush_on_idle = on;
        self
    }

    /// Gives up the record source, positioned after the last record of the last batch handed
    /// out, so that another consumer (the flow meter) takes over where this reader stopped.
    /// `None` once the input has ended or failed.
    pub fn into_source(self) -> Option<Box<dyn PacketSource>> {
        (!self.finished && self.pending_error.is_none()).then_some(self.source)
    }

    /// The schema of every batch (the projected packet columns).
    pub fn schema(&self) -> SchemaRef {
        self.columns.schema()
    }

    /// What the source learnt about the capture while opening it.
    pub fn info(&self) -> &SourceInfo {
        self.source.info()
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Bytes of the file read so far (compressed bytes for gzip).
    pub fn bytes_read(&self) -> u64 {
        self.source.bytes_read()
    }

    /// Problems that ended the stream early in lax mode (at most one today).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The next batch, `Ok(None)` once the file is exhausted.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        while !self.finished && self.columns.len() < self.batch_size {
            match self.source.next_record() {
                Ok(Some(record)) => {
                    let mut meta = RecordMeta::new(0, &record);
                    if self.columns.needs_decode() {
                        match record.link_type {
                            Some(lt) => decode(lt, record.data, &mut self.packet),
                            None => {
                                self.packet = Packet::default();
                                self.packet.fail(format!(
                                    "pcapng: packet names interface {} which the file never described",
                                    record.interface_id.unwrap_or_default()
                                ));
                            }
                        }
                    }
                    // The opt-in `frame` column keeps the bytes: copied out here, since the record
                    // borrows the source, which is asked for its filter count next.
                    if self.columns.keeps_frames() {
                        self.frame.clear();
                        self.frame.extend_from_slice(record.data);
                    }
                    // The position in the file: the records a filter dropped count too (asked
                    // once the record, which borrows the source, is no longer used).
                    let filtered = self.source.filtered();
                    meta.frame_number = self.stats.packets + filtered + 1;
                    let stats = &mut self.stats;
                    stats.packets += 1;
                    stats.filtered = filtered;
                    stats.decode_errors += u64::from(self.packet.status.is_some());
                    // Link types change rarely: count runs, fold them into the map per batch.
                    match &mut self.link_run {
                        Some((lt, n)) if *lt == meta.link_type => *n += 1,
                        run => {
                            if let Some((lt, n)) = run.replace((meta.link_type, 1)) {
                                *stats.link_types.entry(lt).or_default() += n;
                            }
                        }
                    }
                    if let Some(ts) = meta.ts_ns {
                        stats.first_ts_ns.get_or_insert(ts);
                        stats.last_ts_ns = Some(ts);
                    }
                    self.columns.append(&meta, &self.packet, &self.frame);
                }
                Ok(None) => self.finished = true,
                Err(e @ Error::Format { .. }) => {
                    self.finished = true;
                    // A file that yields no packet at all before its problem is not a usable capture.
                    if self.strict || self.stats.packets + self.source.filtered() == 0 {
                        self.pending_error = Some(e);
                    } else {
                        self.warnings.push(e.to_string());
                    }
                }
                // A signal interrupted a blocking read: nothing is lost, the caller may retry.
                Err(Error::Interrupted) if self.flush_on_idle && !self.columns.is_empty() => break,
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(e) => {
                    self.finished = true;
                    self.pending_error = Some(e);
                }
            }
        }
        if let Some((lt, n)) = self.link_run.take() {
            *self.stats.link_types.entry(lt).or_default() += n;
        }
        self.stats.filtered = self.source.filtered();
        if self.columns.is_empty() {
            return match self.pending_error.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        self.columns.finish().map(Some)
    }
}

impl Iterator for PacketReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().map_err(|e| ArrowError::ExternalError(Box::new(e))).transpose()
    }
}

impl RecordBatchReader for PacketReader {
    fn schema(&self) -> SchemaRef {
        self.columns.schema()
    }
}
