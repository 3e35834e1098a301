"""pktstream.distance limits: max_group_events (top_k or skip) and MemoryError instead of an abort."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pytest
import scipy.spatial.distance as ssd
from pktstream import distance


def _top_k_oracle(ids: np.ndarray, x: np.ndarray, k: int, metric: str = "euclidean"):
    """scipy's cdist + argsort: pairs where one event is among the other's k nearest (by distance,
    then id), as (id_1, id_2, distance) sorted by (distance, id_1, id_2)."""
    order = np.argsort(ids, kind="stable")
    ids, x = ids[order], x[order]
    d = ssd.cdist(x, x, metric)
    m = len(ids)
    keep = set()
    for a in range(m):
        others = np.array([b for b in range(m) if b != a])
        nearest = others[np.lexsort((others, d[a, others]))][:k]
        keep.update((min(a, b), max(a, b)) for b in nearest)
    rows = sorted((d[a, b], a, b) for a, b in keep)
    return [(ids[a], ids[b], v) for v, a, b in rows]


def _events(seed=3, sizes=(("busy", 120), ("calm", 9), ("quiet", 2))):
    rng = np.random.default_rng(seed)
    keys = [k for k, n in sizes for _ in range(n)]
    n = len(keys)
    perm = rng.permutation(n)
    return pa.table({
        "ip": [keys[i] for i in perm],
        "id": rng.permutation(n) * 3 + 1,
        "a": rng.normal(size=n),
        "b": rng.normal(size=n) * 10,
    })


def _group(t: pa.Table, key: str):
    rows = t.filter(pa.compute.equal(t.column("ip"), key))
    return rows.column("id").to_numpy(), np.column_stack([rows.column("a").to_numpy(), rows.column("b").to_numpy()])


def _as_tuples(t: pa.Table, key: str):
    t = t.filter(pa.compute.equal(t.column("key"), key))
    return list(zip(t.column("id_1").to_pylist(), t.column("id_2").to_pylist(), t.column("distance").to_pylist()))


def _same(got, want):
    assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in want]
    np.testing.assert_allclose([v for *_, v in got], [v for *_, v in want], rtol=1e-12)


@pytest.mark.parametrize("top_k", [None, 3])
def test_large_group_gives_exactly_the_top_k_pairs_others_unaffected(top_k, caplog):
    t = _events()
    kw = dict(key="ip", id="id", features=["a", "b"], top_k=top_k)
    full = distance.pairs(t, **kw)
    with caplog.at_level(logging.WARNING, logger="pktstream.distance"):
        got = distance.pairs(t, max_group_events=100, **kw)
    k = top_k or distance.LARGE_GROUP_TOP_K
    _same(_as_tuples(got, "busy"), _top_k_oracle(*_group(t, "busy"), k))
    for key in ("calm", "quiet"):
        assert _as_tuples(got, key) == _as_tuples(full, key)
    if top_k is None:
        assert len(_as_tuples(got, "calm")) == 36  # still all pairs
    assert got.schema.metadata[b"pktstream.large_groups"] == b"1"
    assert got.schema.metadata[b"pktstream.large_group_events"] == b"120"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'busy' (120 events)" in warnings[0] and f"top_k={k}" in warnings[0]


def test_skip_mode_drops_the_group_and_counts_it(caplog):
    t = _events()
    kw = dict(key="ip", id="id", features=["a", "b"])
    full = distance.pairs(t, **kw)
    with caplog.at_level(logging.WARNING, logger="pktstream.distance"):
        got = distance.pairs(t, max_group_events=9, on_large_group="skip", **kw)
    assert _as_tuples(got, "busy") == []
    assert _as_tuples(got, "calm") == _as_tuples(full, "calm")  # 9 events: at the limit, not over
    assert _as_tuples(got, "quiet") == _as_tuples(full, "quiet")
    assert got.schema.metadata[b"pktstream.large_groups"] == b"1"
    assert "skipped" in caplog.records[0].getMessage()
    streamed = distance.iter_pairs(t, max_group_events=9, on_large_group="skip", **kw).read_all()
    assert streamed.num_rows == got.num_rows
    with pytest.raises(ValueError, match="on_large_group"):
        distance.pairs(t, max_group_events=9, on_large_group="drop", **kw)
    with pytest.raises(ValueError, match="max_group_events"):
        distance.pairs(t, max_group_events=-1, **kw)


def test_windowed_pairs_limit_per_key_and_window(caplog):
    rng = np.random.default_rng(8)
    n = 60  # key "a": 50 events in [0, 5s), 10 in [5s, 10s); key "b": 5 in [0, 5s)
    t = pa.table({
        "ip": ["a"] * n + ["b"] * 5,
        "id": np.arange(n + 5),
        "t": np.concatenate([rng.integers(0, 5 * 10**9, 50), rng.integers(5 * 10**9, 10**10, 10),
                             rng.integers(0, 5 * 10**9, 5)]),
        "a": rng.normal(size=n + 5),
        "b": rng.normal(size=n + 5),
    })
    w = distance.WindowedPairs("ip", ["a", "b"], "id", "t", "5s", max_group_events=20, on_large_group="top_k")
    assert distance.WindowedPairs("ip", ["a"], "id", "t", "5s")._options["max_group_events"] == 4_000
    with caplog.at_level(logging.WARNING, logger="pktstream.distance"):
        out = pa.concat_tables([w.push(t), w.flush()])
    assert (w.large_groups, w.large_group_events) == (1, 50)
    assert len(caplog.records) == 1 and "'a' (50 events)" in caplog.records[0].getMessage()
    first = out.filter(pa.compute.equal(out.column("window_start").cast(pa.int64()), 0))
    ids, x = _group(t.slice(0, 50), "a")
    _same(_as_tuples(first, "a"), _top_k_oracle(ids, x, 10))
    assert len(_as_tuples(first, "b")) == 10
    assert out.num_rows - first.num_rows == 45  # the second window of "a": all pairs
    s = distance.WindowedPairs("ip", ["a", "b"], "id", "t", "5s", max_group_events=20, on_large_group="skip")
    out = pa.concat_tables([s.push(t), s.flush()])
    assert out.num_rows == 10 + 45 and s.large_groups == 1


def test_absurd_requests_raise_memory_error_not_abort():
    # 300k rows x 1 feature: 45e9 distances, 360 GB, more than any machine here.
    with pytest.raises(MemoryError, match=r"pdist of 300000 rows: 44999850000 pairs would take 359998800000 bytes"):
        distance.pdist(np.zeros((300_000, 1)))
    with pytest.raises(MemoryError, match="max_group_events"):
        distance.cdist(np.zeros((300_000, 1)), np.zeros((300_000, 1)))
    # A broadcast view of 10^10 rows: even the float64 copy of the input is refused.
    with pytest.raises(MemoryError, match="copy of XA"):
        distance.cdist(np.broadcast_to(np.zeros((1, 1)), (10**10, 1)), np.zeros((2, 1)))
    # One group of 200k events, unsorted (sorted would be refused as too many to sort): 20e9 pairs.
    t = pa.table({"k": np.zeros(200_000, np.int64), "id": np.arange(200_000), "x": np.zeros(200_000)})
    with pytest.raises(MemoryError, match="group of 200000 events"):
        distance.pairs(t, key="k", id="id", features="x", sort=False)
    # The guard turns it into a cheap computation instead (skip: nothing computed at all).
    skipped = distance.pairs(t, key="k", id="id", features="x", sort=False, max_group_events=1000,
                             on_large_group="skip")
    assert skipped.num_rows == 0 and skipped.schema.metadata[b"pktstream.large_group_events"] == b"200000"
    # The interpreter is still fine.
    assert distance.pdist(np.array([[0.0], [3.0]])).tolist() == [3.0]


def test_cli_and_report_options():
    from pktstream import cli
    from pktstream.pipelines import PipelineReport

    assert cli._group_limit("none") is None and cli._group_limit("500") == 500
    args = cli.build_parser().parse_args(["distances", "-i", "in", "-o", "out", "--max-group-events", "100",
                                          "--on-large-group", "skip"])
    assert (args.max_group_events, args.on_large_group) == (100, "skip")
    args = cli.build_parser().parse_args(["distances", "-i", "in", "-o", "out"])
    assert (args.max_group_events, args.on_large_group) == (4000, "top_k")
    report = PipelineReport(events=10, windows=1, pairs=45, delivered=45, large_groups=2, large_group_events=9000)
    assert "2 large groups (9,000 events)" in str(report)
    assert "large" not in str(PipelineReport())
