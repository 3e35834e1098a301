//! Kafka messages to one Arrow record batch: the decoded value columns, then `_topic`,
//! `_partition`, `_offset`, `_timestamp`, `_key` and `_error`.
//!
//! A message that cannot be decoded is not an exception that loses the messages around it: it
//! becomes a row whose value columns are null and whose `_error` says why, exactly like a
//! malformed packet becomes a row with a `decode_status`. Every row's offset is in the batch, so
//! committing after a batch never skips a message the application has not seen.

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt16Builder, UInt32Builder,
};
use arrow_array::{new_null_array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_json::reader::{Decoder as JsonDecoder, ReaderBuilder};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::encode::Format;
use super::error::{KafkaError, Result};
use super::key::TsUnit;
use crate::columns::{PacketColumns, RecordMeta};
use crate::decode::{decode, Packet};
use crate::schema::SchemaOptions;

/// The metadata columns appended to every consumed batch.
pub fn meta_fields() -> Vec<Field> {
    vec![
        Field::new("_topic", DataType::Utf8, false),
        Field::new("_partition", DataType::Int32, false),
        Field::new("_offset", DataType::Int64, false),
        Field::new("_timestamp", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
        Field::new("_key", DataType::Binary, true),
        Field::new("_error", DataType::Utf8, true),
    ]
}

/// One consumed message's coordinates and bytes.
pub struct MessageRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    /// `link_type` and `wirelen` headers, for `raw`.
    pub link_type: Option<u16>,
    pub wirelen: Option<u32>,
}

/// How values decode.
enum Values {
    /// Messages buffered as newline-separated JSON, decoded together at `finish`.
    Json { schema: SchemaRef, buf: Vec<u8>, ranges: Vec<(usize, usize)> },
    /// Frames decoded into packet columns as they arrive.
    Raw { columns: Box<PacketColumns>, packet: Packet, unit: TsUnit, frames: u64 },
    /// Arrow IPC batches as sent; the first message's schema (or the given one) fixes the shape.
    Arrow { schema: Option<SchemaRef>, batches: Vec<RecordBatch> },
    /// Value bytes as they are, with the `raw` headers.
    Binary { values: BinaryBuilder, link_types: UInt16Builder, wirelens: UInt32Builder },
}

/// Accumulates messages and builds the batch.
pub struct MessageBatch {
    values: Values,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMillisecondBuilder,
    key: BinaryBuilder,
    errors: Vec<Option<String>>,
    rows: usize,
}

impl MessageBatch {
    /// `schema` is the value schema for `json` (the packet schema when `None`) and an optional
    /// expected schema for `arrow`; `packet` selects packet columns for `raw`.
    pub fn new(format: Format, schema: Option<SchemaRef>, packet: &SchemaOptions, unit: TsUnit) -> Result<Self> {
        let values =
            match format {
                Format::Json => Values::Json {
                    schema: nullable(&schema.unwrap_or_else(|| packet.schema())),
                    buf: Vec::new(),
                    ranges: Vec::new(),
                },
                Format::Raw => Values::Raw {
                    columns: Box::new(PacketColumns::new(packet, 1024)),
                    packet: Packet::default(),
                    unit,
                    frames: 0,
                },
                Format::Arrow => Values::Arrow { schema: schema.map(|s| nullable(&s)), batches: Vec::new() },
                Format::Binary => Values::Binary {
                    values: BinaryBuilder::new(),
                    link_types: UInt16Builder::new(),
                    wirelens: UInt32Builder::new(),
                },
                Format::Csv => return Err(KafkaError::invalid(
                    "the consumer reads format=\"json\", \"raw\", \"arrow\" or \"binary\"; csv is produced for tools \
                     that want text lines and carries no types to decode into (consume it as \"binary\")",
                )),
            };
        Ok(Self {
            values,
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            key: BinaryBuilder::new(),
            errors: Vec::new(),
            rows: 0,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Adds one message (one row, or for `arrow` as many rows as the message holds).
    pub fn push(&mut self, m: &MessageRef<'_>) {
        let (rows, error) = match &mut self.values {
            Values::Json { buf, ranges, .. } => {
                let start = buf.len();
                buf.extend_from_slice(m.payload.unwrap_or_default());
                ranges.push((start, buf.len()));
                buf.push(b'\n');
                (1, None)
            }
            Values::Raw { columns, packet, unit, frames } => {
                let data = m.payload.unwrap_or_default();
                let from_key = m.key.and_then(|k| unit.from_key(k));
                let ts_ns = from_key.or(m.timestamp_ms.map(|t| t.saturating_mul(1_000_000)));
                let link_type = m.link_type.or(Some(1));
                *frames += 1;
                let meta = RecordMeta {
                    frame_number: *frames,
                    ts_ns,
                    caplen: data.len() as u32,
                    wirelen: m.wirelen.unwrap_or(data.len() as u32),
                    interface_id: None,
                    link_type,
                };
                if columns.needs_decode() {
                    decode(link_type.unwrap_or(1), data, packet);
                }
                columns.append(&meta, packet);
                let error = from_key
                    .is_none()
                    .then(|| "key is not an 8-byte timestamp: ts is the message's Kafka timestamp".to_string());
                (1, error)
            }
            Values::Binary { values, link_types, wirelens } => {
                values.append_option(m.payload);
                link_types.append_option(m.link_type);
                wirelens.append_option(m.wirelen);
                (1, None)
            }
            Values::Arrow { schema, batches } => match read_ipc(m.payload.unwrap_or_default(), schema) {
                Ok(bs) => {
                    let n: usize = bs.iter().map(RecordBatch::num_rows).sum();
                    batches.extend(bs);
                    (n, None)
                }
                Err(e) => {
                    batches.push(RecordBatch::new_empty(Arc::new(Schema::empty())));
                    (1, Some(e))
                }
            },
        };
        for _ in 0..rows {
            self.topic.append_value(m.topic);
            self.partition.append_value(m.partition);
            self.offset.append_value(m.offset);
            self.timestamp.append_option(m.timestamp_ms);
            self.key.append_option(m.key);
            self.errors.push(error.clone());
        }
        self.rows += rows;
    }

    /// Builds the batch of everything pushed and starts over.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let (mut fields, mut arrays): (Vec<Field>, Vec<ArrayRef>) = match &mut self.values {
            Values::Json { schema, buf, ranges } => {
                let r = std::mem::take(ranges);
                let (batch, errors) = decode_json(schema, buf, &r)?;
                buf.clear();
                for (slot, e) in self.errors.iter_mut().zip(errors) {
                    if e.is_some() {
                        *slot = e;
                    }
                }
                split(&batch)
            }
            Values::Raw { columns, .. } => split(&columns.finish()?),
            Values::Binary { values, link_types, wirelens } => (
                vec![
                    Field::new("value", DataType::Binary, true),
                    Field::new("link_type", DataType::UInt16, true),
                    Field::new("wirelen", DataType::UInt32, true),
                ],
                vec![Arc::new(values.finish()), Arc::new(link_types.finish()), Arc::new(wirelens.finish())],
            ),
            Values::Arrow { schema, batches } => {
                let bs = std::mem::take(batches);
                let schema = schema.clone().unwrap_or_else(|| Arc::new(Schema::empty()));
                if schema.fields().is_empty() {
                    (Vec::new(), Vec::new())
                } else {
                    let parts = bs
                        .iter()
                        .map(|b| {
                            if b.num_columns() == 0 && !schema.fields().is_empty() {
                                null_rows(&schema, 1)
                            } else {
                                Ok(b.clone())
                            }
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let batch = arrow_select::concat::concat_batches(&schema, parts.iter())
                        .map_err(crate::error::Error::from)?;
                    split(&batch)
                }
            }
        };
        let meta = meta_fields();
        let errors: arrow_array::StringArray = std::mem::take(&mut self.errors).into_iter().collect();
        let meta_arrays: Vec<ArrayRef> = vec![
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.key.finish()),
            Arc::new(errors),
        ];
        fields.extend(meta);
        arrays.extend(meta_arrays);
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
            .map_err(crate::error::Error::from)?)
    }
}

fn split(batch: &RecordBatch) -> (Vec<Field>, Vec<ArrayRef>) {
    (batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect(), batch.columns().to_vec())
}

fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>()))
}

fn null_rows(schema: &SchemaRef, rows: usize) -> Result<RecordBatch> {
    let arrays = schema.fields().iter().map(|f| new_null_array(f.data_type(), rows)).collect();
    Ok(RecordBatch::try_new(schema.clone(), arrays).map_err(crate::error::Error::from)?)
}

/// Decodes one IPC stream message; the first one fixes `schema`.
fn read_ipc(payload: &[u8], schema: &mut Option<SchemaRef>) -> std::result::Result<Vec<RecordBatch>, String> {
    let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(payload), None)
        .map_err(|e| format!("not an Arrow IPC stream: {e}"))?;
    let got = reader.schema();
    let want = schema.get_or_insert_with(|| nullable(&got)).clone();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| format!("corrupt Arrow IPC: {e}"))?;
    batches
        .into_iter()
        .map(|b| {
            if b.schema().fields().len() != want.fields().len() {
                return Err(format!("message schema {} differs from the topic's {}", b.schema(), want));
            }
            let cols = b
                .columns()
                .iter()
                .zip(want.fields())
                .map(|(c, f)| arrow_cast::cast(c, f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("message schema {} differs from the topic's {want}: {e}", b.schema()))?;
            RecordBatch::try_new(want.clone(), cols).map_err(|e| e.to_string())
        })
        .collect()
}

/// Decodes newline-separated JSON messages. The fast path decodes all at once; if any message is
/// bad, each is decoded on its own so only the bad ones become null rows with an error.
fn decode_json(
    schema: &SchemaRef,
    buf: &[u8],
    ranges: &[(usize, usize)],
) -> Result<(RecordBatch, Vec<Option<String>>)> {
    let n = ranges.len();
    if let Ok(batch) = decode_all(schema, buf, n) {
        if batch.num_rows() == n {
            return Ok((batch, vec![None; n]));
        }
    }
    let mut parts = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    for &(start, end) in ranges {
        let one = &buf[start..end];
        match decode_all(schema, one, 1) {
            Ok(b) if b.num_rows() == 1 => {
                parts.push(b);
                errors.push(None);
            }
            Ok(b) => {
                parts.push(null_rows(schema, 1)?);
                errors.push(Some(format!("expected one JSON object per message, found {}", b.num_rows())));
            }
            Err(e) => {
                parts.push(null_rows(schema, 1)?);
                errors.push(Some(e));
            }
        }
    }
    let batch = arrow_select::concat::concat_batches(schema, parts.iter()).map_err(crate::error::Error::from)?;
    Ok((batch, errors))
}

fn decode_all(schema: &SchemaRef, bytes: &[u8], rows: usize) -> std::result::Result<RecordBatch, String> {
    let mut decoder: JsonDecoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.max(1) + 1)
        .build_decoder()
        .map_err(|e| e.to_string())?;
    let mut rest = bytes;
    while !rest.is_empty() {
        let used = decoder.decode(rest).map_err(|e| e.to_string())?;
        if used == 0 {
            break;
        }
        rest = &rest[used..];
    }
    match decoder.flush().map_err(|e| e.to_string())? {
        Some(b) => Ok(b),
        None => null_rows(schema, 0).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(offset: i64, payload: &'a [u8]) -> MessageRef<'a> {
        MessageRef {
            topic: "t",
            partition: 0,
            offset,
            timestamp_ms: Some(1000),
            key: None,
            payload: Some(payload),
            link_type: None,
            wirelen: None,
        }
    }

    #[test]
    fn bad_json_messages_become_error_rows_and_lose_nothing() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let mut b = MessageBatch::new(Format::Json, Some(schema), &SchemaOptions::default(), TsUnit::Micros).unwrap();
        for (i, p) in [&b"{\"a\":1}"[..], b"not json", b"{\"a\":3}", b"{\"a\":\"x\"}"].iter().enumerate() {
            b.push(&msg(i as i64, p));
        }
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 4);
        let a = batch.column(0).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![Some(1), None, Some(3), None]);
        let err = batch.column_by_name("_error").unwrap();
        assert_eq!(err.null_count(), 2);
        let offsets = batch.column_by_name("_offset").unwrap();
        assert_eq!(offsets.len(), 4);
    }
}
