//! Kafka messages to one Arrow record batch: the decoded value columns, then `_topic`,
//! `_partition`, `_offset`, `_timestamp`, `_key` and `_error`.
//!
//! A message that cannot be decoded is not an exception that loses the messages around it: it
//! becomes a row whose value columns are null and whose `_error` says why, exactly like a
//! malformed packet becomes a row with a `decode_status`. Every row's offset is in the batch, so
//! committing after a batch never skips a message the application has not seen.
//!
//! A topic can hold anything, from any producer, so the rules are strict: every message is at
//! least one row with its own offset, partition and key (an `arrow` value holding N rows is N
//! rows; one that holds none, or cannot be read, is one error row), and a message costs memory
//! and time in proportion to its size. Hence: JSON values must be exactly one object
//! ([`super::json_scan`]); IPC framing and row counts are checked before arrow-ipc reads a value
//! ([`super::ipc_check`], at most [`super::ipc_check::MAX_UNBACKED_ROWS`] rows beyond one per
//! byte), with arrow-ipc itself behind `catch_unwind`; and row metadata grows fallibly
//! ([`super::meta`]). Empty values (tombstones) are error rows in `json`, `arrow` and `raw` (a
//! frame of no bytes is not a packet); `binary` passes values through as they are: null for a
//! tombstone, empty for an empty value, no error.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, UInt16Builder, UInt32Builder};
use arrow_array::{new_null_array, ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_json::reader::{Decoder as JsonDecoder, ReaderBuilder};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::encode::Format;
use super::error::{KafkaError, Result};
use super::headers::Header;
use super::key::TsUnit;
use super::meta::{headers_type, HeaderColumn, MetaColumns};
use super::{ipc_check, json_scan};
use crate::columns::{PacketColumns, RecordMeta};
use crate::decode::{decode, Packet};
use crate::schema::SchemaOptions;

/// The most bytes an `arrow` message's key may take once repeated on each of its rows (64 MiB):
/// a large key on a value declaring many cheap rows would otherwise multiply.
pub const MAX_REPEATED_KEY_BYTES: usize = 64 << 20;

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
    /// The topic the message was read from.
    pub topic: &'a str,
    /// The partition the message was read from.
    pub partition: i32,
    /// The message's offset in its partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch (create or log-append time); `None` when the message has
    /// none.
    pub timestamp_ms: Option<i64>,
    /// The key bytes; `None` for a message without a key.
    pub key: Option<&'a [u8]>,
    /// The value bytes; `None` for a null value (a tombstone).
    pub payload: Option<&'a [u8]>,
    /// `link_type` and `wirelen` headers, for `raw`.
    pub link_type: Option<u16>,
    /// The `wirelen` header in bytes, for `raw`.
    pub wirelen: Option<u32>,
    /// Every header, when the batch collects them (`_headers`); `None` otherwise.
    pub headers: Option<&'a [Header<'a>]>,
}

/// How values decode.
enum Values {
    /// Messages buffered as newline-separated JSON, decoded together at `finish`; `None` for a
    /// message that is not one JSON object (its error is already set).
    Json { schema: SchemaRef, buf: Vec<u8>, ranges: Vec<Option<(usize, usize)>> },
    /// Frames decoded into packet columns as they arrive.
    Raw { columns: Box<PacketColumns>, packet: Packet, unit: TsUnit, frames: u64 },
    /// Arrow IPC batches as sent; `None` stands for one null row (a message that failed). The
    /// given schema, or else the first message that decodes to rows, fixes the shape.
    Arrow { schema: Option<SchemaRef>, parts: Vec<Option<RecordBatch>> },
    /// Value bytes as they are, with the `raw` headers.
    Binary { values: BinaryBuilder, link_types: UInt16Builder, wirelens: UInt32Builder },
}

/// Accumulates messages and builds the batch.
pub struct MessageBatch {
    values: Values,
    meta: MetaColumns,
    /// Bytes of values buffered (for the consumer's batch size limit).
    value_bytes: usize,
}

/// A tombstone's error, per format.
fn empty_value(what: &str) -> String {
    format!("empty value (a tombstone or zero bytes): no {what}")
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
                Format::Arrow => Values::Arrow { schema: schema.map(|s| nullable(&s)), parts: Vec::new() },
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
        Ok(Self { values, meta: MetaColumns::default(), value_bytes: 0 })
    }

    /// Also returns every header of each message, in a last column `_headers`
    /// (list<struct<key: utf8, value: binary>>; see [`super::meta::HeaderColumn`]).
    pub fn with_headers(mut self) -> Self {
        self.meta = MetaColumns::with_headers();
        self
    }

    /// Whether the batch collects every header (`_headers`).
    pub fn has_headers(&self) -> bool {
        self.meta.has_headers()
    }

    /// Messages added since the last batch was taken.
    pub fn rows(&self) -> usize {
        self.meta.len()
    }

    /// Roughly the bytes buffered so far (values and row metadata).
    pub fn bytes(&self) -> usize {
        self.value_bytes.saturating_add(self.meta.len_bytes())
    }

    /// Adds one message: one row, or for `arrow` as many rows as the message holds (at least
    /// one). Fails only when memory runs out ([`KafkaError::OutOfMemory`]); the batch is then
    /// unchanged.
    pub fn push(&mut self, m: &MessageRef<'_>) -> Result<()> {
        let payload = m.payload.unwrap_or_default();
        match &mut self.values {
            Values::Json { buf, ranges, .. } => {
                let scanned = match m.payload {
                    None | Some([]) => Err(empty_value("JSON object")),
                    Some(p) => json_scan::one_object(p),
                };
                self.meta.reserve(m, 1)?;
                let range = if scanned.is_ok() {
                    buf.try_reserve(payload.len() + 1)
                        .map_err(|_| KafkaError::OutOfMemory(format!("a {}-byte JSON value", payload.len())))?;
                    let start = buf.len();
                    buf.extend_from_slice(payload);
                    buf.push(b'\n');
                    Some((start, start + payload.len()))
                } else {
                    None
                };
                ranges.push(range);
                self.meta.append(m, 1, scanned.err());
            }
            Values::Raw { columns, packet, unit, frames } => {
                self.meta.reserve(m, 1)?;
                let from_key = m.key.and_then(|k| unit.from_key(k));
                let ts_ns = from_key.or(m.timestamp_ms.map(|t| t.saturating_mul(1_000_000)));
                let link_type = m.link_type.or(Some(1));
                *frames += 1;
                let caplen = u32::try_from(payload.len()).unwrap_or(u32::MAX);
                let meta = RecordMeta {
                    frame_number: *frames,
                    ts_ns,
                    caplen,
                    wirelen: m.wirelen.unwrap_or(caplen),
                    interface_id: None,
                    link_type,
                };
                if columns.needs_decode() {
                    decode(link_type.unwrap_or(1), payload, packet);
                }
                columns.append(&meta, packet, payload);
                let error = if payload.is_empty() {
                    Some(empty_value("frame"))
                } else {
                    from_key
                        .is_none()
                        .then(|| "key is not an 8-byte timestamp: ts is the message's Kafka timestamp".to_string())
                };
                self.meta.append(m, 1, error);
            }
            Values::Binary { values, link_types, wirelens } => {
                self.meta.reserve(m, 1)?;
                values.append_option(m.payload);
                link_types.append_option(m.link_type);
                wirelens.append_option(m.wirelen);
                self.meta.append(m, 1, None);
            }
            Values::Arrow { schema, parts } => {
                let decoded = match m.payload {
                    None | Some([]) => Err(empty_value("Arrow IPC stream")),
                    Some(p) => read_ipc(p, schema.as_ref()).and_then(|(bs, got)| {
                        let rows: usize = bs.iter().map(RecordBatch::num_rows).sum();
                        let key = m.key.map_or(0, <[u8]>::len);
                        if key.saturating_mul(rows) > MAX_REPEATED_KEY_BYTES {
                            return Err(format!(
                                "its {key}-byte key repeated on each of its {rows} rows would take more than \
                                 {MAX_REPEATED_KEY_BYTES} bytes"
                            ));
                        }
                        let headers = m.headers.map_or(0, HeaderColumn::bytes_of);
                        if headers.saturating_mul(rows) > MAX_REPEATED_KEY_BYTES {
                            return Err(format!(
                                "its {headers} bytes of headers repeated on each of its {rows} rows would take \
                                 more than {MAX_REPEATED_KEY_BYTES} bytes"
                            ));
                        }
                        Ok((bs, got, rows))
                    }),
                };
                match decoded {
                    Ok((bs, got, rows)) => {
                        self.meta.reserve(m, rows)?;
                        parts.try_reserve(bs.len()).map_err(|_| KafkaError::OutOfMemory("IPC batches".into()))?;
                        schema.get_or_insert(got);
                        parts.extend(bs.into_iter().map(Some));
                        self.meta.append(m, rows, None);
                    }
                    Err(e) => {
                        self.meta.reserve(m, 1)?;
                        parts.try_reserve(1).map_err(|_| KafkaError::OutOfMemory("IPC batches".into()))?;
                        parts.push(None);
                        self.meta.append(m, 1, Some(e));
                    }
                }
            }
        }
        self.value_bytes = self.value_bytes.saturating_add(payload.len());
        Ok(())
    }

    /// Builds the batch of everything pushed and starts over.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let rows = self.meta.len();
        self.value_bytes = 0;
        let (mut fields, mut arrays): (Vec<Field>, Vec<ArrayRef>) = match &mut self.values {
            Values::Json { schema, buf, ranges } => {
                let r = std::mem::take(ranges);
                let (batch, errors) = decode_json(schema, buf, &r)?;
                buf.clear();
                for (row, e) in errors.into_iter().enumerate() {
                    if let Some(e) = e {
                        self.meta.set_error(row, e);
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
            Values::Arrow { schema, parts } => {
                let parts = std::mem::take(parts);
                match schema {
                    Some(schema) if !schema.fields().is_empty() => {
                        let parts = parts
                            .into_iter()
                            .map(|b| match b {
                                Some(b) => Ok(b),
                                None => null_rows(schema, 1),
                            })
                            .collect::<Result<Vec<_>>>()?;
                        let batch = arrow_select::concat::concat_batches(schema, parts.iter())
                            .map_err(crate::error::Error::from)?;
                        split(&batch)
                    }
                    _ => (Vec::new(), Vec::new()),
                }
            }
        };
        fields.extend(meta_fields());
        if self.meta.has_headers() {
            fields.push(Field::new("_headers", headers_type(), true));
        }
        arrays.extend(self.meta.finish()?);
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

thread_local! {
    static IN_IPC_GUARD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside [`read_ipc`]'s `catch_unwind` around arrow-ipc. For a panic
/// hook that must tell a guarded panic (an `_error` row) from a bug: the fuzz target's.
/// arrow-ipc's schema conversion unwraps and panics on many malformed flatbuffers the verifier
/// accepts (a schema without `fields`, a list without children, an unknown decimal width, ...).
pub fn in_ipc_guard() -> bool {
    IN_IPC_GUARD.with(std::cell::Cell::get)
}

/// Decodes one IPC stream value into batches of the topic's schema (`want`, or else the value's
/// own, returned to fix the topic's). The framing is checked first ([`ipc_check`]); arrow-ipc
/// then runs behind `catch_unwind`, a belt-and-braces guard: a panic inside it on bytes the
/// check let through becomes this message's error instead of unwinding through the consumer.
pub fn read_ipc(
    payload: &[u8],
    want: Option<&SchemaRef>,
) -> std::result::Result<(Vec<RecordBatch>, SchemaRef), String> {
    ipc_check::check_stream(payload).map_err(|e| format!("corrupt Arrow IPC: {e}"))?;
    IN_IPC_GUARD.with(|g| g.set(true));
    let caught = catch_unwind(AssertUnwindSafe(|| read_checked(payload, want)));
    IN_IPC_GUARD.with(|g| g.set(false));
    let (batches, schema) = match caught {
        Ok(r) => r?,
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown");
            return Err(format!("corrupt Arrow IPC (the decoder panicked: {why})"));
        }
    };
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Err("the Arrow IPC stream holds no rows".to_string());
    }
    Ok((batches, schema))
}

fn read_checked(
    payload: &[u8],
    want: Option<&SchemaRef>,
) -> std::result::Result<(Vec<RecordBatch>, SchemaRef), String> {
    let probe = arrow_ipc::reader::StreamReader::try_new(Cursor::new(payload), None)
        .map_err(|e| format!("not an Arrow IPC stream: {e}"))?;
    let got = probe.schema();
    let want = want.cloned().unwrap_or_else(|| nullable(&got));
    // A wanted schema naming fewer columns than the message holds, all found by name, is a
    // projection: arrow-ipc then skips the other columns' buffers instead of decoding them.
    // Otherwise columns match by position, as they always have.
    let by_name: Option<Vec<usize>> = (want.fields().len() < got.fields().len())
        .then(|| want.fields().iter().map(|f| got.index_of(f.name()).ok()).collect::<Option<Vec<_>>>())
        .flatten();
    let reader = match &by_name {
        None => probe,
        Some(cols) => arrow_ipc::reader::StreamReader::try_new(Cursor::new(payload), Some(cols.clone()))
            .map_err(|e| format!("not an Arrow IPC stream: {e}"))?,
    };
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| format!("corrupt Arrow IPC: {e}"))?;
    let batches = batches
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
            let options = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
            RecordBatch::try_new_with_options(want.clone(), cols, &options).map_err(|e| e.to_string())
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((batches, want))
}

/// Decodes newline-separated JSON messages (`ranges`: each message's bytes in `buf`, `None` for
/// one already found not to be one object). The fast path decodes all at once; if any message is
/// bad, each is decoded on its own so only the bad ones become null rows with an error. Returns
/// one row and one error slot per range.
fn decode_json(
    schema: &SchemaRef,
    buf: &[u8],
    ranges: &[Option<(usize, usize)>],
) -> Result<(RecordBatch, Vec<Option<String>>)> {
    let good: Vec<(usize, usize)> = ranges.iter().flatten().copied().collect();
    let n = good.len();
    let mut errors = vec![None; ranges.len()];
    if n == 0 {
        return Ok((null_rows(schema, ranges.len())?, errors));
    }
    let decoded = match decode_all(schema, buf, n) {
        Ok(batch) if batch.num_rows() == n => batch,
        _ => {
            let mut parts = Vec::with_capacity(n);
            let mut slots = ranges.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| i);
            for &(start, end) in &good {
                let slot = slots.next();
                let one = buf.get(start..end).unwrap_or_default();
                let error = match decode_all(schema, one, 1) {
                    Ok(b) if b.num_rows() == 1 => {
                        parts.push(b);
                        continue;
                    }
                    Ok(b) => format!("expected one JSON object per message, found {}", b.num_rows()),
                    Err(e) => e,
                };
                parts.push(null_rows(schema, 1)?);
                if let Some(i) = slot {
                    errors[i] = Some(error);
                }
            }
            arrow_select::concat::concat_batches(schema, parts.iter()).map_err(crate::error::Error::from)?
        }
    };
    if n == ranges.len() {
        // Every message was one object: the rows are already one per message, in order (the take
        // below would copy every column for nothing).
        return Ok((decoded, errors));
    }
    // Spread the decoded rows over all messages: a null index is a null row (its value, 0, is
    // in bounds since n > 0).
    let mut next = 0u32;
    let indices: UInt32Array = ranges
        .iter()
        .map(|r| {
            r.map(|_| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let batch = arrow_select::take::take_record_batch(&decoded, &indices).map_err(crate::error::Error::from)?;
    Ok((batch, errors))
}

/// Decodes `bytes`, the JSON values of `rows` messages, into one batch of `schema`; errors as text.
pub fn decode_all(schema: &SchemaRef, bytes: &[u8], rows: usize) -> std::result::Result<RecordBatch, String> {
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
#[path = "hostile_tests.rs"]
mod hostile_tests;

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
            headers: None,
        }
    }

    #[test]
    fn bad_json_messages_become_error_rows_and_lose_nothing() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let mut b = MessageBatch::new(Format::Json, Some(schema), &SchemaOptions::default(), TsUnit::Micros).unwrap();
        for (i, p) in [&b"{\"a\":1}"[..], b"not json", b"{\"a\":3}", b"{\"a\":\"x\"}"].iter().enumerate() {
            b.push(&msg(i as i64, p)).unwrap();
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

    #[test]
    fn arrow_messages_project_a_narrower_schema_by_name() {
        use arrow_array::{Int64Array, StringArray, UInt8Array};
        let full = RecordBatch::try_from_iter(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2])) as arrow_array::ArrayRef),
            ("b", Arc::new(StringArray::from(vec!["x", "y"])) as _),
            ("c", Arc::new(UInt8Array::from(vec![6, 17])) as _),
        ])
        .unwrap();
        let mut payload = Vec::new();
        super::super::encode::ipc_message(&full, &mut payload).unwrap();
        // `c` then `a`: by name, in the wanted order, cast to the wanted types.
        let want =
            Arc::new(Schema::new(vec![Field::new("c", DataType::Int32, true), Field::new("a", DataType::Int64, true)]));
        let (batches, got) = read_ipc(&payload, Some(&want)).unwrap();
        assert_eq!(got, want);
        let c = batches[0].column(0).as_any().downcast_ref::<arrow_array::Int32Array>().unwrap();
        assert_eq!(c.values(), &[6, 17]);
        let a = batches[0].column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(a.values(), &[1, 2]);
        // A narrower schema naming a column the message lacks is still a mismatch, not nulls.
        let wrong = Arc::new(Schema::new(vec![Field::new("zz", DataType::Int64, true)]));
        assert!(read_ipc(&payload, Some(&wrong)).unwrap_err().contains("differs from the topic's"));
    }
}
