"""Consumer groups that rebalance: a member never commits a partition it lost (issue 10, part 5).

Against the session's real broker. Members use short session timeouts so rebalances take about a
second on Apache Kafka (``group.initial.rebalance.delay.ms=0`` on the test broker).
"""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from collections.abc import Callable

import pktstream
import pyarrow as pa
import pytest

SCHEMA = pa.schema({"n": pa.int64()})
FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int, start: int = 0) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + per_partition * partitions):
        p.produce(topic, json.dumps({"n": i}).encode(), partition=i % partitions)
    assert p.flush(30) == 0


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    """The group's committed next offset per partition (None: nothing committed)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        c.close()
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in got}


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "pktstream-test-watermarks"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def member(bootstrap: str, topic: str, group: str, **kw: object) -> pktstream.Consumer:
    config = dict(FAST)
    config.update(kw.pop("config", {}) or {})  # type: ignore[call-overload]
    return pktstream.Consumer(
        topic, group_id=group, bootstrap_servers=bootstrap, schema=SCHEMA, config=config, **kw  # type: ignore[arg-type]
    )


def poll_until(members: list[pktstream.Consumer], done: Callable[[], bool], seconds: float = 60.0) -> None:
    """Keeps every member polling (rebalances happen inside polls) until ``done()``."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the group did not settle in time"
        for m in members:
            m.read_batch(1, 0.1)  # rows read here are never committed: not "processed"


def test_commit_after_losing_partitions_leaves_them_to_the_new_owner(bootstrap: str, topic_factory) -> None:
    topic, group = topic_factory(partitions=4), f"pktstream-test-{uuid.uuid4().hex[:10]}"
    produce(bootstrap, topic, 4, 40)
    first = member(bootstrap, topic, group)
    try:
        seen: dict[int, int] = {}
        deadline = time.monotonic() + 60
        while len(seen) < 4 or min(seen.values()) < 39:
            assert time.monotonic() < deadline
            b = first.read_batch(1000, 0.5)
            for p, o in zip(b.column("_partition").to_pylist(), b.column("_offset").to_pylist()):
                seen[p] = max(seen.get(p, -1), o)
        second = member(bootstrap, topic, group)
        try:
            poll_until([first, second], lambda: len(second.assignment()) == 2 and len(first.assignment()) == 2)
            lost = sorted(p for _, p in second.assignment())
            # The new owner has processed the first five messages of its partitions and commits that.
            second.commit_offsets({(topic, p): 5 for p in lost})
            by_second = committed(bootstrap, group, topic, 4)
            assert all(by_second[p] == 5 for p in lost), by_second
            # The old owner commits everything it handed out: its lost partitions must be left alone.
            first.commit()
            after = committed(bootstrap, group, topic, 4)
            assert {p: after[p] for p in lost} == {p: by_second[p] for p in lost}, (lost, after, by_second)
        finally:
            second.close()
    finally:
        first.close()


def test_on_revoke_commits_before_the_partitions_go(bootstrap: str, topic_factory) -> None:
    topic, group = topic_factory(partitions=4), f"pktstream-test-{uuid.uuid4().hex[:10]}"
    produce(bootstrap, topic, 4, 25)
    revoked: list[list[tuple[str, int]]] = []
    assigned: list[list[tuple[str, int]]] = []

    def on_revoke(consumer: pktstream.Consumer, partitions: list[tuple[str, int]]) -> None:
        revoked.append(partitions)
        consumer.commit()  # everything returned was processed

    first = member(
        bootstrap, topic, group, on_revoke=on_revoke, on_assign=lambda c, ps: assigned.append(ps)
    )
    try:
        rows = 0
        deadline = time.monotonic() + 60
        while rows < 100:
            assert time.monotonic() < deadline
            rows += first.read_batch(1000, 0.5).num_rows
        second = member(bootstrap, topic, group)
        try:
            poll_until([first, second], lambda: len(second.assignment()) == 2 and len(first.assignment()) == 2)
            taken = sorted(p for _, p in second.assignment())
            # on_revoke committed all the old owner had returned, before the partitions moved.
            c = committed(bootstrap, group, topic, 4)
            assert all(c[p] == 25 for p in taken), (taken, c)
            assert revoked and assigned and assigned[0]
            assert first.revocations()[0] >= 1
            produce(bootstrap, topic, 4, 2, start=100)
            seen2: list[int] = []
            deadline = time.monotonic() + 30
            while len(seen2) < 4:
                assert time.monotonic() < deadline, seen2
                first.read_batch(1000, 0.1)
                seen2 += second.read_batch(1000, 0.1).column("_offset").to_pylist()
            # The new owner starts where the old one committed: nothing twice.
            assert sorted(seen2) == [25, 25, 26, 26], seen2
        finally:
            second.close()
    finally:
        first.close()


def test_rebalance_callback_errors_come_out_of_read_batch(bootstrap: str, topic_factory) -> None:
    topic, group = topic_factory(partitions=1), f"pktstream-test-{uuid.uuid4().hex[:10]}"

    def on_assign(consumer: pktstream.Consumer, partitions: list[tuple[str, int]]) -> None:
        raise RuntimeError("boom in on_assign")

    c = member(bootstrap, topic, group, on_assign=on_assign)
    try:
        with pytest.raises(RuntimeError, match="boom in on_assign"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                c.read_batch(10, 0.2)
    finally:
        c.close()


class Member(threading.Thread):
    """Reads, "processes" (records) each batch, commits after each; stops on request."""

    def __init__(self, name: str, make: Callable[[], pktstream.Consumer], log: list, max_rows: int) -> None:
        super().__init__(name=name, daemon=True)
        self.make, self.log, self.max_rows = make, log, max_rows
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.revocations = (0, 0)
        self.retried_commits = 0

    def run(self) -> None:
        try:
            with self.make() as c:
                while not self.stop.is_set():
                    b = c.read_batch(self.max_rows, 0.2)
                    if b.num_rows:
                        self.log.extend(
                            (self.name, p, o, n)
                            for p, o, n in zip(
                                b.column("_partition").to_pylist(),
                                b.column("_offset").to_pylist(),
                                b.column("n").to_pylist(),
                            )
                        )
                        try:
                            c.commit()
                        except pktstream.KafkaError as e:
                            if not e.retriable:  # a rebalance under way: commit after the next read
                                raise
                            self.retried_commits += 1
                self.revocations = c.revocations()
        except BaseException as e:  # noqa: BLE001 (reported by the test)
            self.error = e


@pytest.mark.parametrize(
    "members, strategy",
    [(2, "range"), (3, "range"), (3, "cooperative-sticky")],
)
def test_members_join_and_leave_while_a_producer_writes(
    bootstrap: str, topic_factory, members: int, strategy: str
) -> None:
    """Nothing lost; duplicates only within the at-least-once bound; committed == end offsets."""
    parts, per_round, rounds, max_rows = 4, 250, 16, 100
    topic, group = topic_factory(partitions=parts), f"pktstream-test-{uuid.uuid4().hex[:10]}"
    log: list = []
    config = {**FAST, "partition.assignment.strategy": strategy}

    def make() -> pktstream.Consumer:
        return member(bootstrap, topic, group, config=config)

    def producer() -> None:
        for r in range(rounds):
            produce(bootstrap, topic, parts, per_round, start=r * per_round * parts)
            time.sleep(0.75)

    writer = threading.Thread(target=producer, daemon=True)
    started = time.monotonic()
    writer.start()
    crew = [Member(f"m{i}", make, log, max_rows) for i in range(members)]
    # Staggered joins, then all but the last leave while the producer still writes.
    for i, m in enumerate(crew):
        m.start()
        time.sleep(2.5 if i < members - 1 else 0.5)
    for m in crew[:-1]:
        time.sleep(2.0)
        m.stop.set()
        m.join(30)
    writer.join(120)
    total = per_round * parts * rounds
    ends = end_offsets(bootstrap, topic, parts)
    assert sum(ends.values()) == total
    # The last member drains the topic and commits it all.
    deadline = time.monotonic() + 90
    while committed(bootstrap, group, topic, parts) != ends:
        assert time.monotonic() < deadline, (committed(bootstrap, group, topic, parts), ends)
        assert crew[-1].error is None, crew[-1].error
        time.sleep(0.5)
    crew[-1].stop.set()
    crew[-1].join(30)
    for m in crew:
        assert m.error is None, f"{m.name}: {m.error!r}"
    elapsed = time.monotonic() - started

    ns = collections.Counter(n for *_, n in log)
    assert set(ns) == set(range(total)), f"lost {total - len(set(ns))} messages"
    duplicates = sum(ns.values()) - total
    revocations = sum(m.revocations[0] for m in crew)
    # At-least-once bound: what a member had read but not committed when a partition left it
    # (at most the batch being built and the one being processed: 2 * max_rows per revocation).
    assert duplicates <= revocations * 2 * max_rows, (duplicates, revocations)
    print(
        f"\n{members} members, {strategy}: {total} messages in {elapsed:.1f} s, {duplicates} duplicates, "
        f"{revocations} revocations, {[m.revocations for m in crew]}, "
        f"{sum(m.retried_commits for m in crew)} commits refused during rebalances"
    )
