//! Flow records to Arrow: the flow schema and a builder that turns finished records into record
//! batches. Flows are few next to packets, so plain arrow builders are fast enough here; the
//! addresses and the Community ID are formatted once per record, when it is emitted.

use std::sync::Arc;

use arrow_array::builder::{
    DurationNanosecondBuilder, Float64Builder, StringBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt64Builder,
    UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::key::{has_ports, tunnel_name};
use super::state::{FlowRecord, Running};
use crate::columns::format::ip_text;
use crate::error::{Error, Result};

/// The always-present columns, in order.
const BASE: &[(&str, Kind)] = &[
    ("flow_id", Kind::U64),
    ("community_id", Kind::Str),
    ("first_seen", Kind::Ts),
    ("last_seen", Kind::Ts),
    ("duration", Kind::Dur),
    ("ip_version", Kind::U8),
    ("src_ip", Kind::Str),
    ("dst_ip", Kind::Str),
    ("src_port", Kind::U16),
    ("dst_port", Kind::U16),
    ("ip_proto", Kind::U8),
    ("vlan_id", Kind::U16),
    ("tunnel", Kind::Str),
    ("packets", Kind::U64),
    ("bytes", Kind::U64),
    ("src2dst_packets", Kind::U64),
    ("src2dst_bytes", Kind::U64),
    ("dst2src_packets", Kind::U64),
    ("dst2src_bytes", Kind::U64),
    ("src2dst_tcp_flags", Kind::U16),
    ("dst2src_tcp_flags", Kind::U16),
    ("expiration", Kind::Str),
];

/// Statistical columns (NFStream's names), for each of bidirectional, src2dst, dst2src.
const DIRS: [&str; 3] = ["bidirectional", "src2dst", "dst2src"];
const STATS: [&str; 8] =
    ["min_ps", "mean_ps", "stddev_ps", "max_ps", "min_piat_ms", "mean_piat_ms", "stddev_piat_ms", "max_piat_ms"];

#[derive(Clone, Copy)]
enum Kind {
    U8,
    U16,
    U64,
    Str,
    Ts,
    Dur,
}

fn data_type(k: Kind) -> DataType {
    match k {
        Kind::U8 => DataType::UInt8,
        Kind::U16 => DataType::UInt16,
        Kind::U64 => DataType::UInt64,
        Kind::Str => DataType::Utf8,
        Kind::Ts => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        Kind::Dur => DataType::Duration(TimeUnit::Nanosecond),
    }
}

/// The full flow schema (every column), with the statistical ones if asked for.
pub fn flow_schema(statistics: bool, server_name: bool) -> SchemaRef {
    let mut fields: Vec<Field> = BASE
        .iter()
        .map(|&(name, kind)| {
            let nullable = matches!(name, "community_id" | "src_port" | "dst_port" | "vlan_id" | "tunnel")
                || name.ends_with("tcp_flags");
            Field::new(name, data_type(kind), nullable)
        })
        .collect();
    if server_name {
        fields.push(Field::new("requested_server_name", DataType::Utf8, true));
    }
    if statistics {
        for dir in DIRS {
            for s in STATS {
                let dt = if s.starts_with("min_ps") || s.starts_with("max_ps") {
                    DataType::UInt64
                } else {
                    DataType::Float64
                };
                fields.push(Field::new(format!("{dir}_{s}"), dt, false));
            }
        }
    }
    Arc::new(Schema::new(fields))
}

/// Builds flow batches, optionally projected to some columns.
pub struct FlowColumns {
    full: SchemaRef,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    statistics: bool,
    server_name: Option<StringBuilder>,
    len: usize,
    u64s: Vec<UInt64Builder>,
    flow_id: UInt64Builder,
    community_id: StringBuilder,
    first_seen: TimestampNanosecondBuilder,
    last_seen: TimestampNanosecondBuilder,
    duration: DurationNanosecondBuilder,
    ip_version: UInt8Builder,
    src_ip: StringBuilder,
    dst_ip: StringBuilder,
    src_port: UInt16Builder,
    dst_port: UInt16Builder,
    ip_proto: UInt8Builder,
    vlan_id: UInt16Builder,
    tunnel: StringBuilder,
    flags: [UInt16Builder; 2],
    expiration: StringBuilder,
    stat_u64: Vec<UInt64Builder>,
    stat_f64: Vec<Float64Builder>,
}

impl FlowColumns {
    /// `columns`: names of the flow schema, in the order wanted (`None`: all).
    pub fn new(statistics: bool, server_name: bool, columns: Option<&[String]>) -> Result<Self> {
        let full = flow_schema(statistics, server_name);
        let projection = match columns {
            None => None,
            Some(names) => {
                let mut idx = Vec::with_capacity(names.len());
                for n in names {
                    let i = full.index_of(n).map_err(|_| {
                        let hint = if STATS.iter().any(|s| n.ends_with(s)) {
                            " (statistical columns need statistics=True)"
                        } else if n == "requested_server_name" {
                            " (it needs server_name=True)"
                        } else {
                            ""
                        };
                        Error::InvalidArgument(format!("unknown flow column {n:?}{hint}"))
                    })?;
                    if idx.contains(&i) {
                        return Err(Error::InvalidArgument(format!("flow column {n:?} is asked for twice")));
                    }
                    idx.push(i);
                }
                Some(idx)
            }
        };
        let schema = match &projection {
            None => full.clone(),
            Some(p) => Arc::new(full.project(p)?),
        };
        Ok(Self {
            full,
            projection,
            schema,
            statistics,
            server_name: server_name.then(StringBuilder::new),
            len: 0,
            u64s: (0..6).map(|_| UInt64Builder::new()).collect(),
            flow_id: UInt64Builder::new(),
            community_id: StringBuilder::new(),
            first_seen: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            last_seen: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            duration: DurationNanosecondBuilder::new(),
            ip_version: UInt8Builder::new(),
            src_ip: StringBuilder::new(),
            dst_ip: StringBuilder::new(),
            src_port: UInt16Builder::new(),
            dst_port: UInt16Builder::new(),
            ip_proto: UInt8Builder::new(),
            vlan_id: UInt16Builder::new(),
            tunnel: StringBuilder::new(),
            flags: [UInt16Builder::new(), UInt16Builder::new()],
            expiration: StringBuilder::new(),
            stat_u64: (0..6).map(|_| UInt64Builder::new()).collect(),
            stat_f64: (0..18).map(|_| Float64Builder::new()).collect(),
        })
    }

    /// The Arrow schema of the flow batches built.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Flows appended since the last batch was taken.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no flow was appended since the last batch was taken.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one finished flow.
    pub fn append(&mut self, r: &FlowRecord) {
        let f = &r.flow;
        let k = &f.key;
        self.len += 1;
        self.flow_id.append_value(f.flow_id);
        match f.community_id {
            Some(words) => {
                let mut bytes = [0u8; 32];
                for (chunk, w) in bytes.chunks_exact_mut(8).zip(words) {
                    chunk.copy_from_slice(&w.to_le_bytes());
                }
                let id = std::str::from_utf8(&bytes[..crate::decode::community_id::LEN]).unwrap_or_default();
                self.community_id.append_value(id);
            }
            None => self.community_id.append_null(),
        }
        self.first_seen.append_value(f.first_ns);
        self.last_seen.append_value(f.last_ns);
        self.duration.append_value(f.last_ns - f.first_ns);
        self.ip_version.append_value(k.ip_version);
        let (v4, mut buf) = (k.ip_version == 4, [0u8; 72]);
        let (src, dst) = if f.src_is_lo { (&k.lo_ip, &k.hi_ip) } else { (&k.hi_ip, &k.lo_ip) };
        self.src_ip.append_value(ip_text(v4, src, &mut buf));
        self.dst_ip.append_value(ip_text(v4, dst, &mut buf));
        let ports = if f.src_is_lo { (k.lo_port, k.hi_port) } else { (k.hi_port, k.lo_port) };
        let tcp = k.ip_proto == 6;
        if has_ports(k.ip_proto) {
            self.src_port.append_value(ports.0);
            self.dst_port.append_value(ports.1);
        } else {
            self.src_port.append_null();
            self.dst_port.append_null();
        }
        self.ip_proto.append_value(k.ip_proto);
        self.vlan_id.append_option((k.vlan_id != 0).then_some(k.vlan_id));
        self.tunnel.append_option(tunnel_name(k.tunnel));
        let values =
            [f.packets[0] + f.packets[1], f.bytes[0] + f.bytes[1], f.packets[0], f.bytes[0], f.packets[1], f.bytes[1]];
        for (b, v) in self.u64s.iter_mut().zip(values) {
            b.append_value(v);
        }
        for (b, v) in self.flags.iter_mut().zip(f.tcp_flags) {
            b.append_option(tcp.then_some(v));
        }
        self.expiration.append_value(r.expiration.as_str());
        if let Some(b) = &mut self.server_name {
            b.append_option(f.server_name.as_deref());
        }
        if self.statistics {
            let s = f.statistics.as_deref().cloned().unwrap_or_default();
            for d in 0..3 {
                let (ps, piat): (&Running, &Running) = (&s.ps[d], &s.piat_ms[d]);
                self.stat_u64[2 * d].append_value(ps.min as u64);
                self.stat_u64[2 * d + 1].append_value(ps.max as u64);
                let f64s = [ps.mean, ps.stddev(), piat.min, piat.mean, piat.stddev(), piat.max];
                for (j, v) in f64s.into_iter().enumerate() {
                    self.stat_f64[6 * d + j].append_value(v);
                }
            }
        }
    }

    /// The appended flows as one batch; the builder is empty afterwards.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.len = 0;
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.flow_id.finish()),
            Arc::new(self.community_id.finish()),
            Arc::new(self.first_seen.finish()),
            Arc::new(self.last_seen.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.ip_version.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.dst_ip.finish()),
            Arc::new(self.src_port.finish()),
            Arc::new(self.dst_port.finish()),
            Arc::new(self.ip_proto.finish()),
            Arc::new(self.vlan_id.finish()),
            Arc::new(self.tunnel.finish()),
        ];
        // packets and bytes, then flags and expiration.
        for b in &mut self.u64s {
            cols.push(Arc::new(b.finish()));
        }
        for b in &mut self.flags {
            cols.push(Arc::new(b.finish()));
        }
        cols.push(Arc::new(self.expiration.finish()));
        if let Some(b) = &mut self.server_name {
            cols.push(Arc::new(b.finish()));
        }
        if self.statistics {
            for d in 0..3 {
                let mut f = self.stat_f64[6 * d..6 * d + 6].iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
                let (mean, sd) = (f.next(), f.next());
                let rest: Vec<ArrayRef> = f.collect();
                let min = Arc::new(self.stat_u64[2 * d].finish()) as ArrayRef;
                let max = Arc::new(self.stat_u64[2 * d + 1].finish()) as ArrayRef;
                cols.extend([Some(min), mean, sd, Some(max)].into_iter().flatten());
                cols.extend(rest);
            }
        }
        let batch = RecordBatch::try_new(self.full.clone(), cols)?;
        Ok(match &self.projection {
            None => batch,
            Some(p) => batch.project(p)?,
        })
    }
}
