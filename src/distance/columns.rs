//! The output's id and key columns: ids written by the kernel or gathered, keys repeated.
//!
//! Ids of the common primitive types are written by the all-pairs kernel straight into the
//! Arrow buffers that the batches share (see `words.rs`), which saves a gather over the whole
//! output; every other id type (strings, dictionaries, ids with nulls...) gets row numbers there
//! and goes through Arrow's `take`, which keeps its type. A group has one key, so the key column
//! is runs of one value: strings (the usual key, an IP address) are written as repeated copies,
//! other types through `take`.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array, StringArray, UInt32Array, UInt64Array};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;

use super::pairs::{IdOut, IdVals, Pairs};
use super::pdist::advise_huge;
use super::stream::PairsInput;
use super::{try_with_capacity, Result, Zeroable};

/// An id column's value type: 8 bytes ([`IdOut::Wide`]) or 4 ([`IdOut::Narrow`]).
pub(super) trait IdWidth: Zeroable + Send + Sync {
    fn out<'a>(one: &'a mut [Self], two: &'a mut [Self]) -> IdOut<'a>;
}

impl IdWidth for u64 {
    fn out<'a>(one: &'a mut [u64], two: &'a mut [u64]) -> IdOut<'a> {
        IdOut::Wide(one, two)
    }
}

impl IdWidth for u32 {
    fn out<'a>(one: &'a mut [u32], two: &'a mut [u32]) -> IdOut<'a> {
        IdOut::Narrow(one, two)
    }
}

/// One group's pairs as columns: the two ids (or, for [`IdMode::Take`], row numbers) and the
/// distances.
pub(super) struct Cols {
    pub(super) one: ArrayRef,
    pub(super) two: ArrayRef,
    pub(super) dist: ArrayRef,
}

/// How the id columns are made: primitive ids without nulls are written directly by the kernel
/// (values gathered per group position); any other type goes through row numbers and Arrow's
/// `take`, which keeps the type (strings, dictionaries, nulls...).
#[derive(Debug, Clone, Copy)]
pub(super) enum IdMode {
    I64,
    U64,
    I32,
    U32,
    Take,
}

impl IdMode {
    pub(super) fn of(id: &ArrayRef) -> Self {
        if id.null_count() > 0 {
            return IdMode::Take;
        }
        match id.data_type() {
            DataType::Int64 => IdMode::I64,
            DataType::UInt64 => IdMode::U64,
            DataType::Int32 => IdMode::I32,
            DataType::UInt32 => IdMode::U32,
            _ => IdMode::Take,
        }
    }

    /// The value written for each position of a group with these rows.
    pub(super) fn vals(self, input: &PairsInput, rows: &[u32]) -> IdVals {
        let id = &input.id;
        match self {
            IdMode::I64 => {
                let v = id.as_primitive::<Int64Type>().values();
                IdVals::Wide(rows.iter().map(|&r| v[r as usize] as u64).collect())
            }
            IdMode::U64 => {
                let v = id.as_primitive::<UInt64Type>().values();
                IdVals::Wide(rows.iter().map(|&r| v[r as usize]).collect())
            }
            IdMode::I32 => {
                let v = id.as_primitive::<Int32Type>().values();
                IdVals::Narrow(rows.iter().map(|&r| v[r as usize] as u32).collect())
            }
            IdMode::U32 => {
                let v = id.as_primitive::<UInt32Type>().values();
                IdVals::Narrow(rows.iter().map(|&r| v[r as usize]).collect())
            }
            IdMode::Take => IdVals::Narrow(rows.to_vec()),
        }
    }

    /// Columns over the buffers of `pairs::all_sorted_buffers`.
    pub(super) fn arrays(self, one: Buffer, two: Buffer, dist: Buffer) -> Cols {
        let len = dist.len() / 8;
        let ids = |b: Buffer| -> ArrayRef {
            match self {
                IdMode::I64 => Arc::new(Int64Array::new(ScalarBuffer::new(b, 0, len), None)),
                IdMode::U64 => Arc::new(UInt64Array::new(ScalarBuffer::new(b, 0, len), None)),
                IdMode::I32 => Arc::new(Int32Array::new(ScalarBuffer::new(b, 0, len), None)),
                IdMode::U32 | IdMode::Take => Arc::new(UInt32Array::new(ScalarBuffer::new(b, 0, len), None)),
            }
        };
        Cols { one: ids(one), two: ids(two), dist: Arc::new(Float64Array::new(ScalarBuffer::new(dist, 0, len), None)) }
    }

    /// Columns of `pairs::group_pairs`' pairs (row numbers): gathered now unless `Take` does it later.
    pub(super) fn cols(self, input: &PairsInput, p: Pairs) -> Result<Cols> {
        let (a, b): (ArrayRef, ArrayRef) = (Arc::new(UInt32Array::from(p.a)), Arc::new(UInt32Array::from(p.b)));
        let dist: ArrayRef = Arc::new(Float64Array::from(p.dist));
        if matches!(self, IdMode::Take) {
            return Ok(Cols { one: a, two: b, dist });
        }
        let take = |idx: &ArrayRef| arrow_select::take::take(input.id.as_ref(), idx.as_primitive::<UInt32Type>(), None);
        Ok(Cols { one: take(&a)?, two: take(&b)?, dist })
    }
}

/// `values[row]` repeated `n` times for each `(row, n)` of `runs`, concatenated. Strings (the
/// usual key, an IP address) are written directly, a few bytes per row, into memory advised as
/// huge pages (it is as large as the id columns); other types go through `take`.
pub(super) fn repeat_runs(values: &ArrayRef, runs: &[(u32, usize)]) -> Result<ArrayRef> {
    if let Some(s) = values.as_string_opt::<i32>() {
        let bytes: usize = runs.iter().map(|&(r, n)| s.value(r as usize).len() * n).sum();
        if bytes <= i32::MAX as usize && runs.iter().all(|&(r, _)| s.is_valid(r as usize)) {
            let rows: usize = runs.iter().map(|&(_, n)| n).sum();
            let mut offsets: Vec<i32> = try_with_capacity(rows + 1, || format!("the offsets of {rows} keys"))?;
            let mut data: Vec<u8> = try_with_capacity(bytes, || format!("{bytes} bytes of keys"))?;
            advise_huge(offsets.as_ptr(), offsets.capacity());
            advise_huge(data.as_ptr(), data.capacity());
            offsets.push(0i32);
            for &(r, n) in runs {
                let v = s.value(r as usize).as_bytes();
                let base = data.len();
                // Offsets fit in i32: the total is at most i32::MAX bytes (checked above).
                offsets.extend((1..=n).map(|t| (base + t * v.len()) as i32));
                if !v.is_empty() && n > 0 {
                    // One copy, then doubling copies of what is written.
                    data.extend_from_slice(v);
                    let total = n * v.len();
                    while data.len() - base < total {
                        let have = data.len() - base;
                        data.extend_from_within(base..base + have.min(total - have));
                    }
                }
            }
            // SAFETY: the offsets start at 0, are non-negative and monotone and end at
            // `data.len()` (at most i32::MAX bytes), and they cut `data` exactly into whole
            // copies of valid UTF-8 strings, so both are valid without re-checking every key.
            return Ok(Arc::new(unsafe {
                let offsets = OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets));
                StringArray::new_unchecked(offsets, Buffer::from_vec(data), None)
            }));
        }
    }
    let idx: UInt32Array = runs.iter().flat_map(|&(r, n)| std::iter::repeat_n(r, n)).collect::<Vec<u32>>().into();
    Ok(arrow_select::take::take(values.as_ref(), &idx, None)?)
}
