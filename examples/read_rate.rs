//! Reads a capture and prints packets/s for the core alone (no Python), best of 5:
//! `cargo run --release --example read_rate -- FILE [COLUMN,COLUMN,...] [binary]`.
use std::time::Instant;

use pktstream::reader::{PacketReader, ReadOptions};
use pktstream::schema::{AddressFormat, SchemaOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: read_rate FILE [COLUMNS|all] [binary]")?;
    let columns: Option<Vec<String>> =
        args.next().filter(|c| c != "all").map(|c| c.split(',').map(String::from).collect());
    let addresses =
        if args.next().as_deref() == Some("binary") { AddressFormat::Binary } else { AddressFormat::String };
    let schema = SchemaOptions::new(columns.as_deref(), addresses)?;
    let mut best = f64::MAX;
    let mut rows = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let opts = ReadOptions { schema: schema.clone(), ..ReadOptions::default() };
        let mut reader = PacketReader::open(path.as_ref(), opts)?;
        rows = 0;
        while let Some(batch) = reader.next_batch()? {
            rows += batch.num_rows();
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("{rows} packets, best {best:.3} s: {:.2} M packets/s", rows as f64 / best / 1e6);
    Ok(())
}
