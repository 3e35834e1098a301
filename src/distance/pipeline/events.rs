//! A consumed batch to the events the pipeline pairs: key, id, event time in ns, features, and the
//! (partition, offset) each came from.
//!
//! A row is *invalid* when its value could not be decoded (`_error` set) or it lacks the key, id or
//! time: it is counted, never paired, and its offset is committed like any other (it will never
//! become valid). Features may be null: they become NaN, and NaN distances.
//!
//! Normalization happens here, once per consumed batch, because it is a per-event transform of the
//! feature matrix this module builds anyway (a stream has no "whole input" to z-score over).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_cast::cast;
use arrow_schema::{DataType, TimeUnit};
use arrow_select::concat::concat;
use arrow_select::filter::filter;

use super::Result;
use crate::distance::DistanceError;

/// Per-event feature transforms.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalize {
    /// Features as they are.
    None,
    /// `ln(1 + x)` of every feature.
    Log1p,
    /// `(x - offset) / scale` per feature (`None`: that feature as it is), in feature order.
    Affine(Vec<Option<(f64, f64)>>),
}

/// Which columns make an event.
#[derive(Debug, Clone)]
pub struct EventSpec {
    /// The group column.
    pub key: String,
    /// The event id column.
    pub id: String,
    /// The event time column (a timestamp, or integer ns since the epoch).
    pub time: String,
    /// The numeric feature columns.
    pub features: Vec<String>,
    /// The transform applied to the features.
    pub normalize: Normalize,
}

/// `(topic, partition)` pairs as small integers, in order of first sight.
#[derive(Debug, Default)]
pub struct Partitions {
    list: Vec<(String, i32)>,
    index: HashMap<String, HashMap<i32, u32>>,
}

impl Partitions {
    /// The index of a partition, assigned on first sight.
    pub fn intern(&mut self, topic: &str, partition: i32) -> u32 {
        if let Some(&i) = self.index.get(topic).and_then(|m| m.get(&partition)) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push((topic.to_string(), partition));
        self.index.entry(topic.to_string()).or_default().insert(partition, i);
        i
    }

    /// The partition of an index.
    pub fn get(&self, i: u32) -> (&str, i32) {
        let (t, p) = &self.list[i as usize];
        (t.as_str(), *p)
    }

    /// Partitions seen so far.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none was seen.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Events in arrival order: one row each across the fields.
#[derive(Debug, Clone)]
pub struct Events {
    /// Group keys.
    pub key: ArrayRef,
    /// Event ids.
    pub id: ArrayRef,
    /// Event times, ns since the epoch.
    pub time: Vec<i64>,
    /// Row-major features, `d` per event.
    pub features: Vec<f64>,
    /// Partition index of each event (see [`Partitions`]).
    pub part: Vec<u32>,
    /// Offset of each event.
    pub offset: Vec<i64>,
}

impl Events {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    /// The events where `keep` is true, in order (`d` features per event).
    pub fn select(&self, keep: &[bool], d: usize) -> Result<Events> {
        let mask = BooleanArray::from(keep.to_vec());
        let pick = |v: &[i64]| v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect::<Vec<_>>();
        let mut features = Vec::with_capacity(keep.iter().filter(|k| **k).count() * d);
        for (row, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            features.extend_from_slice(&self.features[row * d..(row + 1) * d]);
        }
        Ok(Events {
            key: filter(self.key.as_ref(), &mask)?,
            id: filter(self.id.as_ref(), &mask)?,
            time: pick(&self.time),
            features,
            part: self.part.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect(),
            offset: pick(&self.offset),
        })
    }

    /// The events of `parts` one after the other (`parts` must not be empty).
    pub fn concat(parts: &[Events]) -> Result<Events> {
        if parts.len() == 1 {
            return Ok(parts[0].clone());
        }
        let arrays = |f: fn(&Events) -> &ArrayRef| parts.iter().map(|e| f(e).as_ref()).collect::<Vec<_>>();
        Ok(Events {
            key: concat(&arrays(|e| &e.key))?,
            id: concat(&arrays(|e| &e.id))?,
            time: parts.iter().flat_map(|e| e.time.iter().copied()).collect(),
            features: parts.iter().flat_map(|e| e.features.iter().copied()).collect(),
            part: parts.iter().flat_map(|e| e.part.iter().copied()).collect(),
            offset: parts.iter().flat_map(|e| e.offset.iter().copied()).collect(),
        })
    }
}

/// A consumed batch, sorted out.
#[derive(Debug)]
pub struct Ingested {
    /// The valid events.
    pub events: Events,
    /// Rows in the batch.
    pub rows: u64,
    /// Rows not valid.
    pub invalid: u64,
    /// Every partition with a row in the batch (valid or not), each once.
    pub seen: Vec<u32>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        let names: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        DistanceError::InvalidArgument(format!("no column {name:?}; the columns are {names:?}")).into()
    })
}

fn invalid(msg: String) -> super::PipelineError {
    DistanceError::InvalidArgument(msg).into()
}

/// Event times in ns: timestamps of any unit (checked for overflow), or integers taken as ns.
fn time_ns(col: &ArrayRef, name: &str) -> Result<Vec<i64>> {
    let per = match col.data_type() {
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        },
        t if t.is_integer() => 1,
        t => return Err(invalid(format!("time column {name:?} must be a timestamp or integer epoch ns, not {t}"))),
    };
    let ints = cast(col.as_ref(), &DataType::Int64)?;
    ints.as_primitive::<Int64Type>()
        .values()
        .iter()
        .map(|&v| v.checked_mul(per).ok_or_else(|| invalid(format!("time column {name:?}: {v} is out of range in ns"))))
        .collect()
}

/// Row-major `n x d` features; nulls become NaN.
fn features(batch: &RecordBatch, spec: &EventSpec) -> Result<Vec<f64>> {
    let (n, d) = (batch.num_rows(), spec.features.len());
    let mut out = vec![0.0; n * d];
    for (j, name) in spec.features.iter().enumerate() {
        let col = column(batch, name)?;
        let t = col.data_type();
        if !(t.is_integer() || t.is_floating() || *t == DataType::Boolean || t.is_decimal() || *t == DataType::Null) {
            return Err(invalid(format!("feature column {name:?} is not numeric ({t})")));
        }
        let f = cast(col.as_ref(), &DataType::Float64)?;
        let f = f.as_primitive::<Float64Type>();
        let transform = match &spec.normalize {
            Normalize::None => None,
            Normalize::Log1p => Some((true, 0.0, 1.0)),
            Normalize::Affine(a) => a.get(j).copied().flatten().map(|(o, s)| (false, o, s)),
        };
        for (i, v) in f.iter().enumerate() {
            let v = v.unwrap_or(f64::NAN);
            out[i * d + j] = match transform {
                None => v,
                Some((true, _, _)) => v.ln_1p(),
                Some((false, offset, scale)) => (v - offset) / scale,
            };
        }
    }
    Ok(out)
}

/// Sorts a consumed batch into valid events (see the module docs).
pub fn extract(batch: &RecordBatch, spec: &EventSpec, parts: &mut Partitions) -> Result<Ingested> {
    let n = batch.num_rows();
    let topics = column(batch, "_topic")?
        .as_string_opt::<i32>()
        .ok_or_else(|| invalid("_topic must be a string column".into()))?;
    let partitions = column(batch, "_partition")?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| invalid("_partition must be an int32 column".into()))?;
    let offsets = column(batch, "_offset")?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| invalid("_offset must be an int64 column".into()))?;
    let mut part = Vec::with_capacity(n);
    let mut last: Option<(&str, i32, u32)> = None;
    let mut seen = Vec::new();
    for i in 0..n {
        let (t, p) = (topics.value(i), partitions.value(i));
        let idx = match last {
            Some((lt, lp, li)) if lt == t && lp == p => li,
            _ => {
                let li = parts.intern(t, p);
                last = Some((t, p, li));
                if !seen.contains(&li) {
                    seen.push(li);
                }
                li
            }
        };
        part.push(idx);
    }
    let error = column(batch, "_error")?;
    let (key, id, time) = (column(batch, &spec.key)?, column(batch, &spec.id)?, column(batch, &spec.time)?);
    let keep: Vec<bool> =
        (0..n).map(|i| error.is_null(i) && key.is_valid(i) && id.is_valid(i) && time.is_valid(i)).collect();
    let valid = keep.iter().filter(|k| **k).count();
    let batch = if valid < n {
        arrow_select::filter::filter_record_batch(batch, &BooleanArray::from(keep.clone()))?
    } else {
        batch.clone()
    };
    let pick = |v: Vec<u32>| -> Vec<u32> { v.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect() };
    let events = Events {
        key: Arc::clone(column(&batch, &spec.key)?),
        id: Arc::clone(column(&batch, &spec.id)?),
        time: time_ns(column(&batch, &spec.time)?, &spec.time)?,
        features: features(&batch, spec)?,
        part: if valid < n { pick(part) } else { part },
        offset: if valid < n {
            offsets.values().iter().zip(&keep).filter(|(_, k)| **k).map(|(o, _)| *o).collect()
        } else {
            offsets.values().to_vec()
        },
    };
    Ok(Ingested { events, rows: n as u64, invalid: (n - valid) as u64, seen })
}
