//! Rows to message values: the `json`, `csv` and `arrow` formats.
//!
//! `json` and `csv` make one message per row, so consumers in any language parse them without
//! pktstream; `arrow` packs many rows into one Arrow IPC stream per message, which is the fast
//! path between pktstream (or any Arrow reader) at both ends. Encoders work on whole record
//! batches at a time and append into a reused buffer, so producing allocates per batch, not per row.

use std::io::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_ipc::writer::StreamWriter;
use arrow_json::writer::{make_encoder, EncoderOptions};
use arrow_schema::DataType;

use super::error::{KafkaError, Result};
use super::text::{is_null, json_escape, Cell, Escape};

/// A message value format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per row; nulls are left out; timestamps are ISO-8601 strings.
    Json,
    /// One delimited line per row, no header.
    Csv,
    /// The captured frame bytes, keyed by timestamp (Apache Metron's layout).
    Raw,
    /// An Arrow IPC stream of many rows per message.
    Arrow,
    /// Consuming only: the value bytes undecoded (`value`), with the `raw` format's
    /// `link_type` and `wirelen` headers parsed (for archiving raw frames).
    Binary,
}

impl std::str::FromStr for Format {
    type Err = KafkaError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "raw" => Ok(Format::Raw),
            "arrow" => Ok(Format::Arrow),
            "binary" => Ok(Format::Binary),
            other => Err(KafkaError::invalid(format!(
                "format must be one of \"json\", \"csv\", \"raw\", \"arrow\" (or \"binary\" to consume undecoded \
                 values), not {other:?}"
            ))),
        }
    }
}

/// Timestamps as ISO-8601 with every digit the column has and an explicit UTC offset.
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f%:z";

/// What a [`JsonRows`] borrows: build it once per batch, then the row encoder from it.
pub struct JsonInput {
    batch: RecordBatch,
    /// `"name":` for every column, escaped.
    keys: Vec<Vec<u8>>,
    options: EncoderOptions,
}

impl JsonInput {
    /// Prepares `batch` for JSON: UTC time zones spelled `+00:00`, column keys escaped once.
    pub fn new(batch: &RecordBatch) -> Self {
        let batch = utc_as_offset(batch);
        let keys = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| {
                let mut k = vec![b'"'];
                json_escape(f.name().as_bytes(), &mut k);
                k.extend_from_slice(b"\":");
                k
            })
            .collect();
        let options = EncoderOptions::default()
            .with_timestamp_format(TS_FORMAT.replace("%:z", ""))
            .with_timestamp_tz_format(TS_FORMAT.to_string());
        Self { batch, keys, options }
    }

    /// The row encoder; fails when a column's type cannot be written as JSON.
    pub fn rows(&self) -> Result<JsonRows<'_>> {
        let fields = self.batch.schema_ref().fields();
        let columns = self
            .batch
            .columns()
            .iter()
            .zip(fields.iter())
            .map(|(array, field)| {
                let cell = Cell::new(array);
                let fallback = match cell {
                    Cell::Other => Some(
                        make_encoder(field, array.as_ref(), &self.options)
                            .map_err(|e| KafkaError::invalid(format!("cannot encode as JSON: {e}")))?,
                    ),
                    _ => None,
                };
                Ok((array, cell, fallback))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(JsonRows { input: self, columns })
    }
}

/// Appends row `i` of a batch as one JSON object; null fields are left out.
pub struct JsonRows<'a> {
    input: &'a JsonInput,
    columns: Vec<(&'a ArrayRef, Cell<'a>, Option<arrow_json::writer::NullableEncoder<'a>>)>,
}

impl JsonRows<'_> {
    /// Appends row `row` to `out` as one JSON object, without a line terminator.
    #[inline]
    pub fn encode(&mut self, row: usize, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for ((array, cell, fallback), key) in self.columns.iter_mut().zip(&self.input.keys) {
            if is_null(array, row) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(key);
            if let Some(f) = fallback {
                f.encode(row, out);
            } else if cell.is_text() {
                out.push(b'"');
                cell.write(row, out, Escape::Json);
                out.push(b'"');
            } else {
                cell.write(row, out, Escape::Json);
            }
        }
        out.push(b'}');
    }
}

/// Appends row `i` of a batch as one CSV line (RFC 4180 quoting, nulls empty, no terminator).
pub struct CsvRows<'a> {
    columns: Vec<(&'a ArrayRef, Cell<'a>, Option<ArrayFormatter<'a>>)>,
    delimiter: u8,
    scratch: Vec<u8>,
}

/// Formatting options for [`CsvRows`]' fallback formatters: nulls are empty fields.
pub fn csv_options() -> FormatOptions<'static> {
    FormatOptions::new()
        .with_null("")
        .with_timestamp_tz_format(Some(TS_FORMAT))
        .with_timestamp_format(Some("%Y-%m-%dT%H:%M:%S%.f"))
}

impl<'a> CsvRows<'a> {
    /// `batch` should have gone through [`utc_as_offset`].
    pub fn new(batch: &'a RecordBatch, options: &'a FormatOptions<'a>, delimiter: u8) -> Result<Self> {
        let columns = batch
            .columns()
            .iter()
            .map(|array| {
                let cell = Cell::new(array);
                let fallback = match cell {
                    Cell::Other => Some(
                        ArrayFormatter::try_new(array.as_ref(), options)
                            .map_err(|e| KafkaError::invalid(format!("cannot encode as CSV: {e}")))?,
                    ),
                    _ => None,
                };
                Ok((array, cell, fallback))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { columns, delimiter, scratch: Vec::with_capacity(64) })
    }

    /// Appends row `row` to `out` as one CSV line, without a line terminator.
    pub fn encode(&mut self, row: usize, out: &mut Vec<u8>) {
        for (i, (array, cell, fallback)) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            if is_null(array, row) {
                continue;
            }
            if !cell.is_text() && fallback.is_none() {
                cell.write(row, out, Escape::None);
                continue;
            }
            self.scratch.clear();
            match fallback {
                Some(f) => {
                    let _ = write!(self.scratch, "{}", f.value(row));
                }
                None => {
                    cell.write(row, &mut self.scratch, Escape::None);
                }
            }
            let d = self.delimiter;
            if self.scratch.iter().any(|&b| b == d || b == b'"' || b == b'\n' || b == b'\r') {
                out.push(b'"');
                for &b in &self.scratch {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(&self.scratch);
            }
        }
    }
}

/// The same batch with named UTC time zones (`"UTC"`, `"Etc/UTC"`) spelled `"+00:00"`: arrow's
/// formatters know fixed offsets without the time zone database. Only metadata changes.
pub fn utc_as_offset(batch: &RecordBatch) -> RecordBatch {
    let is_utc = |tz: &str| matches!(tz, "UTC" | "Etc/UTC" | "utc" | "Z" | "GMT");
    let needs = batch
        .schema_ref()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Timestamp(_, Some(tz)) if is_utc(tz)));
    if !needs {
        return batch.clone();
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in batch.schema_ref().fields().iter().zip(batch.columns()) {
        match f.data_type() {
            DataType::Timestamp(unit, Some(tz)) if is_utc(tz) => {
                let t = DataType::Timestamp(*unit, Some("+00:00".into()));
                // Between time zones of one unit, a cast only relabels the type.
                columns.push(arrow_cast::cast(c, &t).unwrap_or_else(|_| c.clone()));
                fields.push(Arc::new(f.as_ref().clone().with_data_type(t)));
            }
            _ => {
                fields.push(f.clone());
                columns.push(c.clone());
            }
        }
    }
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    RecordBatch::try_new(schema, columns).unwrap_or_else(|_| batch.clone())
}

/// One Arrow IPC stream (schema message, one batch, end marker) holding `batch`.
pub fn ipc_message(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
    let mut writer = StreamWriter::try_new(out, &batch.schema())
        .and_then(|mut w| w.write(batch).map(|_| w))
        .map_err(|e| KafkaError::invalid(format!("cannot encode as Arrow IPC: {e}")))?;
    writer.finish().map_err(|e| KafkaError::invalid(format!("cannot encode as Arrow IPC: {e}")))?;
    Ok(())
}

/// Column indices of `batch` for the requested names (all columns when `None`).
pub fn projection(batch_schema: &arrow_schema::Schema, columns: Option<&[String]>) -> Result<Vec<usize>> {
    match columns {
        None => Ok((0..batch_schema.fields().len()).collect()),
        Some(names) => names
            .iter()
            .map(|n| {
                batch_schema.index_of(n).map_err(|_| {
                    let known: Vec<&str> = batch_schema.fields().iter().map(|f| f.name().as_str()).collect();
                    KafkaError::invalid(format!("unknown column {n:?}; the data has: {}", known.join(", ")))
                })
            })
            .collect(),
    }
}

/// Checks a batch can be encoded as `format` before any message is sent.
pub fn check_encodable(batch: &RecordBatch, format: Format) -> Result<()> {
    match format {
        Format::Json => JsonInput::new(batch).rows().map(drop),
        Format::Csv => {
            let options = csv_options();
            CsvRows::new(&utc_as_offset(batch), &options, b',').map(drop)
        }
        Format::Arrow | Format::Raw | Format::Binary => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray, TimestampNanosecondArray, UInt16Array};
    use arrow_schema::{Field, Schema, TimeUnit};

    fn sample() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), true),
            Field::new("src_ip", DataType::Utf8, true),
            Field::new("dst_port", DataType::UInt16, true),
            Field::new("count", DataType::Int64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(
                    TimestampNanosecondArray::from(vec![Some(1_700_000_000_123_456_789), None]).with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec![Some("10.0.0.1"), Some("a,\"b\"")])),
                Arc::new(UInt16Array::from(vec![Some(443), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn json_rows_keep_full_precision_and_skip_nulls() {
        let b = sample();
        let input = JsonInput::new(&b);
        let mut rows = input.rows().unwrap();
        let mut out = Vec::new();
        rows.encode(0, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"ts":"2023-11-14T22:13:20.123456789+00:00","src_ip":"10.0.0.1","dst_port":443,"count":1}"#
        );
        out.clear();
        rows.encode(1, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"src_ip":"a,\"b\"","count":2}"#);
    }

    #[test]
    fn csv_rows_quote_and_leave_nulls_empty() {
        let b = utc_as_offset(&sample());
        let options = csv_options();
        let mut rows = CsvRows::new(&b, &options, b',').unwrap();
        let mut out = Vec::new();
        rows.encode(0, &mut out);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), "2023-11-14T22:13:20.123456789+00:00,10.0.0.1,443,1");
        out.clear();
        rows.encode(1, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), ",\"a,\"\"b\"\"\",,2");
    }

    #[test]
    fn ipc_messages_round_trip() {
        let b = sample();
        let mut out = Vec::new();
        ipc_message(&b.slice(1, 1), &mut out).unwrap();
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(out), None).unwrap();
        let batches: Vec<_> = reader.collect::<std::result::Result<_, _>>().unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0], b.slice(1, 1));
    }
}
