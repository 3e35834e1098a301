//! Message keys and the partition a key lands on.
//!
//! Kafka keeps order only within a partition, so what a key is decides which rows stay in order
//! together. `"flow"` uses the Community ID, the standard direction-independent flow hash that
//! Zeek, Suricata and tshark also compute: both directions of a conversation get the same key,
//! hence the same partition, in order, and the key itself joins with those tools' logs.
//!
//! Partitions are chosen with Kafka's Java-client hash (murmur2, librdkafka's `murmur2_random`,
//! which pktstream sets as the default partitioner), so pktstream, librdkafka and Java producers
//! place one key on the same partition. The `arrow` format needs the partition before sending
//! (rows are grouped per partition into one message), and computes it with [`partition_for`].

/// Kafka's murmur2 hash of a key (Java `Utils.murmur2`; librdkafka `rd_murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default (murmur2) partitioner gives `key` among `partitions`.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) as u32 & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_java_clients_vectors() {
        // From Apache Kafka's UtilsTest.testMurmur2.
        let cases: [(&str, i32); 6] = [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key.as_bytes()), want, "{key}");
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for n in 1..20 {
            let p = partition_for(b"1:LQU9qZlK+B5F3KDmev6m5PMibrg=", n);
            assert!((0..n).contains(&p));
            assert_eq!(p, partition_for(b"1:LQU9qZlK+B5F3KDmev6m5PMibrg=", n));
        }
    }
}

/// What a message's key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// No key: librdkafka spreads messages over partitions.
    None,
    /// The Community ID of the row's flow (both directions alike).
    Flow,
    /// The row's timestamp as an 8-byte big-endian integer (Apache Metron's layout).
    Timestamp,
    /// A column's value: strings and binaries as their bytes, anything else as its text.
    Column(String),
}

impl KeySpec {
    /// The key spec named by the `key` option: none, `"flow"`, `"timestamp"` or a column name.
    pub fn parse(key: Option<&str>) -> Self {
        match key {
            None => KeySpec::None,
            Some("flow") => KeySpec::Flow,
            Some("timestamp") => KeySpec::Timestamp,
            Some(column) => KeySpec::Column(column.to_string()),
        }
    }
}

/// The unit of timestamp keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsUnit {
    /// Seconds since the Unix epoch.
    Seconds,
    /// Milliseconds since the Unix epoch.
    Millis,
    /// Microseconds since the Unix epoch.
    Micros,
    /// Nanoseconds since the Unix epoch.
    Nanos,
}

impl TsUnit {
    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            TsUnit::Seconds => 1_000_000_000,
            TsUnit::Millis => 1_000_000,
            TsUnit::Micros => 1_000,
            TsUnit::Nanos => 1,
        }
    }

    /// An epoch-nanosecond timestamp as the 8-byte key.
    pub fn key(self, ts_ns: i64) -> [u8; 8] {
        ts_ns.div_euclid(self.nanos()).to_be_bytes()
    }

    /// The epoch-nanosecond timestamp of an 8-byte key.
    pub fn from_key(self, key: &[u8]) -> Option<i64> {
        let bytes: [u8; 8] = key.try_into().ok()?;
        i64::from_be_bytes(bytes).checked_mul(self.nanos())
    }
}

impl std::str::FromStr for TsUnit {
    type Err = super::error::KafkaError;
    fn from_str(s: &str) -> super::error::Result<Self> {
        match s {
            "s" => Ok(TsUnit::Seconds),
            "ms" => Ok(TsUnit::Millis),
            "us" => Ok(TsUnit::Micros),
            "ns" => Ok(TsUnit::Nanos),
            other => Err(super::error::KafkaError::invalid(format!(
                "timestamp_unit must be \"s\", \"ms\", \"us\" or \"ns\", not {other:?}"
            ))),
        }
    }
}
