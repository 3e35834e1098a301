//! Ordering Arrow keys and ids: which rows share a key, and the tie-break order of ids.
//!
//! Grouping needs equal keys to be recognised whatever their type (IP strings, integers, ...), and
//! the pair order needs ids to be comparable, in batches that arrive separately (windows), so both
//! are ranked here on the Arrow arrays themselves rather than by the caller. Values are normalised
//! once by casting to `Int64`, `UInt64`, `Float64`, `Utf8` or `Binary` (dictionaries are unpacked;
//! other types go through their string form). Nulls sort after every value and are equal to each
//! other, so null keys form one group, placed last.

use std::cmp::Ordering;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use super::{DistanceError, Result};

/// A column normalised to one comparable physical type.
enum Values {
    Int(ArrayRef),
    UInt(ArrayRef),
    Float(ArrayRef),
    Utf8(ArrayRef),
    Binary(ArrayRef),
}

impl Values {
    fn new(array: &dyn Array) -> Result<Self> {
        use DataType::*;
        let cast = |to: &DataType| {
            arrow_cast::cast(array, to).map_err(|e| {
                DistanceError::InvalidArgument(format!("cannot order a column of type {}: {e}", array.data_type()))
            })
        };
        Ok(match array.data_type() {
            Dictionary(_, value) => return Values::new(cast(value)?.as_ref()),
            Int8 | Int16 | Int32 | Int64 | Boolean | Null | Timestamp(..) | Duration(..) => Values::Int(cast(&Int64)?),
            UInt8 | UInt16 | UInt32 | UInt64 => Values::UInt(cast(&UInt64)?),
            Float16 | Float32 | Float64 => Values::Float(cast(&Float64)?),
            Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => Values::Binary(cast(&Binary)?),
            _ => Values::Utf8(cast(&Utf8)?),
        })
    }

    fn array(&self) -> &ArrayRef {
        match self {
            Values::Int(a) | Values::UInt(a) | Values::Float(a) | Values::Utf8(a) | Values::Binary(a) => a,
        }
    }

    /// Compares rows `i` and `j`, nulls last.
    fn cmp(&self, i: usize, j: usize) -> Ordering {
        let a = self.array();
        match (a.is_null(i), a.is_null(j)) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        match self {
            Values::Int(a) => a.as_primitive::<Int64Type>().value(i).cmp(&a.as_primitive::<Int64Type>().value(j)),
            Values::UInt(a) => a.as_primitive::<UInt64Type>().value(i).cmp(&a.as_primitive::<UInt64Type>().value(j)),
            Values::Float(a) => {
                a.as_primitive::<Float64Type>().value(i).total_cmp(&a.as_primitive::<Float64Type>().value(j))
            }
            Values::Utf8(a) => a.as_string::<i32>().value(i).cmp(a.as_string::<i32>().value(j)),
            Values::Binary(a) => a.as_binary::<i32>().value(i).cmp(a.as_binary::<i32>().value(j)),
        }
    }

    /// Row numbers in value order, ties by row number.
    fn sorted(&self) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..self.array().len() as u32).collect();
        idx.sort_by(|&i, &j| self.cmp(i as usize, j as usize));
        idx
    }
}

fn check_len(array: &dyn Array) -> Result<()> {
    if array.len() > u32::MAX as usize {
        return Err(DistanceError::InvalidArgument(format!("{} rows: at most 2^32 - 1 per call", array.len())));
    }
    Ok(())
}

/// Each row's position when the column is sorted (ties by row number): a permutation of `0..n`.
pub fn ordinal_rank(array: &dyn Array) -> Result<Vec<u32>> {
    check_len(array)?;
    let sorted = Values::new(array)?.sorted();
    let mut rank = vec![0u32; sorted.len()];
    for (p, &row) in sorted.iter().enumerate() {
        rank[row as usize] = p as u32;
    }
    Ok(rank)
}

/// Each row's group number, `0..groups` in value order (equal values share one), and `groups`.
pub fn dense_rank(array: &dyn Array) -> Result<(Vec<u32>, usize)> {
    check_len(array)?;
    let values = Values::new(array)?;
    let sorted = values.sorted();
    let mut rank = vec![0u32; sorted.len()];
    let mut group = 0u32;
    for (p, &row) in sorted.iter().enumerate() {
        if p > 0 && values.cmp(sorted[p - 1] as usize, row as usize) != Ordering::Equal {
            group += 1;
        }
        rank[row as usize] = group;
    }
    Ok((rank, if sorted.is_empty() { 0 } else { group as usize + 1 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{types::Int8Type, DictionaryArray, Int32Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn strings_ints_dictionaries_and_nulls() {
        let s = StringArray::from(vec![Some("b"), None, Some("a"), Some("b")]);
        assert_eq!(dense_rank(&s).unwrap(), (vec![1, 2, 0, 1], 3));
        assert_eq!(ordinal_rank(&s).unwrap(), vec![1, 3, 0, 2]);
        let i = Int32Array::from(vec![5, -1, 5, 0]);
        assert_eq!(dense_rank(&i).unwrap(), (vec![2, 0, 2, 1], 3));
        let d: DictionaryArray<Int8Type> = vec!["x", "w", "x"].into_iter().collect();
        assert_eq!(dense_rank(&d).unwrap(), (vec![1, 0, 1], 2));
        let empty: ArrayRef = Arc::new(Int32Array::from(Vec::<i32>::new()));
        assert_eq!(dense_rank(empty.as_ref()).unwrap(), (vec![], 0));
    }
}
