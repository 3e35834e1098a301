//! Kafka, natively: record batches and capture files to topics, topics back to record batches.
//!
//! Everything goes through librdkafka (the `rdkafka` crate with its bundled build), the client
//! every other language's Kafka library wraps too, so delivery semantics, configuration keys and
//! wire compatibility are the ones users already know. pktstream adds what the glue code around
//! such clients usually gets wrong: serialisation in Rust ([`encode`]), keys that keep flows
//! together ([`key`]), back-pressure instead of drops ([`producer`]), one loop from any reader to
//! a topic with Ctrl-C and progress in it ([`mod@pump`]), and consumed messages as typed Arrow
//! columns with their offsets ([`messages`], [`consumer`]).

pub mod admin;
pub mod batch_keys;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod encode;
pub mod error;
pub mod headers;
pub mod ipc_check;
pub mod json_scan;
pub mod key;
pub mod messages;
pub mod meta;
pub mod produce;
pub mod producer;
pub mod pump;
pub mod raw;
pub mod rebalance;
pub mod text;
pub mod times;

pub use config::Config;
pub use consumer::{consumer_config, Consumer, ConsumerOptions};
pub use encode::Format;
pub use error::{KafkaError, Result};
pub use key::{KeySpec, TsUnit};
pub use produce::{producer_config, BatchProducer, ProduceOptions, ProduceReport, Progress};
pub use pump::{produce_capture, pump, ArrowStream, Capture};
pub use raw::{RawFrames, RawProducer};
