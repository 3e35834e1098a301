//! The whole file path: gzip sniffing, pcap/pcapng parsing, decoding and Arrow batch building.
//! Errors are expected for most inputs; panics, hangs and huge allocations are the bugs.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use pktstream::reader::{PacketReader, ReadOptions};
use pktstream::source;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = source::from_reader("fuzz", Box::new(Cursor::new(data.to_vec()))) else {
        return;
    };
    // A small batch size so several batches (and the batch boundary logic) are exercised.
    let opts = ReadOptions { batch_size: 7, ..ReadOptions::default() };
    let mut reader = PacketReader::from_source(src, opts);
    let _ = reader.schema();
    // Bounded: each Ok(Some) consumes at least one record from a finite input, but guard anyway
    // so a reader that never finishes shows up as a timeout rather than an endless loop.
    for _ in 0..1_000_000 {
        match reader.next_batch() {
            Ok(Some(batch)) => {
                assert!(batch.num_rows() <= 7, "batch of {} rows > batch_size 7", batch.num_rows());
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = (reader.stats(), reader.warnings(), reader.bytes_read(), reader.info());
});
