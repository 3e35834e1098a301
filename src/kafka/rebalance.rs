//! Consumer-group rebalances: what a member may still commit after partitions move.
//!
//! In a group, a partition belongs to one member at a time, but the broker does not check which
//! member commits a partition's offset: any live member of the current generation may. A member
//! that kept committing the offsets it handed out before losing a partition would move the new
//! owner's offsets (backwards, if the new owner had read further). So the consumer's offset book
//! lives here, in the rdkafka [`ConsumerContext`] whose rebalance callback runs inside `poll()`:
//!
//! - on **revoke** (every partition under the eager protocol; only the moving ones under
//!   `partition.assignment.strategy=cooperative-sticky`) the revoked partitions' offsets are
//!   forgotten, after an optional [`RebalanceHook`] had its last chance to commit them;
//! - commits never move a partition's offset below one this member handed out or committed before.
//!
//! rdkafka's default `rebalance` still does the (incremental) assign/unassign; this context only
//! hooks `pre_rebalance` and `post_rebalance`.
//!
//! Offsets are kept in two books: *pending* (read into the batch being built) and *returned*
//! (in a batch the caller has). Only returned offsets are committable: a revoke can arrive in the
//! middle of building a batch, and committing rows the caller never saw could lose them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::connection::ConnectionErrors;
use super::error::KafkaError;

/// Next offset per partition, per topic (looked up by `&str` without allocating).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Offsets(BTreeMap<String, BTreeMap<i32, i64>>);

impl Offsets {
    /// Raises the partition's offset to `next` (never lowers it).
    pub fn raise(&mut self, topic: &str, partition: i32, next: i64) {
        let parts = match self.0.get_mut(topic) {
            Some(p) => p,
            None => self.0.entry(topic.to_string()).or_default(),
        };
        let e = parts.entry(partition).or_insert(next);
        *e = (*e).max(next);
    }

    /// The partition's next offset, if recorded.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(topic).and_then(|p| p.get(&partition)).copied()
    }

    /// Forgets the partition (and the topic once it has none left).
    pub fn remove(&mut self, topic: &str, partition: i32) {
        if let Some(p) = self.0.get_mut(topic) {
            p.remove(&partition);
            if p.is_empty() {
                self.0.remove(topic);
            }
        }
    }

    /// Whether no offset is recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets every offset.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Every (topic, partition, next offset).
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.0.iter().flat_map(|(t, ps)| ps.iter().map(move |(p, o)| (t.as_str(), *p, *o)))
    }

    fn merge(&mut self, other: &Offsets) {
        for (t, p, o) in other.iter() {
            self.raise(t, p, o);
        }
    }
}

/// What a [`RebalanceHook`] asks to commit before partitions are revoked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HookCommit {
    /// Commit every returned offset (as [`super::Consumer::commit`] does).
    pub returned: bool,
    /// Commit these next offsets (as [`super::Consumer::commit_offsets`] does).
    pub offsets: Vec<(String, i32, i64)>,
}

/// Application callbacks around a rebalance (the Python `on_revoke` / `on_assign`).
///
/// They run inside `poll()`, on the thread reading, while the consumer is busy: they must not
/// call the consumer, only say what to commit.
pub trait RebalanceHook: Send + Sync {
    /// Partitions about to be revoked; the last moment their offsets can be committed.
    fn revoking(&self, partitions: &[(String, i32)]) -> HookCommit;
    /// Partitions newly assigned.
    fn assigned(&self, partitions: &[(String, i32)]);
}

/// The offset book and rebalance counters shared by the consumer and its context.
#[derive(Debug, Default)]
pub struct Book {
    /// Next offset after the messages in the batch being built.
    pub pending: Offsets,
    /// Next offset after the messages in batches already returned: what `commit()` commits.
    pub returned: Offsets,
    /// The highest offset this member committed per partition: commits never go below it.
    pub committed: Offsets,
    /// Revocations seen (each a rebalance that took partitions away).
    pub revocations: u64,
    /// Partitions revoked in all.
    pub revoked_partitions: u64,
    /// A commit asked for by the hook failed; raised by the next read.
    pub hook_error: Option<KafkaError>,
}

impl Book {
    /// The batch being built was handed to the caller.
    pub fn hand_out(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.returned.merge(&pending);
    }

    /// Forgets a partition that left this member.
    fn forget(&mut self, topic: &str, partition: i32) {
        self.pending.remove(topic, partition);
        self.returned.remove(topic, partition);
        self.revoked_partitions += 1;
    }

    /// `wanted` without what would not move any offset forward (at or below this member's earlier
    /// commits or returned offsets); `owned` filters to the partitions this member holds.
    pub fn forward_only(
        &self,
        wanted: &[(String, i32, i64)],
        owned: &dyn Fn(&str, i32) -> bool,
    ) -> Vec<(String, i32, i64)> {
        wanted
            .iter()
            .filter(|(t, p, o)| owned(t, *p) && self.committed.get(t, *p).is_none_or(|c| *o > c))
            .cloned()
            .collect()
    }
}

/// The consumer's rdkafka context: keeps the [`Book`] right across rebalances.
#[derive(Default)]
pub struct GroupContext {
    book: Arc<Mutex<Book>>,
    hook: Mutex<Option<Arc<dyn RebalanceHook>>>,
    /// TLS and SASL failures, to explain a metadata timeout (see [`super::connection`]).
    pub connection: ConnectionErrors,
}

impl GroupContext {
    /// A context sharing `book` with the consumer, without a hook.
    pub fn new(book: Arc<Mutex<Book>>) -> Self {
        Self { book, hook: Mutex::new(None), connection: ConnectionErrors::default() }
    }

    /// Sets (or with `None` removes) the callbacks run around rebalances.
    pub fn set_hook(&self, hook: Option<Arc<dyn RebalanceHook>>) {
        *lock(&self.hook) = hook;
    }

    fn hook(&self) -> Option<Arc<dyn RebalanceHook>> {
        lock(&self.hook).clone()
    }
}

/// A poisoned lock still holds a consistent book (every update is a single step).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pairs(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

/// Commits `offsets` synchronously and records them as committed.
pub fn commit_now<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    book: &Mutex<Book>,
    offsets: &[(String, i32, i64)],
) -> rdkafka::error::KafkaResult<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
    }
    consumer.commit(&tpl, CommitMode::Sync)?;
    let mut b = lock(book);
    for (t, p, o) in offsets {
        b.committed.raise(t, *p, *o);
    }
    Ok(())
}

impl ClientContext for GroupContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.connection.record(&error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let revoked = match rebalance {
            Rebalance::Revoke(tpl) => pairs(tpl),
            // rdkafka unassigns everything after an error: treat it as losing everything.
            Rebalance::Error(_) => {
                let mut b = lock(&self.book);
                b.pending.clear();
                b.returned.clear();
                b.revocations += 1;
                return;
            }
            Rebalance::Assign(_) => return,
        };
        // The revoked partitions are still ours until this returns: the hook's last chance.
        if let Some(hook) = self.hook() {
            let wanted = hook.revoking(&revoked);
            let mut offsets = wanted.offsets;
            if wanted.returned {
                let b = lock(&self.book);
                offsets.extend(b.returned.iter().map(|(t, p, o)| (t.to_string(), p, o)));
            }
            let owned = consumer.assignment().map(|a| pairs(&a)).unwrap_or_default();
            let offsets =
                lock(&self.book).forward_only(&offsets, &|t, p| owned.iter().any(|(ot, op)| ot == t && *op == p));
            if let Err(e) = commit_now(consumer, &self.book, &offsets) {
                lock(&self.book).hook_error = Some(KafkaError::from_rdkafka("commit before revoke", &e));
            }
        }
        let mut b = lock(&self.book);
        b.revocations += 1;
        for (t, p) in &revoked {
            b.forget(t, *p);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if let Some(hook) = self.hook() {
                hook.assigned(&pairs(tpl));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_only_rise() {
        let mut o = Offsets::default();
        o.raise("t", 0, 10);
        o.raise("t", 0, 5);
        o.raise("t", 1, 3);
        assert_eq!(o.get("t", 0), Some(10));
        o.remove("t", 0);
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![("t", 1, 3)]);
        o.remove("t", 1);
        assert!(o.is_empty());
    }

    #[test]
    fn pending_becomes_committable_only_when_handed_out() {
        let mut b = Book::default();
        b.pending.raise("t", 0, 7);
        assert!(b.returned.is_empty());
        b.hand_out();
        assert_eq!(b.returned.get("t", 0), Some(7));
        assert!(b.pending.is_empty());
    }

    #[test]
    fn revoked_partitions_are_forgotten_and_commits_never_go_backwards() {
        let mut b = Book::default();
        b.returned.raise("t", 0, 7);
        b.pending.raise("t", 0, 9);
        b.returned.raise("t", 1, 4);
        b.forget("t", 0);
        assert_eq!(b.returned.iter().collect::<Vec<_>>(), vec![("t", 1, 4)]);
        assert!(b.pending.is_empty());
        b.committed.raise("t", 1, 4);
        let wanted =
            vec![("t".to_string(), 1, 3), ("t".to_string(), 1, 4), ("t".to_string(), 2, 1), ("u".to_string(), 0, 1)];
        let kept = b.forward_only(&wanted, &|t, _| t == "t");
        assert_eq!(kept, vec![("t".to_string(), 2, 1)]);
    }
}
