//! Column accumulators: plain vectors filled 64 rows at a time and moved into Arrow arrays once
//! per batch.
//!
//! Why not arrow's builders: their `append_value`/`append_null` are out-of-line calls that check
//! capacity and grow a values buffer and a null bitmap one row at a time, which made them the
//! largest cost of a packet. Here row `i` of the current 64-row chunk is a store into a fixed-size
//! array (no capacity check, no length update) plus one bit OR-ed into a `u64` of validity. Every
//! column of a batch has the same number of rows, so the caller computes `i = row % 64` once per
//! packet and flushes all columns together every 64 rows (one `memcpy` and one word per column).
//! At the end of a batch the vectors become Arrow buffers without a copy (and come back for a
//! later batch once the caller drops them, see [`pool`](super::pool)). The arrays are built with
//! arrow's validating constructors, except where the checks cost more than the rest of the work
//! and a local invariant makes them redundant (offsets, `Utf8`: see [`Bytes::take`] and [`Text`]).
//! Values under null slots are zero (or empty), as with the builders.

use std::panic::RefUnwindSafe;
use std::sync::Arc;

use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{ArrayRef, BinaryArray, BooleanArray, FixedSizeBinaryArray, PrimitiveArray, StringArray};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::ArrowError;

use super::format::Words;
use super::pool::Pool;

/// Rows per chunk: one validity word.
pub(crate) const CHUNK: usize = 64;

/// What every column accumulator does besides appending.
pub(crate) trait Accumulate {
    /// Moves a full chunk (all [`CHUNK`] slots written) into the vectors.
    fn flush(&mut self);
    /// Moves the first `partial` slots of the chunk into the vectors, returns every row
    /// accumulated since the last finish as an array, and starts over empty.
    fn finish(&mut self, partial: usize) -> Result<ArrayRef, ArrowError>;
}

/// Appends one row's value into slot `i` (`< CHUNK`) of the current chunk.
pub(crate) trait Put<V> {
    fn put(&mut self, i: usize, value: V);
}

/// A column of bits packed LSB-first, as Arrow lays out validity and boolean values.
pub(crate) struct Bits {
    words: Vec<u64>,
    current: u64,
    rows: usize,
    pool: Pool<u64>,
}

impl Bits {
    fn new(capacity: usize) -> Self {
        Self { words: Vec::new(), current: 0, rows: 0, pool: Pool::new(capacity.div_ceil(CHUNK)) }
    }

    #[inline]
    fn set(&mut self, i: usize, bit: bool) {
        self.current |= u64::from(bit) << (i % CHUNK);
    }

    #[inline]
    fn flush(&mut self, rows: usize) {
        self.pool.reserve(&mut self.words);
        // Little-endian words are LSB-first bytes, Arrow's bit order, on any host.
        self.words.push(self.current.to_le());
        self.current = 0;
        self.rows += rows;
    }

    fn finish(&mut self, partial: usize) -> BooleanBuffer {
        if partial > 0 {
            self.flush(partial);
        }
        let rows = std::mem::take(&mut self.rows);
        BooleanBuffer::new(self.pool.take(&mut self.words), 0, rows)
    }

    /// As a validity bitmap: `None` when every row is valid, as arrow's builders do.
    fn finish_nulls(&mut self, partial: usize) -> Option<NullBuffer> {
        Some(NullBuffer::new(self.finish(partial))).filter(|n| n.null_count() > 0)
    }
}

/// A primitive column (integers and timestamps).
pub(crate) struct Prim<A: ArrowPrimitiveType> {
    values: Vec<A::Native>,
    chunk: [A::Native; CHUNK],
    valid: Bits,
    pool: Pool<A::Native>,
}

impl<A: ArrowPrimitiveType> Prim<A>
where
    A::Native: RefUnwindSafe,
{
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            values: Vec::new(),
            chunk: [A::Native::default(); CHUNK],
            valid: Bits::new(capacity),
            pool: Pool::new(capacity),
        }
    }

    pub(crate) fn finish_array(&mut self, partial: usize) -> PrimitiveArray<A> {
        self.values.extend_from_slice(&self.chunk[..partial]);
        let len = self.values.len();
        let values = ScalarBuffer::new(self.pool.take(&mut self.values), 0, len);
        PrimitiveArray::new(values, self.valid.finish_nulls(partial))
    }
}

impl<A: ArrowPrimitiveType> Put<Option<A::Native>> for Prim<A> {
    #[inline]
    fn put(&mut self, i: usize, value: Option<A::Native>) {
        self.chunk[i % CHUNK] = value.unwrap_or_default();
        self.valid.set(i, value.is_some());
    }
}

impl<A: ArrowPrimitiveType> Accumulate for Prim<A>
where
    A::Native: RefUnwindSafe,
{
    #[inline]
    fn flush(&mut self) {
        self.pool.reserve(&mut self.values);
        self.values.extend_from_slice(&self.chunk);
        self.valid.flush(CHUNK);
    }

    fn finish(&mut self, partial: usize) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(self.finish_array(partial)))
    }
}

/// A boolean column.
pub(crate) struct Bools {
    values: Bits,
    valid: Bits,
}

impl Bools {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { values: Bits::new(capacity), valid: Bits::new(capacity) }
    }
}

impl Put<Option<bool>> for Bools {
    #[inline]
    fn put(&mut self, i: usize, value: Option<bool>) {
        self.values.set(i, value == Some(true));
        self.valid.set(i, value.is_some());
    }
}

impl Accumulate for Bools {
    #[inline]
    fn flush(&mut self) {
        self.values.flush(CHUNK);
        self.valid.flush(CHUNK);
    }

    fn finish(&mut self, partial: usize) -> Result<ArrayRef, ArrowError> {
        let values = self.values.finish(partial);
        Ok(Arc::new(BooleanArray::new(values, self.valid.finish_nulls(partial))))
    }
}

/// A variable-length `Binary` column (and the storage of [`Text`]): value bytes back to back,
/// and end offsets.
pub(crate) struct Bytes {
    data: Vec<u8>,
    /// Offsets of the finished chunks (starting with 0).
    offsets: Vec<i32>,
    /// End offset of each row of the current chunk (may wrap past `i32::MAX`: `finish` checks).
    ends: [i32; CHUNK],
    valid: Bits,
    data_pool: Pool<u8>,
    offsets_pool: Pool<i32>,
}

impl Bytes {
    /// `bytes_per_row` estimates the room a batch needs (more is allocated as needed).
    pub(crate) fn new(capacity: usize, bytes_per_row: usize) -> Self {
        Self {
            data: Vec::new(),
            offsets: vec![0],
            ends: [0; CHUNK],
            valid: Bits::new(capacity),
            data_pool: Pool::new(capacity * bytes_per_row),
            offsets_pool: Pool::new(capacity + 1),
        }
    }

    #[inline]
    fn end(&mut self, i: usize, valid: bool) {
        // Truncation is caught in `finish`: offsets only grow, so if the final length fits, all do.
        self.ends[i % CHUNK] = self.data.len() as i32;
        self.valid.set(i, valid);
    }

    #[inline]
    pub(crate) fn push(&mut self, i: usize, value: &[u8]) {
        self.data.extend_from_slice(value);
        self.end(i, true);
    }

    #[inline]
    pub(crate) fn null(&mut self, i: usize) {
        self.end(i, false);
    }

    /// The batch's offsets (monotonic, from 0 to the data length), data and validity.
    fn take(&mut self, partial: usize) -> Result<(OffsetBuffer<i32>, Buffer, Option<NullBuffer>), ArrowError> {
        self.offsets.extend_from_slice(&self.ends[..partial]);
        let nulls = self.valid.finish_nulls(partial);
        let error = if i32::try_from(self.data.len()).is_err() {
            Some(ArrowError::OffsetOverflowError(self.data.len()))
        } else if !monotonic(&self.offsets) {
            Some(ArrowError::InvalidArgumentError("column offsets are not monotonic".into()))
        } else {
            None
        };
        if let Some(e) = error {
            self.data.clear();
            self.offsets.truncate(1);
            return Err(e);
        }
        let rows = self.offsets.len();
        let offsets = self.offsets_pool.take(&mut self.offsets);
        self.offsets.push(0);
        // SAFETY: non-empty (it starts with 0), non-negative and non-decreasing, as just checked.
        let offsets = unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::new(offsets, 0, rows)) };
        Ok((offsets, self.data_pool.take(&mut self.data), nulls))
    }
}

impl Put<&[u8]> for Bytes {
    #[inline]
    fn put(&mut self, i: usize, value: &[u8]) {
        self.push(i, value)
    }
}

/// What `OffsetBuffer::new` checks (non-empty, non-negative, non-decreasing), as a branch-free
/// fold that vectorizes: arrow's early-exit loop cost ~8 instructions per row and column.
fn monotonic(offsets: &[i32]) -> bool {
    let Some((&first, rest)) = offsets.split_first() else {
        return false;
    };
    first >= 0 && offsets.iter().zip(rest).fold(true, |ok, (a, b)| ok & (a <= b))
}

impl Accumulate for Bytes {
    #[inline]
    fn flush(&mut self) {
        // The data grows value by value; this makes room for the rest of the batch at once.
        self.data_pool.reserve(&mut self.data);
        self.offsets_pool.reserve(&mut self.offsets);
        self.offsets.extend_from_slice(&self.ends);
        self.valid.flush(CHUNK);
    }

    fn finish(&mut self, partial: usize) -> Result<ArrayRef, ArrowError> {
        let (offsets, data, nulls) = self.take(partial)?;
        Ok(Arc::new(BinaryArray::try_new(offsets, data, nulls)?))
    }
}

/// A `Utf8` column. It only accepts whole `&str` values and ASCII (checked before anything is
/// written), so its bytes are valid UTF-8 with every offset on a character boundary by
/// construction, and `finish` need not re-validate them (arrow's check cost ~10% of a packet;
/// debug builds still run it).
pub(crate) struct Text(Bytes);

impl Text {
    pub(crate) fn new(capacity: usize, bytes_per_row: usize) -> Self {
        Self(Bytes::new(capacity, bytes_per_row))
    }

    #[inline]
    pub(crate) fn push_str(&mut self, i: usize, value: &str) {
        self.0.push(i, value.as_bytes());
    }

    /// Appends the first `len` bytes of `words` (little-endian): text assembled in registers,
    /// stored straight into the column. All of every word must be ASCII (checked on the
    /// registers: the unchecked array relies on it).
    #[inline(always)]
    pub(crate) fn push_fixed<const K: usize>(&mut self, i: usize, words: [u64; K], len: usize) {
        assert!(
            words.iter().fold(0, |acc, w| acc | w) & 0x8080_8080_8080_8080 == 0,
            "non-ASCII bytes in a text column"
        );
        let data = &mut self.0.data;
        let start = data.len();
        data.resize(start + 8 * K, 0);
        for (chunk, word) in data[start..].chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        data.truncate(start + len);
        self.0.end(i, true);
    }

    /// Appends the text made of `words` (each word's first `len` bytes, back to back) minus its
    /// last `trim` bytes. Each word is stored whole at the current end, which then moves on by its
    /// `len`: the text is assembled in place, straight from registers. All of every word must be
    /// ASCII (checked on the registers: the unchecked array relies on it).
    #[inline(always)]
    pub(crate) fn push_words<const K: usize>(&mut self, i: usize, words: Words<K>, trim: usize) {
        assert!(
            words.iter().fold(0, |acc, (w, _)| acc | w) & 0x8080_8080_8080_8080 == 0,
            "non-ASCII bytes in a text column"
        );
        let data = &mut self.0.data;
        let start = data.len();
        // Room for every word stored whole at the furthest it can start (each `len` is <= 8).
        data.resize(start + 8 * K, 0);
        // A plain slice, so the stores need not reload the vector's pointer and length.
        let text = &mut data[start..];
        let mut n = 0;
        for (word, len) in words {
            text[n..n + 8].copy_from_slice(&word.to_le_bytes());
            n += len.min(8);
        }
        data.truncate(start + n.saturating_sub(trim));
        self.0.end(i, true);
    }

    #[inline]
    pub(crate) fn null(&mut self, i: usize) {
        self.0.null(i);
    }
}

impl<'a> Put<Option<&'a str>> for Text {
    #[inline]
    fn put(&mut self, i: usize, value: Option<&'a str>) {
        match value {
            Some(s) => self.push_str(i, s),
            None => self.null(i),
        }
    }
}

/// Text as words and a length (see [`Text::push_fixed`]).
impl<const K: usize> Put<Option<([u64; K], usize)>> for Text {
    #[inline]
    fn put(&mut self, i: usize, value: Option<([u64; K], usize)>) {
        match value {
            Some((words, len)) => self.push_fixed(i, words, len),
            None => self.null(i),
        }
    }
}

impl Accumulate for Text {
    #[inline]
    fn flush(&mut self) {
        self.0.flush();
    }

    fn finish(&mut self, partial: usize) -> Result<ArrayRef, ArrowError> {
        let (offsets, data, nulls) = self.0.take(partial)?;
        if cfg!(debug_assertions) {
            return Ok(Arc::new(StringArray::try_new(offsets, data, nulls)?));
        }
        // SAFETY: `try_new` would accept these parts. The offsets are monotonic from 0 (checked in
        // `Bytes::take`) and each is the data length at the end of a value (`Bytes::end`;
        // data only grows, and the pushes cut back no further than the value's own start), so the
        // last equals `data.len()` and every pair is a valid slice. The data is the values back
        // to back, and `Text` appends only whole `&str`s (valid UTF-8) and bytes checked to be
        // ASCII in `push_fixed` and `push_words`: a concatenation of valid UTF-8 strings is valid
        // UTF-8, and each offset falls where one value ends and the next begins, on a character
        // boundary. The null buffer has one bit per row, like the offsets (`Bits` and `ends`
        // count the same slots).
        Ok(Arc::new(unsafe { StringArray::new_unchecked(offsets, data, nulls) }))
    }
}

/// A `FixedSizeBinary(N)` column.
pub(crate) struct Fixed<const N: usize> {
    data: Vec<u8>,
    chunk: [[u8; N]; CHUNK],
    valid: Bits,
    pool: Pool<u8>,
}

impl<const N: usize> Fixed<N> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { data: Vec::new(), chunk: [[0; N]; CHUNK], valid: Bits::new(capacity), pool: Pool::new(capacity * N) }
    }
}

impl<const N: usize> Put<Option<[u8; N]>> for Fixed<N> {
    #[inline]
    fn put(&mut self, i: usize, value: Option<[u8; N]>) {
        self.chunk[i % CHUNK] = value.unwrap_or([0; N]);
        self.valid.set(i, value.is_some());
    }
}

impl<const N: usize> Accumulate for Fixed<N> {
    #[inline]
    fn flush(&mut self) {
        self.pool.reserve(&mut self.data);
        self.data.extend_from_slice(self.chunk.as_flattened());
        self.valid.flush(CHUNK);
    }

    fn finish(&mut self, partial: usize) -> Result<ArrayRef, ArrowError> {
        self.data.extend_from_slice(self.chunk[..partial].as_flattened());
        let nulls = self.valid.finish_nulls(partial);
        let rows = self.data.len() / N;
        let data = self.pool.take(&mut self.data);
        let width = i32::try_from(N).map_err(|_| ArrowError::OffsetOverflowError(N))?;
        Ok(Arc::new(FixedSizeBinaryArray::try_new_with_len(width, data, nulls, rows)?))
    }
}
