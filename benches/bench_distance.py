"""Pairwise distances, side by side: scipy, scikit-learn, numpy, polars and pktstream.

Two netflow-like cases (9 features per event):
  (a) 10,000 events grouped by ~25 source IPs, ~2M pairs;
  (b) one source IP with 5,000 events in one window, 12,497,500 pairs.
Three tasks per case: distances only; all pairs with ids sorted by distance (the classic
pipeline's output); and the pruned variants top_k=10 and max_distance. Prints pairs/s and the
ratio of pktstream to each baseline. Same data for every tool, one process.

    python benches/bench_distance.py            # best of 3 (--repeat N: best of N)
    python benches/bench_distance.py --quick    # smaller cases, one run
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa
import scipy.spatial.distance as ssd
from pktstream import distance
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

FEATURES = [f"f{i}" for i in range(9)]


def events(n: int, ips: int, seed: int = 0) -> pa.Table:
    """Netflow-like events: log-normal bytes/packets/durations, ports, flags."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([
        rng.lognormal(7, 2, n), rng.lognormal(2, 1, n), rng.exponential(2.0, n), rng.integers(0, 65536, n),
        rng.integers(0, 1024, n), rng.integers(0, 64, n), rng.lognormal(5, 1, n), rng.uniform(0, 1, n),
        rng.poisson(3, n),
    ]).astype(np.float64)
    cols = {"src_ip": [f"10.0.{i // 256}.{i % 256}" for i in rng.integers(0, ips, n)],
            "flow_id": np.arange(n, dtype=np.int64)}
    cols.update({f: x[:, i] for i, f in enumerate(FEATURES)})
    return pa.table(cols)


def groups(t: pa.Table) -> list[tuple[str, np.ndarray, np.ndarray]]:
    df = pl.from_arrow(t)
    out = []
    for (k,), g in df.group_by("src_ip", maintain_order=True):
        out.append((k, g["flow_id"].to_numpy(), g.select(FEATURES).to_numpy()))
    return out


def best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t0)
    return min(times), n


# ---- distances only --------------------------------------------------------------------------

def scipy_dists(gs):
    return sum(len(ssd.pdist(x)) for _, _, x in gs)


def sklearn_dists(gs):
    return sum((len(x) * (len(x) - 1)) // 2 for _, _, x in gs if pairwise_distances(x, n_jobs=1) is not None)


def numpy_dists(gs):
    n = 0
    for _, _, x in gs:
        sq = np.einsum("ij,ij->i", x, x)
        for s in range(0, len(x), 512):  # row blocks: the full broadcast would not fit for case (b)
            blk = x[s:s + 512]
            d2 = sq[s:s + 512, None] + sq[None, :] - 2.0 * blk @ x.T
            np.sqrt(np.maximum(d2, 0, out=d2), out=d2)
        n += len(x) * (len(x) - 1) // 2
    return n


def pktstream_dists(gs):
    return sum(len(distance.pdist(x)) for _, _, x in gs)


# ---- all pairs with ids, sorted --------------------------------------------------------------

def scipy_sorted(gs):
    tables = []
    for k, ids, x in gs:
        d = ssd.pdist(x)
        i, j = np.triu_indices(len(x), 1)
        o = np.argsort(d, kind="stable")
        tables.append(pa.table({"key": pa.array([k] * len(o)), "id_1": ids[i[o]], "id_2": ids[j[o]],
                                "distance": d[o]}))
    return sum(t.num_rows for t in tables)


def polars_sorted(t: pa.Table):
    df = pl.from_arrow(t).lazy()
    dist = sum((pl.col(f) - pl.col(f"{f}_right")) ** 2 for f in FEATURES).sqrt().alias("distance")
    out = (df.join_where(df, pl.col("src_ip") == pl.col("src_ip_right"), pl.col("flow_id") < pl.col("flow_id_right"))
           .select(pl.col("src_ip").alias("key"), pl.col("flow_id").alias("id_1"),
                   pl.col("flow_id_right").alias("id_2"), dist)
           .sort(["key", "distance"]).collect())
    return out.height


def pktstream_sorted(t: pa.Table, **kw):
    return distance.pairs(t, key="src_ip", id="flow_id", features=FEATURES, **kw).num_rows


# ---- pruned ----------------------------------------------------------------------------------

def scipy_threshold(gs, r):
    n = 0
    for _, ids, x in gs:
        d = ssd.pdist(x)
        i, j = np.triu_indices(len(x), 1)
        keep = np.flatnonzero(d <= r)
        o = keep[np.argsort(d[keep], kind="stable")]
        n += len(pa.table({"id_1": ids[i[o]], "id_2": ids[j[o]], "distance": d[o]}))
    return n


def sklearn_topk(gs, k):
    n = 0
    for _, ids, x in gs:
        kk = min(k + 1, len(x))
        dist, idx = NearestNeighbors(n_neighbors=kk).fit(x).kneighbors(x)
        a = np.repeat(np.arange(len(x)), kk - 1)
        b = idx[:, 1:].ravel()
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        code, first = np.unique(lo.astype(np.int64) * len(x) + hi, return_index=True)
        d = dist[:, 1:].ravel()[first]
        o = np.argsort(d, kind="stable")
        n += len(pa.table({"id_1": ids[lo[first][o]], "id_2": ids[hi[first][o]], "distance": d[o]}))
    return n


def run_case(name: str, t: pa.Table, repeat: int) -> None:
    # features are scaled wildly differently (bytes vs flags): normalise once for every tool
    x = np.column_stack([t.column(f).to_numpy() for f in FEATURES])
    x = (x - x.mean(0)) / x.std(0)
    t = pa.table({"src_ip": t.column("src_ip"), "flow_id": t.column("flow_id"),
                  **{f: x[:, i] for i, f in enumerate(FEATURES)}})
    gs = groups(t)
    total = sum(len(g[1]) * (len(g[1]) - 1) // 2 for g in gs)
    r = float(np.quantile(ssd.pdist(gs[0][2][:2000]), 0.01))
    tasks = [
        ("distances only", [("scipy pdist", lambda: scipy_dists(gs)),
                            ("sklearn pairwise", lambda: sklearn_dists(gs)),
                            ("numpy (gram trick)", lambda: numpy_dists(gs)),
                            ("pktstream pdist", lambda: pktstream_dists(gs))]),
        ("all pairs, ids, sorted", [("scipy+argsort", lambda: scipy_sorted(gs)),
                                    ("polars join_where+sort", lambda: polars_sorted(t)),
                                    ("pktstream pairs", lambda: pktstream_sorted(t))]),
        ("top_k=10", [("sklearn NearestNeighbors", lambda: sklearn_topk(gs, 10)),
                      ("pktstream pairs", lambda: pktstream_sorted(t, top_k=10))]),
        ("max_distance (1% pairs)", [("scipy+filter+argsort", lambda: scipy_threshold(gs, r)),
                                     ("pktstream pairs", lambda: pktstream_sorted(t, max_distance=r))]),
    ]
    for task, tools in tasks:
        tools[-1][1]()  # warm up the native thread pool once
        results = [(tool, *best(fn, repeat)) for tool, fn in tools]
        ours = results[-1][1]
        for tool, secs, rows in results:
            ratio = "" if tool.startswith("pktstream") else f"{secs / ours:10.1f}x"
            print(f"{name:24} {task:28} {tool:22} {secs:9.3f} {total / secs / 1e6:9.1f} {ratio:>11}"
                  f"   ({rows:,} rows)")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller cases, one run each")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement, the best is kept (default 3)")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    cases = ([("a: 3k events / 25 IPs", events(3_000, 25)), ("b: 1 IP, 2,000 events", events(2_000, 1, 1))]
             if args.quick else
             [("a: 10k events / 25 IPs", events(10_000, 25)), ("b: 1 IP, 5,000 events", events(5_000, 1, 1))])
    print(f"machine: {os.cpu_count()} cores; pktstream threads: all; baselines single-threaded as shipped")
    print(f"{'case':24} {'task':28} {'tool':22} {'seconds':>9} {'Mpairs/s':>9} {'pktstream x':>11}")
    for name, t in cases:
        run_case(name, t, repeat)


if __name__ == "__main__":
    main()
