//! The per-row metadata columns of a consumed batch (`_topic` .. `_error`), grown fallibly.
//!
//! One message can become many rows (an `arrow` value), each repeating the message's topic,
//! partition, offset, timestamp and key: the row count comes from the message's content. So the
//! columns are plain vectors grown with `try_reserve` (running out of memory is
//! [`KafkaError::OutOfMemory`], a Python `MemoryError`, never an abort), with checked 32-bit
//! offsets (too many bytes for one batch is the same error, never a panic), and appends are
//! all-or-nothing: [`MetaColumns::reserve`] first, then [`MetaColumns::append`] cannot fail.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, Int32Array, Int64Array, ListArray, StringArray, StructArray, TimestampMillisecondArray,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Fields};

use super::error::{KafkaError, Result};
use super::headers::Header;
use super::messages::MessageRef;

/// Variable-length bytes per row: 32-bit offsets, a validity flag per row.
#[derive(Default)]
pub struct BinaryColumn {
    offsets: Vec<i32>,
    bytes: Vec<u8>,
    valid: Vec<bool>,
}

impl BinaryColumn {
    /// Makes room for `rows` copies of `value` (all-or-nothing).
    pub fn reserve(&mut self, value: Option<&[u8]>, rows: usize, what: &str) -> Result<()> {
        let add = value.map_or(0, <[u8]>::len).checked_mul(rows);
        let total = add.and_then(|a| a.checked_add(self.bytes.len())).filter(|&t| t <= i32::MAX as usize);
        let Some(total) = total else {
            return Err(KafkaError::OutOfMemory(format!(
                "{rows} rows of a {}-byte {what} exceed the 2 GiB a batch column holds",
                value.map_or(0, <[u8]>::len)
            )));
        };
        let oom = |_| KafkaError::OutOfMemory(format!("{rows} rows of {what}"));
        if self.offsets.is_empty() {
            self.offsets.try_reserve(1).map_err(oom)?;
            self.offsets.push(0);
        }
        self.offsets.try_reserve(rows).map_err(oom)?;
        self.valid.try_reserve(rows).map_err(oom)?;
        self.bytes.try_reserve(total - self.bytes.len()).map_err(oom)?;
        Ok(())
    }

    /// Appends `rows` copies of `value` after a successful [`BinaryColumn::reserve`].
    pub fn append(&mut self, value: Option<&[u8]>, rows: usize) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for _ in 0..rows {
            if let Some(v) = value {
                self.bytes.extend_from_slice(v);
            }
            // Within i32 by `reserve`'s check.
            self.offsets.push(i32::try_from(self.bytes.len()).unwrap_or(i32::MAX));
            self.valid.push(value.is_some());
        }
    }

    /// Bytes buffered: values, offsets and validity.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len() + self.offsets.len() * 4 + self.valid.len()
    }

    fn take(&mut self) -> (OffsetBuffer<i32>, Buffer, Option<NullBuffer>) {
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0);
        }
        let valid = std::mem::take(&mut self.valid);
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        (OffsetBuffer::new(ScalarBuffer::from(offsets)), Buffer::from_vec(std::mem::take(&mut self.bytes)), nulls)
    }

    /// The column as a binary array, emptying it.
    pub fn finish_binary(&mut self) -> Result<BinaryArray> {
        let (o, b, n) = self.take();
        Ok(BinaryArray::try_new(o, b, n).map_err(crate::error::Error::from)?)
    }

    /// The column as a string array (the values must have been UTF-8), emptying it.
    fn finish_utf8(&mut self) -> Result<StringArray> {
        let (o, b, n) = self.take();
        Ok(StringArray::try_new(o, b, n).map_err(crate::error::Error::from)?)
    }
}

/// `_topic`, `_partition`, `_offset`, `_timestamp`, `_key`, `_error` of the rows so far.
#[derive(Default)]
pub struct MetaColumns {
    topic: BinaryColumn,
    partition: Vec<i32>,
    offset: Vec<i64>,
    timestamp: Vec<i64>,
    timestamp_valid: Vec<bool>,
    key: BinaryColumn,
    errors: Vec<Option<String>>,
    /// `_headers`, when asked for.
    headers: Option<HeaderColumn>,
}

impl MetaColumns {
    /// Columns that also collect every header of each message (`_headers`).
    pub fn with_headers() -> Self {
        Self { headers: Some(HeaderColumn::default()), ..Self::default() }
    }

    /// Whether `_headers` is collected.
    pub fn has_headers(&self) -> bool {
        self.headers.is_some()
    }

    /// Rows added so far.
    pub fn len(&self) -> usize {
        self.offset.len()
    }

    /// Whether no row was added yet.
    pub fn is_empty(&self) -> bool {
        self.offset.is_empty()
    }

    /// Roughly the bytes held.
    pub fn len_bytes(&self) -> usize {
        let headers = self.headers.as_ref().map_or(0, HeaderColumn::len_bytes);
        self.topic.len_bytes() + self.key.len_bytes() + self.offset.len() * 21 + self.errors.len() * 24 + headers
    }

    /// Makes room for `rows` rows of message `m`; on `Err` nothing changed.
    pub fn reserve(&mut self, m: &MessageRef<'_>, rows: usize) -> Result<()> {
        let oom = |_| KafkaError::OutOfMemory(format!("{rows} rows of message metadata"));
        self.topic.reserve(Some(m.topic.as_bytes()), rows, "topic name")?;
        self.key.reserve(m.key, rows, "key")?;
        self.partition.try_reserve(rows).map_err(oom)?;
        self.offset.try_reserve(rows).map_err(oom)?;
        self.timestamp.try_reserve(rows).map_err(oom)?;
        self.timestamp_valid.try_reserve(rows).map_err(oom)?;
        self.errors.try_reserve(rows).map_err(oom)?;
        if let Some(h) = &mut self.headers {
            h.reserve(m.headers.unwrap_or_default(), rows)?;
        }
        Ok(())
    }

    /// Appends `rows` rows of message `m`, each with `error` (after [`MetaColumns::reserve`]).
    pub fn append(&mut self, m: &MessageRef<'_>, rows: usize, error: Option<String>) {
        self.topic.append(Some(m.topic.as_bytes()), rows);
        self.key.append(m.key, rows);
        self.partition.extend(std::iter::repeat_n(m.partition, rows));
        self.offset.extend(std::iter::repeat_n(m.offset, rows));
        self.timestamp.extend(std::iter::repeat_n(m.timestamp_ms.unwrap_or(0), rows));
        self.timestamp_valid.extend(std::iter::repeat_n(m.timestamp_ms.is_some(), rows));
        self.errors.extend(std::iter::repeat_n(error, rows));
        if let Some(h) = &mut self.headers {
            h.append(m.headers.unwrap_or_default(), rows);
        }
    }

    /// Sets row `row`'s error (found when the batch is decoded at the end).
    pub fn set_error(&mut self, row: usize, error: String) {
        if let Some(slot) = self.errors.get_mut(row) {
            *slot = Some(error);
        }
    }

    /// The six columns, in [`super::messages::meta_fields`] order, then `_headers` if collected;
    /// starts over.
    pub fn finish(&mut self) -> Result<Vec<ArrayRef>> {
        let valid = std::mem::take(&mut self.timestamp_valid);
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        let timestamp = TimestampMillisecondArray::new(ScalarBuffer::from(std::mem::take(&mut self.timestamp)), nulls)
            .with_timezone("UTC");
        let errors: StringArray = std::mem::take(&mut self.errors).into_iter().collect();
        let mut out: Vec<ArrayRef> = vec![
            Arc::new(self.topic.finish_utf8()?),
            Arc::new(Int32Array::from(std::mem::take(&mut self.partition))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.offset))),
            Arc::new(timestamp),
            Arc::new(self.key.finish_binary()?),
            Arc::new(errors),
        ];
        if let Some(h) = &mut self.headers {
            out.push(Arc::new(h.finish()?));
        }
        Ok(out)
    }
}

/// A header entry: `struct<key: utf8, value: binary>`.
fn entry_fields() -> Fields {
    Fields::from(vec![Field::new("key", DataType::Utf8, true), Field::new("value", DataType::Binary, true)])
}

fn item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(entry_fields()), true))
}

/// The `_headers` column's type: Spark's Kafka source's `headers`, `array<struct<key: string,
/// value: binary>>`.
pub fn headers_type() -> DataType {
    DataType::List(item_field())
}

/// `_headers`: every header of each row's message, in order, as a list of (key, value); null for
/// a message without headers (as Spark's Kafka source has it).
///
/// Keys are text in Kafka's Java client and in Spark (`String`), bytes on the wire. A key that is
/// not UTF-8 is decoded lossily, each invalid sequence becoming U+FFFD, which is what the Java
/// client (`new String(bytes, UTF_8)`) and so Spark's own Kafka source do; values stay bytes,
/// exactly. Lossy keys cost at most three bytes per byte received, so a batch's headers stay in
/// proportion to the messages read, and the consumer counts them in its batch byte limit.
#[derive(Default)]
pub struct HeaderColumn {
    /// Per row, the index of its first entry (and one past the last row).
    lists: Vec<i32>,
    valid: Vec<bool>,
    keys: Vec<u8>,
    key_offsets: Vec<i32>,
    values: Vec<u8>,
    value_offsets: Vec<i32>,
    value_valid: Vec<bool>,
}

/// (entries, key bytes once decoded, value bytes) of one message's headers.
fn header_sizes(headers: &[Header<'_>]) -> (usize, usize, usize) {
    let keys = headers.iter().map(|(k, _)| String::from_utf8_lossy(k).len()).sum();
    let values = headers.iter().map(|(_, v)| v.map_or(0, <[u8]>::len)).sum();
    (headers.len(), keys, values)
}

impl HeaderColumn {
    /// Roughly the bytes held.
    pub fn len_bytes(&self) -> usize {
        self.keys.len() + self.values.len() + (self.lists.len() + self.key_offsets.len()) * 4 + self.valid.len()
    }

    /// Bytes `headers` add per row (for the consumer's batch limit and the repeated-row bound).
    pub fn bytes_of(headers: &[Header<'_>]) -> usize {
        let (n, k, v) = header_sizes(headers);
        n.saturating_mul(9).saturating_add(k).saturating_add(v)
    }

    /// Makes room for `rows` rows of `headers` (all-or-nothing); more than a 32-bit-offset column
    /// holds is [`KafkaError::OutOfMemory`].
    pub fn reserve(&mut self, headers: &[Header<'_>], rows: usize) -> Result<()> {
        let (n, k, v) = header_sizes(headers);
        let fits = |per: usize, have: usize| {
            per.checked_mul(rows).and_then(|a| a.checked_add(have)).filter(|&t| t <= i32::MAX as usize)
        };
        let entries = fits(n, self.key_offsets.len());
        let (Some(entries), Some(key_total), Some(value_total)) =
            (entries, fits(k, self.keys.len()), fits(v, self.values.len()))
        else {
            return Err(KafkaError::OutOfMemory(format!(
                "{rows} rows of {n} headers ({k} key and {v} value bytes) exceed the 2 GiB a batch column holds"
            )));
        };
        let oom = |_| KafkaError::OutOfMemory(format!("{rows} rows of {n} headers"));
        self.lists.try_reserve(rows + 1).map_err(oom)?;
        self.valid.try_reserve(rows).map_err(oom)?;
        self.key_offsets.try_reserve(entries + 1 - self.key_offsets.len()).map_err(oom)?;
        self.value_offsets.try_reserve(entries + 1 - self.value_offsets.len()).map_err(oom)?;
        self.value_valid.try_reserve(entries - self.value_valid.len()).map_err(oom)?;
        self.keys.try_reserve(key_total - self.keys.len()).map_err(oom)?;
        self.values.try_reserve(value_total - self.values.len()).map_err(oom)?;
        Ok(())
    }

    /// Appends `rows` rows of `headers` after a successful [`HeaderColumn::reserve`].
    pub fn append(&mut self, headers: &[Header<'_>], rows: usize) {
        // Offsets within i32 by `reserve`'s check.
        let at = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        if self.lists.is_empty() {
            self.lists.push(0);
            self.key_offsets.push(0);
            self.value_offsets.push(0);
        }
        for _ in 0..rows {
            for (k, v) in headers {
                self.keys.extend_from_slice(String::from_utf8_lossy(k).as_bytes());
                self.key_offsets.push(at(self.keys.len()));
                if let Some(v) = v {
                    self.values.extend_from_slice(v);
                }
                self.value_offsets.push(at(self.values.len()));
                self.value_valid.push(v.is_some());
            }
            self.lists.push(at(self.value_valid.len()));
            self.valid.push(!headers.is_empty());
        }
    }

    /// The column, emptying it.
    pub fn finish(&mut self) -> Result<ListArray> {
        let take_offsets = |v: &mut Vec<i32>| {
            let mut o = std::mem::take(v);
            if o.is_empty() {
                o.push(0);
            }
            OffsetBuffer::new(ScalarBuffer::from(o))
        };
        let lists = take_offsets(&mut self.lists);
        let key_offsets = take_offsets(&mut self.key_offsets);
        let value_offsets = take_offsets(&mut self.value_offsets);
        let value_valid = std::mem::take(&mut self.value_valid);
        let value_nulls = value_valid.iter().any(|v| !v).then(|| NullBuffer::from(value_valid));
        let valid = std::mem::take(&mut self.valid);
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        let err = |e| KafkaError::Core(crate::error::Error::from(e));
        // Keys were appended as `from_utf8_lossy` output: valid UTF-8 (checked again here).
        let keys =
            StringArray::try_new(key_offsets, Buffer::from_vec(std::mem::take(&mut self.keys)), None).map_err(err)?;
        let values =
            BinaryArray::try_new(value_offsets, Buffer::from_vec(std::mem::take(&mut self.values)), value_nulls)
                .map_err(err)?;
        let entries =
            StructArray::try_new(entry_fields(), vec![Arc::new(keys), Arc::new(values)], None).map_err(err)?;
        ListArray::try_new(item_field(), lists, Arc::new(entries), nulls).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::Array;

    #[test]
    fn headers_keep_order_values_and_lossy_keys() {
        let mut c = HeaderColumn::default();
        let first: Vec<Header<'_>> = vec![(b"a", Some(b"1")), (b"\xff\xfek", Some(b"\x00\xff")), (b"n", None)];
        c.reserve(&first, 1).unwrap();
        c.append(&first, 1);
        c.reserve(&[], 1).unwrap();
        c.append(&[], 1);
        let second: Vec<Header<'_>> = vec![(b"a", Some(b""))];
        c.reserve(&second, 2).unwrap();
        c.append(&second, 2);
        let list = c.finish().unwrap();
        assert_eq!(list.len(), 4);
        assert!(list.is_valid(0) && list.is_null(1) && list.is_valid(2) && list.is_valid(3));
        let row0 = list.value(0);
        let row0 = row0.as_struct();
        let keys: Vec<_> = row0.column(0).as_string::<i32>().iter().collect();
        assert_eq!(keys, vec![Some("a"), Some("\u{fffd}\u{fffd}k"), Some("n")]);
        let values = row0.column(1).as_binary::<i32>();
        assert_eq!(values.value(1), b"\x00\xff");
        assert!(values.is_null(2));
        assert_eq!(list.value(3).as_struct().column(1).as_binary::<i32>().value(0), b"");
        assert_eq!(list.data_type(), &headers_type());
        // Emptied: the next batch starts over.
        assert_eq!(c.finish().unwrap().len(), 0);
    }

    #[test]
    fn headers_past_a_column_are_out_of_memory_not_a_panic() {
        let big = vec![0u8; 1 << 20];
        let h: Vec<Header<'_>> = vec![(b"k", Some(&big))];
        let mut c = HeaderColumn::default();
        let err = c.reserve(&h, 4096).unwrap_err();
        assert!(matches!(err, KafkaError::OutOfMemory(_)), "{err}");
        assert_eq!(c.finish().unwrap().len(), 0);
    }
}
