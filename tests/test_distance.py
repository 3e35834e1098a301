"""pktstream.distance: exactness against scipy, grouped pairs against a plain reference, windows."""

from __future__ import annotations

import datetime as dt
import doctest
import itertools
import math

import numpy as np
import pyarrow as pa
import pytest
import scipy.spatial.distance as ssd
from pktstream import distance

METRICS = distance.METRICS


def _close(a: np.ndarray, b: np.ndarray, metric: str) -> None:
    """Equal to scipy within 1e-12 relative (NaN where scipy has NaN); cosine near 0 loses digits
    to the subtraction 1 - cos in both implementations, so it also gets a tiny absolute slack."""
    assert a.shape == b.shape and a.dtype == np.float64
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14 if metric == "cosine" else 0, equal_nan=True)


def _data(rng: np.random.Generator, n: int, d: int = 9) -> np.ndarray:
    return rng.normal(size=(n, d)) * rng.uniform(0.1, 1000, size=d)


@pytest.mark.parametrize("metric", METRICS)
def test_pdist_cdist_match_scipy_large_enough_to_thread(metric):
    rng = np.random.default_rng(1)
    x = _data(rng, 3000)
    _close(distance.pdist(x, metric), ssd.pdist(x, metric), metric)
    y = _data(rng, 700)
    _close(distance.cdist(x, y, metric), ssd.cdist(x, y, metric), metric)


@pytest.mark.parametrize("metric", METRICS)
def test_dtypes_and_memory_orders(metric):
    rng = np.random.default_rng(2)
    x64 = _data(rng, 200, 5)
    for x in [x64, np.asfortranarray(x64), x64.astype(np.float32), np.asfortranarray(x64.astype(np.float32)),
              x64[::2], x64[:, ::2]]:
        _close(distance.pdist(x, metric), ssd.pdist(x.astype(np.float64), metric), metric)
        _close(distance.cdist(x, x[:7], metric), ssd.cdist(x.astype(np.float64), x[:7].astype(np.float64), metric),
               metric)
    ints = rng.integers(-5, 5, size=(50, 3))
    _close(distance.pdist(ints, metric), ssd.pdist(ints.astype(float), metric), metric)
    assert distance.pdist(x64, metric, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("metric", METRICS)
def test_adversarial_inputs_follow_scipy(metric):
    cases = [
        np.zeros((5, 3)),
        np.array([[1.0, 2.0, 3.0]] * 4),  # duplicates
        np.array([[0.0, 0, 0], [1, 2, 3], [np.nan, 1, 1], [np.inf, 1, 1], [-np.inf, 0, 1], [2, 4, 6],
                  [1e300, -1e300, 1], [1e-300, 0, 0]]),
        np.zeros((1, 4)),
        np.zeros((0, 4)),
        np.zeros((3, 0)),
    ]
    with np.errstate(all="ignore"):
        for x in cases:
            want = ssd.pdist(x, metric)
            _close(distance.pdist(x, metric), want, metric)
            if len(x):
                _close(distance.cdist(x, x[::-1], metric), ssd.cdist(x, x[::-1], metric), metric)
    assert distance.pdist(np.zeros((0, 4)), metric).shape == (0,)
    assert distance.cdist(np.zeros((0, 4)), np.zeros((3, 4)), metric).shape == (0, 3)


def test_documented_nan_rules():
    x = np.array([[np.nan, 1.0], [0.0, 3.0], [0.0, 0.0]])
    assert distance.pdist(x, "chebyshev")[0] == 2.0  # NaN difference skipped, as scipy
    assert math.isnan(distance.pdist(x, "euclidean")[0])
    assert math.isnan(distance.pdist(x, "cosine")[2])  # zero vector


def test_arrow_and_list_inputs():
    rng = np.random.default_rng(3)
    x = _data(rng, 40, 3)
    table = pa.table({"a": x[:, 0], "b": pa.array(x[:, 1], pa.float32()), "c": x[:, 2]})
    want = ssd.pdist(np.column_stack([x[:, 0], x[:, 1].astype(np.float32), x[:, 2]]))
    _close(distance.pdist(table), want, "euclidean")
    _close(distance.pdist(table.to_batches()[0]), want, "euclidean")
    fsl = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 3)
    _close(distance.pdist(fsl), ssd.pdist(x), "euclidean")
    _close(distance.pdist(pa.table({"v": fsl})), ssd.pdist(x), "euclidean")
    _close(distance.pdist(x.tolist()), ssd.pdist(x), "euclidean")


def test_bad_input_raises_value_error():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match='unknown metric "manhattan".*euclidean, sqeuclidean, cityblock'):
        distance.pdist(x, "manhattan")
    with pytest.raises(ValueError, match="2-D"):
        distance.pdist(np.ones(3))
    with pytest.raises(ValueError, match="numeric"):
        distance.pdist(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="features"):
        distance.cdist(x, np.ones((2, 2)))
    with pytest.raises(ValueError, match="not numeric"):
        distance.pdist(pa.table({"a": ["x", "y"]}))


# ---- grouped pairs -----------------------------------------------------------------------------

def _reference(rows, metric="euclidean", window_ns=None, top_k=None, max_distance=None):
    """Plain-Python pairs: rows are dicts with key, id, t, x (list)."""
    def dist(a, b):
        with np.errstate(all="ignore"):
            return float(ssd.cdist([a["x"]], [b["x"]], metric)[0, 0])

    def sort_key(v):
        return (1, 0.0) if math.isnan(v) else (0, v)

    groups = {}
    for i, r in enumerate(rows):
        w = None if window_ns is None else (r["t"] // window_ns) * window_ns
        groups.setdefault((w, r["key"]), []).append((r["id"], i, r))
    out = []
    for (w, k) in sorted(groups, key=lambda g: (g[0] if g[0] is not None else 0, g[1] is None, g[1] or 0)):
        members = [r for _, _, r in sorted(groups[(w, k)], key=lambda m: (m[0], m[1]))]
        m = len(members)
        near = []
        for a in range(m):
            cand = sorted(((sort_key(dist(members[a], members[b])), b) for b in range(m) if b != a))
            near.append({b for _, b in cand[:top_k]} if top_k is not None else None)
        found = []
        for a, b in itertools.combinations(range(m), 2):
            v = dist(members[a], members[b])
            if top_k is not None and b not in near[a] and a not in near[b]:
                continue
            if max_distance is not None and not v <= max_distance:
                continue
            found.append((sort_key(v), a, b, v))
        found.sort()
        end = None if w is None else w + window_ns
        out += [(k, w, end, members[a]["id"], members[b]["id"], v) for _, a, b, v in found]
    return out


def _rows(table: pa.Table):
    ns = [None if t is None else t.value for t in table.column("window_start")]
    ne = [None if t is None else t.value for t in table.column("window_end")]
    return list(zip(table.column("key").to_pylist(), ns, ne, table.column("id_1").to_pylist(),
                    table.column("id_2").to_pylist(), table.column("distance").to_pylist()))


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:5] == w[:5], (g, w)
        assert (math.isnan(g[5]) and math.isnan(w[5])) or g[5] == pytest.approx(w[5], rel=1e-12, abs=1e-14)


def _events(n=300, keys=("10.0.0.1", "10.0.0.2", "192.168.1.7"), seed=4, integer=True):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=(n, 3)).astype(float) if integer else rng.normal(size=(n, 3))
    return pa.table({
        "src_ip": rng.choice(list(keys), n),
        "flow_id": rng.permutation(n) * 7,
        "ts": pa.array(rng.integers(0, 20 * 10**9, n), pa.int64()).cast(pa.timestamp("ns")),
        "f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2],
    })


def _as_rows(t: pa.Table):
    x = np.column_stack([t.column(f).to_numpy() for f in ("f0", "f1", "f2")])
    ts = t.column("ts").cast(pa.int64()).to_pylist()
    return [dict(key=k, id=i, t=s, x=list(v)) for k, i, s, v in
            zip(t.column("src_ip").to_pylist(), t.column("flow_id").to_pylist(), ts, x)]


FEATURES = ["f0", "f1", "f2"]


@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "chebyshev"])
@pytest.mark.parametrize("top_k,max_distance", [(None, None), (3, None), (None, 1.5), (2, 2.0)])
def test_pairs_match_reference_with_ties(metric, top_k, max_distance):
    events = _events()  # integer features: many tied distances, broken by (id_1, id_2)
    got = distance.pairs(events, key="src_ip", id="flow_id", features=FEATURES, metric=metric, top_k=top_k,
                         max_distance=max_distance, batch_size=1000)
    assert got.column_names == ["key", "window_start", "window_end", "id_1", "id_2", "distance"]
    assert got.schema.field("window_start").type == pa.timestamp("ns", tz="UTC")
    assert got.column("window_start").null_count == got.num_rows
    _same(_rows(got), _reference(_as_rows(events), metric, None, top_k, max_distance))
    if top_k is None and max_distance is None:
        assert got.num_rows == sum(c * (c - 1) // 2 for c in
                                   events.column("src_ip").value_counts().field("counts").to_pylist())


def test_pairs_with_windows_and_unsorted():
    events = _events(integer=False)
    for window in ["5s", 5 * 10**9, dt.timedelta(seconds=5), "5000ms"]:
        got = distance.pairs(events, key="src_ip", id="flow_id", features=FEATURES, time="ts", window=window)
        _same(_rows(got), _reference(_as_rows(events), window_ns=5 * 10**9))
    unsorted = distance.pairs(events, key="src_ip", id="flow_id", features=FEATURES, time="ts", window="5s",
                              sort=False)
    want = _reference(_as_rows(events), window_ns=5 * 10**9)
    assert sorted(_rows(unsorted)) == sorted(want)
    # unsorted: within a group, (id_1, id_2) order
    first = [(r[3], r[4]) for r in _rows(unsorted) if r[:2] == _rows(unsorted)[0][:2]]
    assert first == sorted(first)


def test_pairs_nan_features_sort_last_and_nulls_are_nan():
    t = pa.table({"k": [1, 1, 1, 1], "id": [1, 2, 3, 4], "x": pa.array([0.0, None, 2.0, float("nan")])})
    got = _rows(distance.pairs(t, key="k", id="id", features="x"))
    assert [(r[3], r[4], r[5]) for r in got[:1]] == [(1, 3, 2.0)]
    assert all(math.isnan(r[5]) for r in got[1:]) and len(got) == 6
    # NaN is never within max_distance, and is the farthest for top_k
    assert distance.pairs(t, key="k", id="id", features="x", max_distance=1e300).num_rows == 1
    # top_k=1: 1 and 3 are each other's nearest; the NaN events' nearest is the first id (all tied)
    top1 = _rows(distance.pairs(t, key="k", id="id", features="x", top_k=1))
    assert [(r[3], r[4]) for r in top1] == [(1, 3), (1, 2), (1, 4)]


def test_pairs_inputs_polars_pandas_and_key_types():
    import polars as pl
    events = _events(120, keys=(1, 2, 3))
    want = _rows(distance.pairs(events, key="src_ip", id="flow_id", features=FEATURES))
    assert _rows(distance.pairs(pl.from_arrow(events), key="src_ip", id="flow_id", features=FEATURES)) == want
    pdf = events.to_pandas()
    assert _rows(distance.pairs(pdf, key="src_ip", id="flow_id", features=FEATURES)) == want
    # string ids and dictionary keys keep their types
    t = pa.table({"k": pa.array(["b", "a", "b", "a"]).dictionary_encode(), "id": ["w", "x", "y", "z"],
                  "v": [0.0, 1.0, 3.0, 3.0]})
    got = distance.pairs(t, key="k", id="id", features=["v"])
    assert got.column("key").type == t.column("k").type and got.column("id_1").type == pa.string()
    assert _rows(got) == [("a", None, None, "x", "z", 2.0), ("b", None, None, "w", "y", 3.0)]


def test_pairs_normalize_and_iter_pairs():
    t = pa.table({"k": [0] * 5, "id": list(range(5)), "a": [0.0, 1, 2, 3, 4], "b": [0.0, 100, 200, 300, 400]})
    z = distance.pairs(t, key="k", id="id", features=["a", "b"], normalize="zscore")
    std = np.std([0.0, 1, 2, 3, 4])
    assert z.column("distance")[0].as_py() == pytest.approx(math.sqrt(2) / std)
    mm = distance.pairs(t, key="k", id="id", features=["a", "b"], normalize="minmax")
    assert mm.column("distance").to_pylist()[-1] == pytest.approx(math.sqrt(2))
    reader = distance.iter_pairs(t, key="k", id="id", features=["a"], batch_size=3)
    assert isinstance(reader, pa.RecordBatchReader)
    assert [b.num_rows for b in reader] == [3, 3, 3, 1]


def test_pairs_single_large_group_is_exact():
    rng = np.random.default_rng(5)
    n = 1200  # 719,400 pairs: the radix-sort path
    x = np.round(rng.normal(size=(n, 2)), 2)
    t = pa.table({"k": ["h"] * n, "id": rng.permutation(n), "a": x[:, 0], "b": x[:, 1]})
    got = distance.pairs(t, key="k", id="id", features=["a", "b"])
    ids = t.column("id").to_numpy()
    order = np.argsort(ids, kind="stable")
    d = ssd.pdist(x[order])
    i, j = np.triu_indices(n, 1)
    ref = np.lexsort((ids[order][j], ids[order][i], d))
    np.testing.assert_array_equal(got.column("id_1").to_numpy(), ids[order][i][ref])
    np.testing.assert_array_equal(got.column("id_2").to_numpy(), ids[order][j][ref])
    np.testing.assert_allclose(got.column("distance").to_numpy(), d[ref], rtol=1e-12)


def test_pairs_errors():
    t = pa.table({"k": [1, 1], "id": [1, 2], "x": [0.0, 1.0], "s": ["a", "b"]})
    kw = dict(key="k", id="id", features=["x"])
    with pytest.raises(ValueError, match="no column 'nope'"):
        distance.pairs(t, key="nope", id="id", features=["x"])
    with pytest.raises(ValueError, match="not numeric"):
        distance.pairs(t, key="k", id="id", features=["s"])
    with pytest.raises(ValueError, match="unknown metric"):
        distance.pairs(t, metric="hamming", **kw)
    with pytest.raises(ValueError, match="duration"):
        distance.pairs(t, time="k", window="5 parsecs", **kw)
    with pytest.raises(ValueError, match="time column"):
        distance.pairs(t, time="x", window="5s", **kw)
    with pytest.raises(ValueError, match="go together"):
        distance.pairs(t, window="5s", **kw)
    with pytest.raises(ValueError, match="window must be positive"):
        distance.pairs(t, time="k", window=0, **kw)
    with pytest.raises(ValueError, match="normalize"):
        distance.pairs(t, normalize="l2", **kw)
    with pytest.raises(ValueError, match="top_k"):
        distance.pairs(t, top_k=-1, **kw)


# ---- windowed ----------------------------------------------------------------------------------

def test_windowed_pairs_match_reference_and_count_late_events():
    events = _events(400, integer=False, seed=9)
    window, lateness = 5 * 10**9, 2 * 10**9
    w = distance.WindowedPairs("src_ip", FEATURES, "flow_id", "ts", "5s", allowed_lateness="2s")
    got, late_ref, on_time = [], 0, []
    watermark = None
    rows = _as_rows(events)
    # batches in time order with some shuffling inside each chunk: a few events come late
    order = np.argsort(events.column("ts").cast(pa.int64()).to_numpy() + np.random.default_rng(1).integers(
        0, 4 * 10**9, len(rows)))
    for chunk in np.array_split(order, 25):
        batch = events.take(pa.array(chunk))
        for i in chunk:
            start = rows[i]["t"] // window * window
            if watermark is not None and start + window <= watermark:
                late_ref += 1
            else:
                on_time.append(rows[i])
        ts = [rows[i]["t"] for i in chunk]
        watermark = max(watermark or -(2**63), max(ts) - lateness)
        out = w.push(batch)
        got += _rows(out)
        assert w.watermark == watermark
    got += _rows(w.flush())
    assert w.open_windows == 0
    assert late_ref > 0 and w.late_events == late_ref
    want = _reference(on_time, window_ns=window)
    _same(sorted(got, key=lambda r: (r[1], r[0])), sorted(want, key=lambda r: (r[1], r[0])))


def test_windowed_options_and_errors():
    w = distance.WindowedPairs("k", ["x"], "id", "t", window=dt.timedelta(seconds=1), top_k=1)
    assert w.watermark is None and w.flush().num_rows == 0
    t = pa.table({"k": [1, 1, 1], "id": [1, 2, 3], "t": [0, 1, 2], "x": [0.0, 5.0, 6.0]})
    assert w.push(t).num_rows == 0 and w.open_windows == 1
    assert _rows(w.flush()) == [(1, 0, 10**9, 2, 3, 1.0), (1, 0, 10**9, 1, 2, 5.0)]
    with pytest.raises(ValueError, match="window must be positive"):
        distance.WindowedPairs("k", ["x"], "id", "t", window=0)
    with pytest.raises(ValueError, match="unknown metric"):
        distance.WindowedPairs("k", ["x"], "id", "t", window="1s", metric="nope")
    with pytest.raises(ValueError, match="types changed"):
        w.push(pa.table({"k": ["a"], "id": [1], "t": [5], "x": [0.0]}))


def test_docstring_examples_run():
    result = doctest.testmod(distance, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 10
