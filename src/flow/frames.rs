//! Flows from frames that arrive in batches instead of from a capture: a Kafka `raw` topic read
//! with a `binary` consumer (Apache Metron's layout: the value is the frame, the key an 8-byte
//! big-endian timestamp, link type and wire length in headers), or frames another client read.
//! The caller pushes batches in and takes the ended flows out; nothing here waits or reads, so
//! the caller's loop decides when the input ends (and commits what it has metered).
//!
//! Time is event time, as for files: the key's timestamp when the key is one, else the message's
//! Kafka timestamp. Frames are metered in the order they are pushed; the meter's clock only moves
//! forward, so a frame older than one already seen (another partition lagging) counts at the
//! latest time seen, as NFStream does with a capture out of order.

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt16Type, UInt32Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};

use super::{FlowColumns, FlowMeter, FlowOptions, MeterStats};
use crate::decode::{decode, Packet};
use crate::error::{Error, Result};
use crate::kafka::TsUnit;

/// Ethernet, for frames without a `link_type`.
const ETHERNET: u16 = 1;

/// A flow meter fed with batches of frames.
pub struct FrameMeter {
    meter: FlowMeter,
    columns: FlowColumns,
    packet: Packet,
    batch_size: usize,
    unit: TsUnit,
    server_name: bool,
    /// Messages without a frame (null or empty value): no packet.
    empty: u64,
    /// Messages whose key is not a timestamp (their Kafka timestamp was used).
    kafka_time: u64,
}

impl FrameMeter {
    /// `unit` is the unit of the keys' timestamps (the producer's `timestamp_unit`).
    pub fn new(opts: FlowOptions, columns: Option<&[String]>, batch_size: usize, unit: TsUnit) -> Result<Self> {
        opts.validate()?;
        if batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be at least 1".into()));
        }
        let columns = FlowColumns::new(opts.statistics, opts.server_name, columns)?;
        Ok(Self {
            server_name: opts.server_name,
            meter: FlowMeter::new(opts),
            columns,
            packet: Packet::default(),
            batch_size,
            unit,
            empty: 0,
            kafka_time: 0,
        })
    }

    /// The Arrow schema of the flow batches returned.
    pub fn schema(&self) -> SchemaRef {
        self.columns.schema()
    }

    /// Meters a batch of messages with the columns of a `binary` consumer: `value` (the frames),
    /// and where present `link_type` (Ethernet when null), `wirelen` (the frame's length when
    /// null), `_key` and `_timestamp`. Other columns are ignored.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let column = |name: &str, want: &DataType| -> Result<Option<&dyn Array>> {
            match batch.column_by_name(name) {
                None => Ok(None),
                Some(c) if c.data_type() == want => Ok(Some(c.as_ref())),
                Some(c) => Err(Error::InvalidArgument(format!(
                    "frames: column {name} is {}, not {want} (read the topic with format=\"binary\")",
                    c.data_type()
                ))),
            }
        };
        let values = column("value", &DataType::Binary)?.ok_or_else(|| {
            Error::InvalidArgument("frames: no binary `value` column (read the topic with format=\"binary\")".into())
        })?;
        let values = values.as_binary::<i32>();
        let link_types = column("link_type", &DataType::UInt16)?.map(|c| c.as_primitive::<UInt16Type>());
        let wirelens = column("wirelen", &DataType::UInt32)?.map(|c| c.as_primitive::<UInt32Type>());
        let keys = column("_key", &DataType::Binary)?.map(|c| c.as_binary::<i32>());
        let ms = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let times = column("_timestamp", &ms)?.map(|c| c.as_primitive::<TimestampMillisecondType>());
        for i in 0..batch.num_rows() {
            let frame = if values.is_null(i) { &[][..] } else { values.value(i) };
            if frame.is_empty() {
                self.empty += 1;
                continue;
            }
            let from_key = keys.filter(|k| k.is_valid(i)).and_then(|k| self.unit.from_key(k.value(i)));
            let ts_ns = from_key.or_else(|| {
                self.kafka_time += 1;
                times.filter(|t| t.is_valid(i)).map(|t| t.value(i).saturating_mul(1_000_000))
            });
            let link_type = link_types.filter(|l| l.is_valid(i)).map_or(ETHERNET, |l| l.value(i));
            let caplen = u32::try_from(frame.len()).unwrap_or(u32::MAX);
            let wirelen = wirelens.filter(|w| w.is_valid(i)).map_or(caplen, |w| w.value(i));
            decode(link_type, frame, &mut self.packet);
            let frame = self.server_name.then_some(frame);
            self.meter.observe_frame(&self.packet, ts_ns, wirelen, frame);
        }
        Ok(())
    }

    /// The next batch of ended flows (at most `batch_size`), `None` when none is waiting.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let room = self.batch_size - self.columns.len();
        for r in self.meter.drain_up_to(room) {
            self.columns.append(&r);
        }
        if self.columns.is_empty() {
            return Ok(None);
        }
        self.columns.finish().map(Some)
    }

    /// Ends every active flow (expiration `end`): the input is over. Take them with
    /// [`Self::next_batch`].
    pub fn finish(&mut self) {
        self.meter.finish();
    }

    /// The meter's counters, and the messages without a frame and without a timestamp key.
    pub fn stats(&self) -> (MeterStats, u64, u64) {
        (self.meter.stats(), self.empty, self.kafka_time)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BinaryArray, TimestampMillisecondArray, UInt16Array};
    use arrow_schema::{Field, Schema};

    use super::*;

    /// An Ethernet + IPv4 + UDP frame from 10.0.0.`a`:`sport` to 10.0.0.`b`:`dport`.
    fn udp(a: u8, b: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, a, 10, 0, 0, b]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    fn batch(frames: Vec<Vec<u8>>, keys: Vec<Option<Vec<u8>>>, ms: Vec<i64>) -> RecordBatch {
        let ms_type = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = Schema::new(vec![
            Field::new("value", DataType::Binary, true),
            Field::new("link_type", DataType::UInt16, true),
            Field::new("_key", DataType::Binary, true),
            Field::new("_timestamp", ms_type, true),
        ]);
        let n = frames.len();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(BinaryArray::from_iter_values(frames)),
                Arc::new(UInt16Array::from(vec![None; n])),
                Arc::new(BinaryArray::from_iter(keys)),
                Arc::new(TimestampMillisecondArray::from(ms).with_timezone("UTC")),
            ],
        )
        .unwrap()
    }

    #[test]
    fn frames_in_batches_make_the_flows_of_their_keys_and_times() {
        let opts = FlowOptions { idle_timeout_ns: 10_000_000_000, ..FlowOptions::default() };
        let mut m = FrameMeter::new(
            opts,
            Some(&["src_port".into(), "packets".into(), "first_seen".into()]),
            16,
            TsUnit::Micros,
        )
        .unwrap();
        let key = |us: i64| Some(us.to_be_bytes().to_vec());
        m.push(&batch(
            vec![udp(1, 2, 1000, 53), udp(2, 1, 53, 1000), udp(3, 2, 7, 9)],
            vec![key(1_000_000), key(1_500_000), None],
            vec![0, 0, 2_000],
        ))
        .unwrap();
        assert!(m.next_batch().unwrap().is_none(), "nothing idle yet");
        // 20 s later (Kafka time, the key is not a timestamp): both earlier flows are idle.
        m.push(&batch(vec![udp(1, 2, 1000, 53), vec![]], vec![Some(b"k".to_vec()), None], vec![22_000, 22_000]))
            .unwrap();
        let ended = m.next_batch().unwrap().unwrap();
        assert_eq!(ended.num_rows(), 2);
        m.finish();
        let rest = m.next_batch().unwrap().unwrap();
        assert_eq!(rest.num_rows(), 1);
        let (stats, empty, kafka_time) = m.stats();
        assert_eq!((stats.packets, stats.flows, empty, kafka_time), (4, 3, 1, 2));
        let first: &arrow_array::TimestampNanosecondArray = ended.column_by_name("first_seen").unwrap().as_primitive();
        assert_eq!(first.value(0), 1_000_000_000);
    }

    #[test]
    fn a_batch_without_frames_is_refused() {
        let mut m = FrameMeter::new(FlowOptions::default(), None, 16, TsUnit::Micros).unwrap();
        let schema = Schema::new(vec![Field::new("value", DataType::Utf8, true)]);
        let b =
            RecordBatch::try_new(Arc::new(schema), vec![Arc::new(arrow_array::StringArray::from(vec!["x"]))]).unwrap();
        assert!(matches!(m.push(&b), Err(Error::InvalidArgument(_))));
    }
}
