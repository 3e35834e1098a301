//! The flow meter: decoded packets in, bidirectional flow records out, as Arrow batches.
//!
//! A flow is every packet with one undirected key (IP version, the two addresses and ports, the
//! IP protocol, the VLAN and the tunnel type), cut into records by the same rules as NFStream 6.6
//! so that the two can be compared: a record ends when the flow has been idle for
//! `idle_timeout`, when a packet arrives `active_timeout` or more after the record's first packet
//! (that packet starts the next record), or at the end of the input. Time is event time, the
//! packets' own timestamps, never the wall clock, and it only moves forward (a packet older than
//! one already seen counts as seen at the latest time, as NFStream does), so a replayed capture
//! gives the same flows as the live traffic did.
//!
//! NFStream does not end flows on TCP FIN or RST (its C meter leaves that as a comment), so that
//! option ([`FlowOptions::tcp_close`]) is off by default; see `docs/flows.md`.
//!
//! Memory is bounded by the active flows ([`FlowOptions::max_flows`]): the table is a hash map
//! into a slab whose entries are linked in last-seen order, so expiring idle flows only ever looks
//! at the head of that list and each packet costs O(1). Records are emitted as they expire, so an
//! endless source streams.
//!
//! Layout: [`key`] (the undirected key), [`state`] (per-flow counters), `table` (hash map plus
//! LRU list), [`meter`] (the rules), [`server_name`] (`requested_server_name` from the first
//! payloads), [`columns`] (records to Arrow), [`reader`] (capture file to flow batches, through the
//! crate's sources and decoder), [`frames`] (batches of frames pushed in, as from a Kafka `raw`
//! topic).

pub mod columns;
pub mod frames;
pub mod key;
pub mod meter;
pub mod reader;
pub mod server_name;
pub mod state;
mod table;

pub use columns::{flow_schema, FlowColumns};
pub use frames::FrameMeter;
pub use key::FlowKey;
pub use meter::{FlowMeter, MeterStats};
pub use reader::FlowReader;
pub use state::{Expiration, FlowRecord};

use crate::error::{Error, Result};

/// What a flow's byte counters add up per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accounting {
    /// The frame's length on the wire (the record's original length), as NFStream's
    /// `accounting_mode=0`.
    #[default]
    Wire,
    /// The IP packet's length from its header (IPv4 total length, IPv6 40 + payload length), as
    /// `accounting_mode=1`.
    Ip,
    /// The transport payload's length (after the TCP/UDP/ICMP header), as `accounting_mode=3`.
    Payload,
}

impl std::str::FromStr for Accounting {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wire" => Ok(Self::Wire),
            "ip" => Ok(Self::Ip),
            "payload" => Ok(Self::Payload),
            other => {
                Err(Error::InvalidArgument(format!("accounting must be 'wire', 'ip' or 'payload', not {other:?}")))
            }
        }
    }
}

/// Options of a flow meter. Defaults are NFStream's.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// A flow idle this long (no packet in either direction) ends (ns; NFStream: 120 s).
    pub idle_timeout_ns: i64,
    /// A packet this long or more after a record's first packet ends the record and starts the
    /// next one (ns; NFStream: 1800 s).
    pub active_timeout_ns: i64,
    /// End TCP flows on RST or once both sides sent FIN (after [`Self::tcp_close_grace_ns`]
    /// without packets, or at a new SYN). Off by default, as NFStream never does it.
    pub tcp_close: bool,
    /// How long a closed TCP flow still absorbs trailing packets (the last ACK, retransmits).
    pub tcp_close_grace_ns: i64,
    /// What the byte counters add up per packet (NFStream's `accounting_mode`).
    pub accounting: Accounting,
    /// Also keep packet size and inter-arrival statistics (NFStream's `statistical_analysis`).
    pub statistics: bool,
    /// Also fill `requested_server_name` (TLS SNI, HTTP Host, DNS query name) from the first
    /// packets of each flow.
    pub server_name: bool,
    /// At most this many flows are held; a new flow beyond it evicts the least recently seen one,
    /// which is emitted with expiration `evicted` and counted.
    pub max_flows: usize,
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            idle_timeout_ns: 120 * 1_000_000_000,
            active_timeout_ns: 1800 * 1_000_000_000,
            tcp_close: false,
            tcp_close_grace_ns: 1_000_000_000,
            accounting: Accounting::Wire,
            statistics: false,
            server_name: false,
            max_flows: 1_000_000,
        }
    }
}

impl FlowOptions {
    /// Checks the options a caller may have got wrong.
    pub fn validate(&self) -> Result<()> {
        if self.idle_timeout_ns <= 0 || self.active_timeout_ns <= 0 {
            return Err(Error::InvalidArgument("idle_timeout and active_timeout must be positive".into()));
        }
        if self.max_flows == 0 {
            return Err(Error::InvalidArgument("max_flows must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
