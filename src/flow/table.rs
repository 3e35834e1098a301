//! The active flows: slots holding the flows, linked in the order they were last updated, and a
//! hash index from key to slot. Event time only moves forward, so that order is last-seen order
//! and the idle flows are always at the head: expiry never scans the table.
//!
//! The index is a `hashbrown::HashTable` of slot numbers (4 bytes a bucket) whose keys live in
//! the slots, with each slot remembering its key's hash. A `HashMap<FlowKey, u32>` stored the
//! 40-byte key in every bucket: with a million short flows active its buckets spread over ~60 MB,
//! and ending a flow (a lookup by key in a cold table) took a sixth of the time. Measured on 1M
//! synthetic packets of ~970k flows by a one-off timing of `flows()`, back to back on one loaded
//! machine: 0.82M packets/s with the HashMap, 1.3M with this (`benches/bench_flows.py` on a quiet
//! machine: 1.64M).

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::key::{FlowKey, FxBuild};
use super::state::FlowState;

const NIL: u32 = u32::MAX;

struct Node {
    flow: Option<FlowState>,
    /// The hash of the flow's key, for removal and for growing the index.
    hash: u64,
    prev: u32,
    next: u32,
    /// The index holds this slot (false after [`FlowTable::forget_keys`]).
    keyed: bool,
}

#[derive(Default)]
pub(crate) struct FlowTable {
    index: HashTable<u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    /// Flows in the table (the index may hold fewer after [`Self::forget_keys`]).
    live: usize,
}

/// The hash of a key, as the index uses it.
#[inline]
pub(crate) fn key_hash(key: &FlowKey) -> u64 {
    FxBuild::default().hash_one(key)
}

impl FlowTable {
    pub(crate) fn new() -> Self {
        Self { head: NIL, tail: NIL, ..Default::default() }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The slot of the flow with `key` (whose hash is `hash`), if it is active.
    #[inline]
    pub(crate) fn find(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let nodes = &self.nodes;
        self.index
            .find(hash, |&i| {
                let n = &nodes[i as usize];
                n.hash == hash && n.flow.as_ref().is_some_and(|f| f.key == *key)
            })
            .copied()
    }

    #[inline]
    pub(crate) fn get(&self, key: &FlowKey) -> Option<u32> {
        self.find(key, key_hash(key))
    }

    #[inline]
    pub(crate) fn flow(&self, idx: u32) -> &FlowState {
        self.nodes[idx as usize].flow.as_ref().unwrap_or_else(|| unreachable!("linked slot holds a flow"))
    }

    #[inline]
    pub(crate) fn flow_mut(&mut self, idx: u32) -> &mut FlowState {
        self.nodes[idx as usize].flow.as_mut().unwrap_or_else(|| unreachable!("linked slot holds a flow"))
    }

    /// The least recently updated flow.
    #[inline]
    pub(crate) fn head(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// Adds a flow (not active yet; `hash` is its key's) as the most recently updated one.
    pub(crate) fn insert(&mut self, flow: FlowState, hash: u64) -> u32 {
        let node = Node { flow: Some(flow), hash, prev: NIL, next: NIL, keyed: true };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.link_tail(idx);
        let nodes = &self.nodes;
        self.index.insert_unique(hash, idx, |&i| nodes[i as usize].hash);
        self.live += 1;
        idx
    }

    /// Marks a flow as the most recently updated one.
    #[inline]
    pub(crate) fn touch(&mut self, idx: u32) {
        if self.tail != idx {
            self.unlink(idx);
            self.link_tail(idx);
        }
    }

    pub(crate) fn remove(&mut self, idx: u32) -> FlowState {
        self.unlink(idx);
        let node = &mut self.nodes[idx as usize];
        let flow = node.flow.take().unwrap_or_else(|| unreachable!("linked slot holds a flow"));
        if node.keyed {
            if let Ok(entry) = self.index.find_entry(node.hash, |&i| i == idx) {
                entry.remove();
            }
        }
        self.free.push(idx);
        self.live -= 1;
        flow
    }

    /// Drops the whole index at once, the flows staying linked in last-seen order, for emptying
    /// the table at the end of the input: [`Self::remove`] then skips the index per flow. Lookups
    /// find none of these flows any more; flows inserted afterwards are indexed as usual.
    pub(crate) fn forget_keys(&mut self) {
        self.index = HashTable::new();
        for node in &mut self.nodes {
            node.keyed = false;
        }
    }

    fn link_tail(&mut self, idx: u32) {
        let node = &mut self.nodes[idx as usize];
        node.prev = self.tail;
        node.next = NIL;
        match self.tail {
            NIL => self.head = idx,
            t => self.nodes[t as usize].next = idx,
        }
        self.tail = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let n = &self.nodes[idx as usize];
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }
}
