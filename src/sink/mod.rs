//! Sinks: where packet batches end up other than Kafka.
//!
//! One pcap writer ([`pcap::PcapWriter`]) serves every place that writes a capture file: live
//! capture to a file (`capture -o`), the Kafka archive's rolling files, the archive query's merged
//! output and the synthetic captures of `pktstream.testing`. [`file::PartFile`] is how a file
//! becomes visible only once it is complete and on disk (`.<pid>.part`, fsync, rename, directory fsync),
//! the order the archive's at-least-once commits rely on.

pub mod file;
pub mod pcap;
