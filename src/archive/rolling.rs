//! One open pcap file per partition, rolled on packet count, packet time and link type.
//!
//! A partition's file starts with a message and is named after it ([`super::names`]); it closes
//! when it holds `roll_packets` packets, when the next packet is `roll_seconds` or more after its
//! first (Metron's `numPackets` / `maxTimeMS`), or when the link type changes (a pcap file has
//! one). Closing publishes it through its [`Target`] (locally: fsync, rename, directory fsync)
//! and only then records the partition's next offset as committable: the caller commits what
//! [`Rolling::take_commits`] returns. Files closed together (in one consumed batch, up to
//! [`PUBLISH_GROUP`]) are published together, their fsyncs in parallel: fsync is the archive's
//! main cost, and the filesystem joins concurrent ones into fewer journal commits.
//!
//! Messages are hostile: a timestamp pcap cannot store (before 1970, after 2106, from a key that
//! is not 8 bytes) falls back to the Kafka message time, and failing that to the epoch; either
//! way the packet is archived and counted in [`ArchiveReport::bad_timestamps`], and the archiver
//! keeps going. Offsets a partition already wrote (a message delivered again after the partition
//! was revoked and assigned back inside one batch) are skipped, so nothing is stored twice.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::names::{file_name, is_stale_part};
use crate::sink::file::{create_private_dir, PartFile};
use crate::sink::pcap::{PcapHeader, PcapWriter};

/// A file being written somewhere; published (made visible under its name, durably) or discarded.
pub trait FileOut: Write + Send {
    /// Completes the file; returns where it is now.
    fn publish(self: Box<Self>) -> io::Result<String>;
    /// Removes the unfinished file.
    fn discard(self: Box<Self>) -> io::Result<()>;
}

/// Where rolled files go: a local directory ([`LocalDir`]) or, from Python, a pyarrow filesystem.
pub trait Target: Send {
    /// Starts the file `name` (as a part file, invisible until published).
    fn create(&mut self, name: &str) -> io::Result<Box<dyn FileOut>>;
    /// Removes the part files of `prefix` that a process now gone left behind.
    fn clean_parts(&mut self, prefix: &str) -> io::Result<()>;
}

impl FileOut for PartFile {
    fn publish(self: Box<Self>) -> io::Result<String> {
        PartFile::publish(*self).map(|p| p.display().to_string())
    }

    fn discard(self: Box<Self>) -> io::Result<()> {
        PartFile::discard(*self)
    }
}

/// A local directory, private to the user (0700); files 0600, fsynced and renamed.
pub struct LocalDir {
    dir: PathBuf,
}

impl LocalDir {
    /// Creates the directory if needed.
    pub fn new(dir: &Path) -> io::Result<Self> {
        create_private_dir(dir)?;
        Ok(Self { dir: dir.to_owned() })
    }
}

impl Target for LocalDir {
    fn create(&mut self, name: &str) -> io::Result<Box<dyn FileOut>> {
        Ok(Box::new(PartFile::create(&self.dir.join(name))?))
    }

    fn clean_parts(&mut self, prefix: &str) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if is_stale_part(&entry.file_name().to_string_lossy(), prefix) {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

/// When files roll and how they store time.
#[derive(Debug, Clone, Copy)]
pub struct RollOptions {
    /// Packets per file at most (at least 1).
    pub roll_packets: u64,
    /// Packet-time span of a file at most, in ns (at least 1).
    pub roll_ns: i64,
    /// Nanosecond pcap files (else microseconds).
    pub nanosecond: bool,
}

/// What an archive run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Packets written.
    pub packets: u64,
    /// Files closed (published).
    pub files: u64,
    /// Bytes written to files (headers included).
    pub bytes: u64,
    /// Packets whose key timestamp pcap cannot store (archived with the Kafka time or the epoch).
    pub bad_timestamps: u64,
    /// Messages skipped: of partitions revoked meanwhile, or delivered again.
    pub skipped: u64,
    /// Next offset committed per partition.
    pub committed: BTreeMap<i32, i64>,
    /// Paths of the files published, in order.
    pub paths: Vec<String>,
    /// The run stopped on Ctrl-C (after closing and committing its files).
    pub interrupted: bool,
}

/// One message, as the roller needs it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The capture time from the key, ns (`None`: no usable key).
    pub key_ts_ns: Option<i64>,
    /// The Kafka message time, ms.
    pub kafka_ms: Option<i64>,
    /// The frame (empty for a tombstone).
    pub frame: &'a [u8],
    /// The `wirelen` header.
    pub wirelen: Option<u32>,
    /// The `link_type` header (Ethernet when absent).
    pub link_type: Option<u16>,
}

/// Closed files published together at most (each holds its write buffer until then).
pub const PUBLISH_GROUP: usize = 16;

struct OpenFile {
    writer: PcapWriter<Box<dyn FileOut>>,
    first_ts: i64,
    last_offset: i64,
}

/// The open files of one topic's partitions held by this member.
pub struct Rolling {
    topic: String,
    opts: RollOptions,
    files: BTreeMap<i32, OpenFile>,
    /// Per partition, the offset after the last message written (earlier ones are not rewritten).
    next: BTreeMap<i32, i64>,
    /// Partitions this member holds.
    owned: BTreeSet<i32>,
    commits: BTreeMap<i32, i64>,
    /// Closed files waiting to be published: (partition, next offset, file).
    closing: Vec<(i32, i64, Box<dyn FileOut>)>,
    /// What was done so far.
    pub report: ArchiveReport,
}

/// The time a pcap record can store (1970..2106), or `None`.
fn storable(ts: i64) -> Option<i64> {
    (0..(1i64 << 32) * 1_000_000_000).contains(&ts).then_some(ts)
}

impl Rolling {
    /// No file open, no partition held.
    pub fn new(topic: &str, opts: RollOptions) -> Self {
        Self {
            topic: topic.to_string(),
            opts,
            files: BTreeMap::new(),
            next: BTreeMap::new(),
            owned: BTreeSet::new(),
            commits: BTreeMap::new(),
            closing: Vec::new(),
            report: ArchiveReport::default(),
        }
    }

    /// The topic archived.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Partitions were assigned to this member.
    pub fn assigned(&mut self, partitions: impl IntoIterator<Item = i32>) {
        self.owned.extend(partitions);
    }

    /// Partitions are being revoked: their files are closed (their offsets become committable,
    /// to be committed before the revoke completes); their messages are no longer written.
    pub fn revoking(&mut self, partitions: impl IntoIterator<Item = i32>) -> io::Result<()> {
        let partitions: Vec<i32> = partitions.into_iter().collect();
        for p in &partitions {
            self.owned.remove(p);
        }
        self.close_each(partitions)
    }

    /// Appends one message to its partition's file, rolling first when it must.
    pub fn write(&mut self, target: &mut dyn Target, m: &Message<'_>) -> io::Result<()> {
        if !self.owned.contains(&m.partition) || self.next.get(&m.partition).is_some_and(|n| m.offset < *n) {
            self.report.skipped += 1;
            return Ok(());
        }
        let ts = match m.key_ts_ns.and_then(storable) {
            Some(ts) => ts,
            None => {
                self.report.bad_timestamps += 1;
                m.kafka_ms.and_then(|ms| ms.checked_mul(1_000_000)).and_then(storable).unwrap_or(0)
            }
        };
        let link_type = m.link_type.unwrap_or(1);
        if let Some(f) = self.files.get(&m.partition) {
            if f.writer.packets() >= self.opts.roll_packets
                || ts.saturating_sub(f.first_ts) >= self.opts.roll_ns
                || f.writer.header().link_type != link_type
            {
                self.close(m.partition)?;
            }
        }
        let f = match self.files.entry(m.partition) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let name = file_name(&self.topic, m.partition, m.offset, ts);
                let header = PcapHeader { link_type, nanosecond: self.opts.nanosecond, ..PcapHeader::default() };
                let writer = PcapWriter::new(target.create(&name)?, header)?;
                e.insert(OpenFile { writer, first_ts: ts, last_offset: m.offset })
            }
        };
        let wirelen = m.wirelen.unwrap_or(u32::try_from(m.frame.len()).unwrap_or(u32::MAX));
        let before = f.writer.bytes();
        f.writer.write(ts, m.frame, wirelen)?;
        f.last_offset = m.offset;
        self.next.insert(m.partition, m.offset + 1);
        self.report.packets += 1;
        self.report.bytes += f.writer.bytes() - before;
        Ok(())
    }

    /// Closes the partition's open file, if any: it is published with the next group (at most
    /// [`PUBLISH_GROUP`] files wait), and its offsets become committable once it is.
    pub fn close(&mut self, partition: i32) -> io::Result<()> {
        let Some(f) = self.files.remove(&partition) else { return Ok(()) };
        self.report.bytes += 24;
        let out = f.writer.into_inner()?;
        self.closing.push((partition, f.last_offset + 1, out));
        if self.closing.len() >= PUBLISH_GROUP {
            self.publish()?;
        }
        Ok(())
    }

    /// Publishes the closed files, each on its own thread: their fsyncs overlap (the filesystem
    /// joins them into fewer journal commits), which is most of what publishing costs. A
    /// partition with a file that failed gets no commit from this group.
    pub fn publish(&mut self) -> io::Result<()> {
        let closing = std::mem::take(&mut self.closing);
        if closing.is_empty() {
            return Ok(());
        }
        let results: Vec<(i32, i64, io::Result<String>)> = std::thread::scope(|scope| {
            let running: Vec<_> =
                closing.into_iter().map(|(p, next, out)| (p, next, scope.spawn(move || out.publish()))).collect();
            running
                .into_iter()
                .map(|(p, next, h)| {
                    (p, next, h.join().unwrap_or_else(|_| Err(io::Error::other("publishing panicked"))))
                })
                .collect()
        });
        let failed: BTreeSet<i32> = results.iter().filter(|r| r.2.is_err()).map(|r| r.0).collect();
        let mut first_error = None;
        for (p, next, result) in results {
            match result {
                Ok(path) => {
                    self.report.paths.push(path);
                    self.report.files += 1;
                    if !failed.contains(&p) {
                        let c = self.commits.entry(p).or_insert(next);
                        *c = (*c).max(next);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Publishes every open file.
    pub fn close_all(&mut self) -> io::Result<()> {
        let parts: Vec<i32> = self.files.keys().copied().collect();
        self.close_each(parts)
    }

    /// Closes each partition's file, going on after a failure; returns the first.
    fn close_each(&mut self, parts: Vec<i32>) -> io::Result<()> {
        let mut first_error = None;
        for p in parts {
            if let Err(e) = self.close(p) {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.publish() {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The next offsets of the partitions whose files were published since the last call (files
    /// closed but not yet published wait for [`Rolling::publish`]).
    pub fn take_commits(&mut self) -> Vec<(String, i32, i64)> {
        let commits = std::mem::take(&mut self.commits);
        commits.into_iter().map(|(p, o)| (self.topic.clone(), p, o)).collect()
    }

    /// Records offsets as committed (for the report).
    pub fn committed(&mut self, offsets: &[(String, i32, i64)]) {
        for (_, p, o) in offsets {
            self.report.committed.insert(*p, *o);
        }
    }

    /// Files open now.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
#[path = "rolling_tests.rs"]
mod tests;
