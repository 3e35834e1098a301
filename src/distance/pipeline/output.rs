//! Pairs ([`crate::distance::WindowedPairs`]' columns) to the pipeline's output rows:
//! `eventid_1, eventid_2, distance, timestamp, key, window_start`, in that order (the order of
//! each JSON object's fields).
//!
//! `timestamp` is the window's end (exclusive). Window bounds are written in microseconds when that
//! is exact for every row handed over together (it is for any window of whole µs), so the JSON
//! shows `...:05.000000+00:00` rather than nine digits; otherwise in nanoseconds.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_cast::cast;
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::Result;

/// The output column names, in order.
pub const OUTPUT_COLUMNS: [&str; 6] = ["eventid_1", "eventid_2", "distance", "timestamp", "key", "window_start"];

/// The output rows of `pairs` (batches of the pairs schema), one batch per input batch.
pub fn output_batches(pairs: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let exact_us = pairs.iter().all(|b| {
        ["window_start", "window_end"].iter().all(|c| {
            b.column_by_name(c)
                .and_then(|a| a.as_primitive_opt::<TimestampNanosecondType>())
                .is_some_and(|a| a.iter().all(|v| v.is_none_or(|v| v % 1000 == 0)))
        })
    });
    let unit = if exact_us { TimeUnit::Microsecond } else { TimeUnit::Nanosecond };
    let ts = DataType::Timestamp(unit, Some("UTC".into()));
    pairs
        .iter()
        .map(|b| {
            let col = |name: &str| -> Result<ArrayRef> {
                b.column_by_name(name).cloned().ok_or_else(|| {
                    crate::distance::DistanceError::InvalidArgument(format!("pairs lack column {name:?}")).into()
                })
            };
            let (start, end) = (cast(col("window_start")?.as_ref(), &ts)?, cast(col("window_end")?.as_ref(), &ts)?);
            let (key, id1, id2, dist) = (col("key")?, col("id_1")?, col("id_2")?, col("distance")?);
            let schema = Schema::new(vec![
                Field::new(OUTPUT_COLUMNS[0], id1.data_type().clone(), true),
                Field::new(OUTPUT_COLUMNS[1], id2.data_type().clone(), true),
                Field::new(OUTPUT_COLUMNS[2], DataType::Float64, false),
                Field::new(OUTPUT_COLUMNS[3], ts.clone(), true),
                Field::new(OUTPUT_COLUMNS[4], key.data_type().clone(), true),
                Field::new(OUTPUT_COLUMNS[5], ts.clone(), true),
            ]);
            Ok(RecordBatch::try_new(Arc::new(schema), vec![id1, id2, dist, end, key, start])?)
        })
        .collect()
}
