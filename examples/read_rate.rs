//! Reads a capture with every column and prints packets/s (used for profiling the core alone).
use std::time::Instant;

use pktstream::reader::{PacketReader, ReadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: read_rate FILE")?;
    for _ in 0..3 {
        let start = Instant::now();
        let mut reader = PacketReader::open(path.as_ref(), ReadOptions::default())?;
        let mut rows = 0;
        while let Some(batch) = reader.next_batch()? {
            rows += batch.num_rows();
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{rows} packets in {secs:.3} s: {:.2} M packets/s", rows as f64 / secs / 1e6);
    }
    Ok(())
}
