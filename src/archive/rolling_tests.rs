//! Rolling: when files turn over, what becomes committable, revokes, re-deliveries, hostile times.

use std::sync::{Arc, Mutex};

use super::*;

/// A file kept in memory: (name, bytes, published).
type MemEntry = (String, Vec<u8>, bool);

/// Files kept in memory.
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Vec<MemEntry>>>);

struct MemFile {
    store: Memory,
    index: usize,
}

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.store.0.lock().unwrap()[self.index].1.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FileOut for MemFile {
    fn publish(self: Box<Self>) -> io::Result<String> {
        let mut files = self.store.0.lock().unwrap();
        files[self.index].2 = true;
        Ok(files[self.index].0.clone())
    }

    fn discard(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

impl Target for Memory {
    fn create(&mut self, name: &str) -> io::Result<Box<dyn FileOut>> {
        let mut files = self.0.lock().unwrap();
        files.push((name.to_string(), Vec::new(), false));
        Ok(Box::new(MemFile { store: self.clone(), index: files.len() - 1 }))
    }

    fn clean_parts(&mut self, _prefix: &str) -> io::Result<()> {
        Ok(())
    }
}

impl Memory {
    fn published(&self) -> Vec<(String, usize)> {
        let files = self.0.lock().unwrap();
        files.iter().filter(|f| f.2).map(|f| (f.0.clone(), (f.1.len() - 24) / 17)).collect()
    }
}

fn msg(partition: i32, offset: i64, ts: i64) -> Message<'static> {
    Message {
        partition,
        offset,
        key_ts_ns: Some(ts),
        kafka_ms: Some(1_000),
        frame: b"x",
        wirelen: None,
        link_type: None,
    }
}

const S: i64 = 1_000_000_000;

fn roller(packets: u64, seconds: i64) -> Rolling {
    let mut r = Rolling::new("t", RollOptions { roll_packets: packets, roll_ns: seconds * S, nanosecond: false });
    r.assigned([0, 1]);
    r
}

#[test]
fn files_roll_on_count_time_and_link_type_and_commit_after_publishing() {
    let mut mem = Memory::default();
    let mut r = roller(3, 10);
    for o in 0..7 {
        r.write(&mut mem, &msg(0, o, 100 * S + o)).unwrap();
    }
    // Two full files closed: committable once published; the third open, not committable.
    assert_eq!(r.take_commits(), vec![]);
    r.publish().unwrap();
    assert_eq!(r.take_commits(), vec![("t".to_string(), 0, 6)]);
    r.write(&mut mem, &msg(0, 7, 111 * S)).unwrap(); // 11 s after the open file's first: rolls
    r.write(&mut mem, &Message { link_type: Some(101), ..msg(0, 8, 111 * S) }).unwrap(); // rolls
    r.publish().unwrap();
    assert_eq!(r.take_commits(), vec![("t".to_string(), 0, 8)]);
    r.close_all().unwrap();
    assert_eq!(r.take_commits(), vec![("t".to_string(), 0, 9)]);
    let names: Vec<_> = mem.published();
    assert_eq!(
        names,
        vec![
            (super::super::names::file_name("t", 0, 0, 100 * S), 3),
            (super::super::names::file_name("t", 0, 3, 100 * S + 3), 3),
            (super::super::names::file_name("t", 0, 6, 100 * S + 6), 1),
            (super::super::names::file_name("t", 0, 7, 111 * S), 1),
            (super::super::names::file_name("t", 0, 8, 111 * S), 1),
        ]
    );
    assert_eq!((r.report.packets, r.report.files), (9, 5));
}

#[test]
fn a_revoked_partition_is_closed_and_its_later_rows_skipped() {
    let mut mem = Memory::default();
    let mut r = roller(100, 100);
    r.write(&mut mem, &msg(0, 0, S)).unwrap();
    r.write(&mut mem, &msg(1, 0, S)).unwrap();
    r.revoking([1]).unwrap();
    assert_eq!(r.take_commits(), vec![("t".to_string(), 1, 1)]);
    r.write(&mut mem, &msg(1, 1, S)).unwrap(); // read before the revoke: the next owner's
    assert_eq!(r.report.skipped, 1);
    // Assigned back in the same batch: the rows it delivers again are not written twice.
    r.assigned([1]);
    r.write(&mut mem, &msg(1, 0, S)).unwrap();
    r.write(&mut mem, &msg(1, 1, S)).unwrap();
    assert_eq!(r.report.skipped, 2);
    r.close_all().unwrap();
    assert_eq!(r.take_commits(), vec![("t".to_string(), 0, 1), ("t".to_string(), 1, 2)]);
    assert_eq!(mem.published().iter().map(|f| f.1).sum::<usize>(), 3);
}

#[test]
fn hostile_timestamps_are_archived_with_the_kafka_time_and_counted() {
    let mut mem = Memory::default();
    let mut r = roller(100, 100);
    r.write(&mut mem, &Message { key_ts_ns: Some(-5), ..msg(0, 0, 0) }).unwrap();
    r.write(&mut mem, &Message { key_ts_ns: None, kafka_ms: None, ..msg(0, 1, 0) }).unwrap();
    r.write(&mut mem, &Message { key_ts_ns: Some(i64::MAX), kafka_ms: Some(i64::MAX), ..msg(0, 2, 0) }).unwrap();
    r.close_all().unwrap();
    assert_eq!((r.report.packets, r.report.bad_timestamps), (3, 3));
    // The first falls back to the Kafka time (1 s); the others to the epoch.
    assert_eq!(mem.published()[0].0, super::super::names::file_name("t", 0, 0, S));
}
