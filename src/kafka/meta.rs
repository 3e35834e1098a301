//! The per-row metadata columns of a consumed batch (`_topic` .. `_error`), grown fallibly.
//!
//! One message can become many rows (an `arrow` value), each repeating the message's topic,
//! partition, offset, timestamp and key: the row count comes from the message's content. So the
//! columns are plain vectors grown with `try_reserve` (running out of memory is
//! [`KafkaError::OutOfMemory`], a Python `MemoryError`, never an abort), with checked 32-bit
//! offsets (too many bytes for one batch is the same error, never a panic), and appends are
//! all-or-nothing: [`MetaColumns::reserve`] first, then [`MetaColumns::append`] cannot fail.

use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};

use super::error::{KafkaError, Result};
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
}

impl MetaColumns {
    pub fn len(&self) -> usize {
        self.offset.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offset.is_empty()
    }

    /// Roughly the bytes held.
    pub fn len_bytes(&self) -> usize {
        self.topic.len_bytes() + self.key.len_bytes() + self.offset.len() * 21 + self.errors.len() * 24
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
    }

    /// Sets row `row`'s error (found when the batch is decoded at the end).
    pub fn set_error(&mut self, row: usize, error: String) {
        if let Some(slot) = self.errors.get_mut(row) {
            *slot = Some(error);
        }
    }

    /// The six columns, in [`super::messages::meta_fields`] order; starts over.
    pub fn finish(&mut self) -> Result<Vec<ArrayRef>> {
        let valid = std::mem::take(&mut self.timestamp_valid);
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        let timestamp = TimestampMillisecondArray::new(ScalarBuffer::from(std::mem::take(&mut self.timestamp)), nulls)
            .with_timezone("UTC");
        let errors: StringArray = std::mem::take(&mut self.errors).into_iter().collect();
        Ok(vec![
            Arc::new(self.topic.finish_utf8()?),
            Arc::new(Int32Array::from(std::mem::take(&mut self.partition))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.offset))),
            Arc::new(timestamp),
            Arc::new(self.key.finish_binary()?),
            Arc::new(errors),
        ])
    }
}
