//! The key of every row of a record batch, computed once per batch.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, TimeUnit};

use super::error::{KafkaError, Result};
use super::key::{KeySpec, TsUnit};
use crate::decode::community_id::{community_id, LEN};
use crate::decode::{IpAddr, Packet};

/// Keys of one batch: row `i`'s key is `data[offsets[i]..offsets[i + 1]]`, or none.
#[derive(Debug, Default)]
pub struct BatchKeys {
    data: Vec<u8>,
    offsets: Vec<usize>,
    present: Vec<bool>,
}

impl BatchKeys {
    /// Row `row`'s key; `None` when the row has none or no keys were computed.
    #[inline]
    pub fn get(&self, row: usize) -> Option<&[u8]> {
        if self.present.is_empty() || !self.present[row] {
            return None;
        }
        Some(&self.data[self.offsets[row]..self.offsets[row + 1]])
    }

    fn clear(&mut self) {
        self.data.clear();
        self.offsets.clear();
        self.present.clear();
        self.offsets.push(0);
    }

    fn push(&mut self, key: Option<&[u8]>) {
        if let Some(k) = key {
            self.data.extend_from_slice(k);
        }
        self.present.push(key.is_some());
        self.offsets.push(self.data.len());
    }

    /// Computes the keys of `batch` under `spec` (a no-op for [`KeySpec::None`]).
    pub fn compute(&mut self, spec: &KeySpec, batch: &RecordBatch, unit: TsUnit) -> Result<()> {
        self.clear();
        match spec {
            KeySpec::None => self.present.clear(),
            KeySpec::Flow => self.flow(batch)?,
            KeySpec::Timestamp => {
                let (_, ts_at) = timestamp_column(batch)?;
                for i in 0..batch.num_rows() {
                    let ts = ts_at(i);
                    self.push(ts.map(|t| unit.key(t)).as_ref().map(|k| &k[..]));
                }
            }
            KeySpec::Column(name) => {
                let col = batch.column_by_name(name).ok_or_else(|| missing(batch, name))?;
                self.column(col)?;
            }
        }
        Ok(())
    }

    fn column(&mut self, col: &ArrayRef) -> Result<()> {
        match col.data_type() {
            DataType::Utf8 => col.as_string::<i32>().iter().for_each(|v| self.push(v.map(str::as_bytes))),
            DataType::LargeUtf8 => col.as_string::<i64>().iter().for_each(|v| self.push(v.map(str::as_bytes))),
            DataType::Utf8View => col.as_string_view().iter().for_each(|v| self.push(v.map(str::as_bytes))),
            DataType::Binary => col.as_binary::<i32>().iter().for_each(|v| self.push(v)),
            DataType::LargeBinary => col.as_binary::<i64>().iter().for_each(|v| self.push(v)),
            DataType::FixedSizeBinary(_) => col.as_fixed_size_binary().iter().for_each(|v| self.push(v)),
            _ => {
                let options = FormatOptions::new();
                let f = ArrayFormatter::try_new(col.as_ref(), &options)
                    .map_err(|e| KafkaError::invalid(format!("cannot use the column as a key: {e}")))?;
                let mut text = String::new();
                for i in 0..col.len() {
                    if col.is_null(i) {
                        self.push(None);
                    } else {
                        text.clear();
                        use std::fmt::Write;
                        let _ = write!(text, "{}", f.value(i));
                        self.push(Some(text.as_bytes()));
                    }
                }
            }
        }
        Ok(())
    }

    fn flow(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some(cid) = batch.column_by_name("community_id") {
            if matches!(cid.data_type(), DataType::Utf8) {
                cid.as_string::<i32>().iter().for_each(|v| self.push(v.map(str::as_bytes)));
                return Ok(());
            }
        }
        let need = |name: &str| batch.column_by_name(name).ok_or_else(|| flow_columns_missing(batch));
        let src = need("src_ip")?;
        let dst = need("dst_ip")?;
        let proto = need("ip_proto")?;
        let ints = |name: &str| -> Result<Option<Vec<Option<u16>>>> {
            batch.column_by_name(name).map(|c| small_ints(c, name)).transpose()
        };
        let (proto, sport, dport) = (small_ints(proto, "ip_proto")?, ints("src_port")?, ints("dst_port")?);
        let (itype, icode) = (ints("icmp_type")?, ints("icmp_code")?);
        let mut p = Packet::default();
        let mut out = [0u8; LEN];
        for i in 0..batch.num_rows() {
            p.src_ip = ip_at(src, i)?;
            p.dst_ip = ip_at(dst, i)?;
            p.ip_proto = proto[i].map(|v| v as u8);
            p.ip_version = p.src_ip.map(|a| if matches!(a, IpAddr::V4(_)) { 4 } else { 6 });
            p.src_port = sport.as_ref().and_then(|v| v[i]);
            p.dst_port = dport.as_ref().and_then(|v| v[i]);
            p.icmp_type = itype.as_ref().and_then(|v| v[i]).map(|v| v as u8);
            p.icmp_code = icode.as_ref().and_then(|v| v[i]).map(|v| v as u8);
            let ok = community_id(&p, &mut out);
            self.push(ok.then_some(&out[..]));
        }
        Ok(())
    }
}

fn missing(batch: &RecordBatch, name: &str) -> KafkaError {
    let known: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
    KafkaError::invalid(format!("key column {name:?} is not in the data; it has: {}", known.join(", ")))
}

fn flow_columns_missing(batch: &RecordBatch) -> KafkaError {
    let known: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
    KafkaError::invalid(format!(
        "key=\"flow\" needs a community_id column or src_ip, dst_ip, ip_proto (and src_port, dst_port); the \
         data has: {}. Pass key=<column name> or key=None instead",
        known.join(", ")
    ))
}

fn small_ints(col: &ArrayRef, name: &str) -> Result<Vec<Option<u16>>> {
    let cast = arrow_cast::cast(col, &DataType::UInt16)
        .map_err(|e| KafkaError::invalid(format!("column {name:?} is not a port/protocol number: {e}")))?;
    Ok(cast.as_primitive::<arrow_array::types::UInt16Type>().iter().collect())
}

fn ip_at(col: &ArrayRef, i: usize) -> Result<Option<IpAddr>> {
    if col.is_null(i) {
        return Ok(None);
    }
    let bytes_ip = |b: &[u8]| match b.len() {
        4 => Some(IpAddr::V4(b.try_into().unwrap_or_default())),
        16 => Some(IpAddr::V6(b.try_into().unwrap_or_default())),
        _ => None,
    };
    Ok(match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(i).parse::<std::net::IpAddr>().ok().map(|a| match a {
            std::net::IpAddr::V4(v) => IpAddr::V4(v.octets()),
            std::net::IpAddr::V6(v) => IpAddr::V6(v.octets()),
        }),
        DataType::Binary => bytes_ip(col.as_binary::<i32>().value(i)),
        DataType::FixedSizeBinary(_) => bytes_ip(col.as_fixed_size_binary().value(i)),
        other => return Err(KafkaError::invalid(format!("an IP address column cannot be {other}"))),
    })
}

type TsAt<'a> = Box<dyn Fn(usize) -> Option<i64> + 'a>;

/// The `ts` column, or else the first timestamp column, as epoch nanoseconds per row.
fn timestamp_column(batch: &RecordBatch) -> Result<(usize, TsAt<'_>)> {
    let schema = batch.schema_ref();
    let idx = schema
        .index_of("ts")
        .ok()
        .filter(|&i| matches!(schema.field(i).data_type(), DataType::Timestamp(..)))
        .or_else(|| schema.fields().iter().position(|f| matches!(f.data_type(), DataType::Timestamp(..))))
        .ok_or_else(|| KafkaError::invalid("key=\"timestamp\" needs a timestamp column (\"ts\")"))?;
    let col = batch.column(idx);
    let at: TsAt<'_> = match col.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            let a = col.as_primitive::<TimestampNanosecondType>();
            Box::new(move |i| a.is_valid(i).then(|| a.value(i)))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let a = col.as_primitive::<TimestampMicrosecondType>();
            Box::new(move |i| a.is_valid(i).then(|| a.value(i).saturating_mul(1_000)))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let a = col.as_primitive::<TimestampMillisecondType>();
            Box::new(move |i| a.is_valid(i).then(|| a.value(i).saturating_mul(1_000_000)))
        }
        _ => {
            let a = col.as_primitive::<TimestampSecondType>();
            Box::new(move |i| a.is_valid(i).then(|| a.value(i).saturating_mul(1_000_000_000)))
        }
    };
    Ok((idx, at))
}
