//! One flow's counters while it is active, and the finished record the meter hands out.
//!
//! Direction 0 is src→dst, where `src` is the sender of the record's first packet (as in
//! NFStream); the key's canonical order is a separate matter, remembered in `src_is_lo`.

use super::key::FlowKey;

/// Why a record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    /// No packet for `idle_timeout`.
    Idle,
    /// A packet came `active_timeout` or more after the record's first packet.
    Active,
    /// TCP RST, or FIN from both sides (only with `tcp_close`).
    TcpClose,
    /// The input ended.
    End,
    /// `max_flows` were active and a new flow needed the room.
    Evicted,
}

impl Expiration {
    /// The value of the `expiration` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Active => "active",
            Self::TcpClose => "tcp_close",
            Self::End => "end",
            Self::Evicted => "evicted",
        }
    }
}

/// Running min / mean / max / variance of a series (Welford), as NFStream's statistics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Running {
    /// Number of values pushed.
    pub n: u64,
    /// Smallest value; 0 before the first.
    pub min: f64,
    /// Largest value; 0 before the first.
    pub max: f64,
    /// Running mean; 0 before the first value.
    pub mean: f64,
    m2: f64,
}

impl Running {
    /// Adds one value.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        if self.n == 1 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Sample standard deviation (n - 1), 0 below two values (NFStream's convention).
    pub fn stddev(&self) -> f64 {
        if self.n > 1 {
            (self.m2 / (self.n - 1) as f64).sqrt()
        } else {
            0.0
        }
    }
}

/// Packet sizes and inter-arrival times: index 0 bidirectional, 1 src→dst, 2 dst→src.
#[derive(Debug, Clone, Default)]
pub struct FlowStatistics {
    /// Packet sizes in bytes, as the flow's [`Accounting`](super::Accounting) counts them.
    pub ps: [Running; 3],
    /// Inter-arrival times in milliseconds.
    pub piat_ms: [Running; 3],
    last_ns: [Option<i64>; 3],
}

impl FlowStatistics {
    #[inline]
    pub(crate) fn push(&mut self, dir: usize, size: u64, ts_ns: i64) {
        for i in [0, 1 + dir] {
            self.ps[i].push(size as f64);
            if let Some(last) = self.last_ns[i] {
                self.piat_ms[i].push((ts_ns - last) as f64 / 1e6);
            }
            self.last_ns[i] = Some(ts_ns);
        }
    }
}

/// An active flow.
#[derive(Debug, Clone)]
pub struct FlowState {
    /// The undirected key the flow is stored under.
    pub key: FlowKey,
    /// Sequence number of the flow in the meter's output, from 0 in creation order.
    pub flow_id: u64,
    /// The first packet went from the key's `lo` endpoint to its `hi` one.
    pub src_is_lo: bool,
    /// Time of the first packet, ns since the Unix epoch.
    pub first_ns: i64,
    /// Time of the latest packet, ns since the Unix epoch.
    pub last_ns: i64,
    /// Per direction (0: src→dst, 1: dst→src).
    pub packets: [u64; 2],
    /// Per direction (0: src→dst, 1: dst→src), as the flow's [`Accounting`](super::Accounting)
    /// counts them.
    pub bytes: [u64; 2],
    /// Per direction, the OR of the TCP flags seen; 0 for non-TCP flows.
    pub tcp_flags: [u16; 2],
    /// The Community ID as [`community_id_words`](crate::decode::community_id::community_id_words)
    /// packs it; `None` when the first packet had none.
    pub community_id: Option<[u64; 4]>,
    /// Per direction, whether a FIN was seen (tracked only with `tcp_close`).
    pub fin_seen: [bool; 2],
    /// An RST or both FINs were seen: the flow waits out `tcp_close_grace_ns`.
    pub closed: bool,
    /// Size and inter-arrival statistics; `None` unless `statistics` is on.
    pub statistics: Option<Box<FlowStatistics>>,
    /// `requested_server_name`, once found.
    pub server_name: Option<Box<str>>,
}

/// A finished flow, ready for the columns.
#[derive(Debug, Clone)]
pub struct FlowRecord {
    /// The flow's final state.
    pub flow: FlowState,
    /// Why the flow ended.
    pub expiration: Expiration,
}
