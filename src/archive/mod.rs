//! The raw packet archive: a Kafka `raw` topic into rolling pcap files, and queries over them.
//!
//! [`writer`] consumes the topic and rolls one file per partition ([`rolling`]), publishing a file
//! (fsync, rename, directory fsync) before committing the offsets it holds; [`query`] merges the
//! rolled files back into one time-ordered, filtered capture in bounded memory. [`names`] is the
//! file naming both sides agree on: the first message's topic, partition, offset and timestamp.

pub mod names;
pub mod query;
pub mod rolling;
pub mod writer;
