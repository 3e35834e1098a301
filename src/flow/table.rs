//! The active flows: a hash map from key to a slab slot, the slots linked in the order they were
//! last updated. Event time only moves forward, so that order is last-seen order and the idle
//! flows are always at the head: expiry never scans the table.

use std::collections::HashMap;

use super::key::{FlowKey, FxBuild};
use super::state::FlowState;

const NIL: u32 = u32::MAX;

struct Node {
    flow: Option<FlowState>,
    prev: u32,
    next: u32,
}

#[derive(Default)]
pub(crate) struct FlowTable {
    map: HashMap<FlowKey, u32, FxBuild>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
}

impl FlowTable {
    pub(crate) fn new() -> Self {
        Self { head: NIL, tail: NIL, ..Default::default() }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[inline]
    pub(crate) fn get(&self, key: &FlowKey) -> Option<u32> {
        self.map.get(key).copied()
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

    /// Adds a flow as the most recently updated one.
    pub(crate) fn insert(&mut self, flow: FlowState) -> u32 {
        let key = flow.key;
        let node = Node { flow: Some(flow), prev: NIL, next: NIL };
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
        self.map.insert(key, idx);
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
        let flow = self.nodes[idx as usize].flow.take().unwrap_or_else(|| unreachable!("linked slot holds a flow"));
        self.map.remove(&flow.key);
        self.free.push(idx);
        flow
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
