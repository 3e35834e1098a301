//! pktstream: network packets into Apache Arrow, fast.
//!
//! The crate is a plain-Rust core (capture sources, frame decoding, Arrow batch building) with a
//! thin PyO3 binding layer in [`py`] that is compiled only with the `python` feature (maturin turns
//! it on), so `cargo test` exercises the core without a Python interpreter.
//!
//! ```no_run
//! use pktstream::reader::{PacketReader, ReadOptions};
//! let mut reader = PacketReader::open("capture.pcap".as_ref(), ReadOptions::default())?;
//! while let Some(batch) = reader.next_batch()? {
//!     println!("{} packets", batch.num_rows());
//! }
//! # Ok::<(), pktstream::error::Error>(())
//! ```

pub mod archive;
pub mod build_info;
pub mod columns;
pub mod decode;
pub mod distance;
pub mod error;
pub mod flow;
pub mod kafka;
pub mod reader;
pub mod schema;
pub mod sink;
pub mod source;

#[cfg(feature = "python")]
mod py;
