//! The metering rules: which record a packet joins, and when records end.
//!
//! On every packet, in this order: event time advances (never backwards); flows idle for
//! `idle_timeout` are expired from the head of the last-seen list; closed TCP flows past their
//! grace are expired; then the packet's flow is found. A packet that comes `idle_timeout` or more
//! after its flow's last packet, or `active_timeout` or more after its record's first packet,
//! ends that record and starts a new one — exactly NFStream's `flow_expiration_handler`.

use std::collections::VecDeque;

use super::key::{FlowKey, NoFlow};
use super::server_name;
use super::state::{Expiration, FlowRecord, FlowState, FlowStatistics};
use super::table::key_hash;
use super::{Accounting, FlowOptions};
use crate::decode::community_id::community_id_words;
use crate::decode::Packet;

const FIN: u16 = 0x01;
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const ACK: u16 = 0x10;

/// Counters of a meter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterStats {
    /// Packets seen.
    pub packets: u64,
    /// Packets counted in a flow.
    pub metered: u64,
    /// Packets without an IP layer (or without both addresses): no flow.
    pub not_ip: u64,
    /// Non-first IP fragments: no ports, so no flow (as NFStream).
    pub fragments: u64,
    /// Flow records emitted.
    pub flows: u64,
    /// Records ended by `max_flows`.
    pub evicted: u64,
    /// Flows active now.
    pub active: u64,
    /// Records a BPF filter dropped before the meter (set by [`super::FlowReader`]).
    pub filtered: u64,
}

/// A bidirectional flow meter. Feed it packets with [`FlowMeter::observe`]; take finished records
/// from [`FlowMeter::drain`]; call [`FlowMeter::finish`] at the end of the input.
pub struct FlowMeter {
    opts: FlowOptions,
    table: super::table::FlowTable,
    /// Closed TCP flows waiting out their grace, in closing order.
    closing: VecDeque<(FlowKey, i64)>,
    now: Option<i64>,
    next_id: u64,
    out: VecDeque<FlowRecord>,
    stats: MeterStats,
    /// [`Self::finish_some`] is emptying the table (its keys are forgotten).
    finishing: bool,
}

impl FlowMeter {
    /// An empty meter with options `opts`.
    pub fn new(opts: FlowOptions) -> Self {
        Self {
            opts,
            table: super::table::FlowTable::new(),
            closing: VecDeque::new(),
            now: None,
            next_id: 0,
            out: VecDeque::new(),
            stats: MeterStats::default(),
            finishing: false,
        }
    }

    /// The options the meter was made with.
    pub fn options(&self) -> &FlowOptions {
        &self.opts
    }

    /// The counters so far, with `active` the flows now in the table.
    pub fn stats(&self) -> MeterStats {
        MeterStats { active: self.table.len() as u64, ..self.stats.clone() }
    }

    /// Finished records not yet taken.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Takes the finished records (in the order they ended).
    pub fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, FlowRecord> {
        self.out.drain(..)
    }

    /// Takes at most `n` finished records, oldest first.
    pub fn drain_up_to(&mut self, n: usize) -> std::collections::vec_deque::Drain<'_, FlowRecord> {
        let n = n.min(self.out.len());
        self.out.drain(..n)
    }

    /// Meters one packet: `ts_ns` is its capture time (`None` when the format has none: the
    /// latest time seen is used), `wirelen` its length on the wire.
    pub fn observe(&mut self, p: &Packet, ts_ns: Option<i64>, wirelen: u32) {
        self.observe_frame(p, ts_ns, wirelen, None);
    }

    /// As [`Self::observe`], with the frame's bytes for `requested_server_name`.
    pub fn observe_frame(&mut self, p: &Packet, ts_ns: Option<i64>, wirelen: u32, frame: Option<&[u8]>) {
        self.stats.packets += 1;
        let t = match (ts_ns, self.now) {
            (Some(t), Some(now)) => t.max(now),
            (Some(t), None) => t,
            (None, Some(now)) => now,
            (None, None) => 0,
        };
        self.now = Some(t);
        self.expire_idle(t);
        if self.opts.tcp_close {
            self.expire_closed(t);
        }
        let (key, forward) = match FlowKey::from_packet(p) {
            Ok(k) => k,
            Err(NoFlow::NotIp) => {
                self.stats.not_ip += 1;
                return;
            }
            Err(NoFlow::Fragment) => {
                self.stats.fragments += 1;
                return;
            }
        };
        self.stats.metered += 1;
        let size = match self.opts.accounting {
            Accounting::Wire => u64::from(wirelen),
            Accounting::Ip => u64::from(p.ip_len.unwrap_or(0)),
            Accounting::Payload => u64::from(p.payload_len.unwrap_or(0)),
        };
        let flags = p.tcp_flags.unwrap_or(0);
        let hash = key_hash(&key);
        let idx = match self.table.find(&key, hash) {
            Some(idx) => {
                let f = self.table.flow(idx);
                let reason = if t - f.last_ns >= self.opts.idle_timeout_ns {
                    Some(Expiration::Idle)
                } else if t - f.first_ns >= self.opts.active_timeout_ns {
                    Some(Expiration::Active)
                } else if f.closed && flags & (SYN | ACK) == SYN {
                    Some(Expiration::TcpClose)
                } else {
                    None
                };
                match reason {
                    None => {
                        self.table.touch(idx);
                        idx
                    }
                    Some(r) => {
                        let flow = self.table.remove(idx);
                        self.emit(flow, r);
                        self.create(key, hash, forward, p, t)
                    }
                }
            }
            None => self.create(key, hash, forward, p, t),
        };
        let tcp_close = self.opts.tcp_close && key.ip_proto == 6;
        let f = self.table.flow_mut(idx);
        let dir = usize::from(forward != f.src_is_lo);
        f.last_ns = t;
        f.packets[dir] += 1;
        f.bytes[dir] += size;
        f.tcp_flags[dir] |= flags;
        if let Some(s) = f.statistics.as_deref_mut() {
            s.push(dir, size, t);
        }
        if let Some(frame) = frame {
            if f.server_name.is_none() && f.packets[0] + f.packets[1] <= server_name::PACKETS {
                let dns = key.lo_port == 53 || key.hi_port == 53;
                f.server_name = server_name::transport_payload(frame, p, wirelen)
                    .and_then(|payload| server_name::server_name(payload, key.ip_proto, dns))
                    .map(String::into_boxed_str);
            }
        }
        if tcp_close && !f.closed && flags & (FIN | RST) != 0 {
            if flags & FIN != 0 {
                f.fin_seen[dir] = true;
            }
            if flags & RST != 0 || f.fin_seen == [true, true] {
                f.closed = true;
                self.closing.push_back((key, t));
            }
        }
    }

    /// Ends the flows idle (or closed) at time `t` without a packet arriving. A live source
    /// calls this with the wall clock while the link is quiet, so that flows end on time rather
    /// than at the next packet. The meter's own clock stays with the packets' timestamps.
    pub fn expire_at(&mut self, t: i64) {
        let Some(now) = self.now else { return };
        let t = t.max(now);
        self.expire_idle(t);
        if self.opts.tcp_close {
            self.expire_closed(t);
        }
    }

    /// Ends every active flow (expiration `end`, or `tcp_close` for a closed TCP flow still in
    /// its grace), oldest first.
    pub fn finish(&mut self) {
        while !self.finish_some(usize::MAX) {}
    }

    /// Ends at most `n` active flows, as [`Self::finish`]; `true` once none is left. Flushing a
    /// large table a batch at a time keeps the finished records from doubling the memory. The
    /// input has ended: a packet observed before the table is empty starts a flow of its own.
    pub fn finish_some(&mut self, n: usize) -> bool {
        if !self.finishing {
            // Nothing is looked up while the table empties: no hash lookup per flow removed.
            self.table.forget_keys();
            self.finishing = true;
        }
        for _ in 0..n {
            let Some(h) = self.table.head() else { break };
            let flow = self.table.remove(h);
            let reason = if flow.closed { Expiration::TcpClose } else { Expiration::End };
            self.emit(flow, reason);
        }
        let done = self.table.len() == 0;
        if done {
            self.closing.clear();
            self.finishing = false;
        }
        done
    }

    fn create(&mut self, key: FlowKey, hash: u64, forward: bool, p: &Packet, t: i64) -> u32 {
        if self.table.len() >= self.opts.max_flows {
            if let Some(h) = self.table.head() {
                let flow = self.table.remove(h);
                self.stats.evicted += 1;
                self.emit(flow, Expiration::Evicted);
            }
        }
        let flow = FlowState {
            key,
            flow_id: self.next_id,
            src_is_lo: forward,
            first_ns: t,
            last_ns: t,
            packets: [0; 2],
            bytes: [0; 2],
            tcp_flags: [0; 2],
            community_id: community_id_words(p),
            fin_seen: [false; 2],
            closed: false,
            statistics: self.opts.statistics.then(|| Box::new(FlowStatistics::default())),
            server_name: None,
        };
        self.next_id += 1;
        self.table.insert(flow, hash)
    }

    fn emit(&mut self, flow: FlowState, expiration: Expiration) {
        self.stats.flows += 1;
        self.out.push_back(FlowRecord { flow, expiration });
    }

    fn expire_idle(&mut self, t: i64) {
        while let Some(h) = self.table.head() {
            if t - self.table.flow(h).last_ns < self.opts.idle_timeout_ns {
                break;
            }
            let flow = self.table.remove(h);
            self.emit(flow, Expiration::Idle);
        }
    }

    fn expire_closed(&mut self, t: i64) {
        let grace = self.opts.tcp_close_grace_ns;
        while let Some(&(key, since)) = self.closing.front() {
            if t - since < grace {
                break;
            }
            self.closing.pop_front();
            let Some(idx) = self.table.get(&key) else { continue };
            let f = self.table.flow(idx);
            if !f.closed {
                continue;
            }
            if t - f.last_ns >= grace {
                let flow = self.table.remove(idx);
                self.emit(flow, Expiration::TcpClose);
            } else {
                // A trailing packet arrived after the close: wait from that one.
                let last = f.last_ns;
                self.closing.push_back((key, last));
            }
        }
    }
}
