//! Rows/s of the `json` and `csv` encoders alone (no Kafka): `cargo run --release --example
//! encode_rate -- capture.pcap`. Separates serialisation cost from librdkafka and broker cost.

use std::time::Instant;

use pktstream::kafka::encode::{csv_options, utc_as_offset, CsvRows, JsonInput};
use pktstream::reader::{PacketReader, ReadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: encode_rate FILE")?;
    let mut reader = PacketReader::open(path.as_ref(), ReadOptions::default())?;
    let mut batches = Vec::new();
    while let Some(b) = reader.next_batch()? {
        batches.push(b);
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut out = Vec::with_capacity(1024);
    let t = Instant::now();
    let mut bytes = 0;
    for b in &batches {
        let input = JsonInput::new(b);
        let mut enc = input.rows()?;
        for i in 0..b.num_rows() {
            out.clear();
            enc.encode(i, &mut out);
            bytes += out.len();
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!("json: {rows} rows in {s:.3} s = {:.0} rows/s, {:.0} B/row", rows as f64 / s, bytes as f64 / rows as f64);
    let t = Instant::now();
    for b in &batches {
        let b = utc_as_offset(b);
        let options = csv_options();
        let mut enc = CsvRows::new(&b, &options, b',')?;
        for i in 0..b.num_rows() {
            out.clear();
            enc.encode(i, &mut out);
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!("csv:  {rows} rows in {s:.3} s = {:.0} rows/s", rows as f64 / s);
    Ok(())
}
