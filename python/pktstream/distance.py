"""Pairwise distances: scipy-compatible ``pdist``/``cdist``, and grouped, windowed pairs as Arrow.

The kernels are native (Rust, multi-threaded, GIL released). ``pdist`` and ``cdist`` return what
``scipy.spatial.distance`` returns (same layout, values equal to ~1e-12 relative, same NaN and
infinity behaviour). ``pairs`` answers the netflow question directly: for every key (e.g. a
source IP) and window, every pair of events with its distance, sorted by distance, as a
``pyarrow.Table``; ``iter_pairs`` streams the same rows as record batches, and
:class:`WindowedPairs` does it incrementally over a stream of batches with event-time windows.

Metrics: ``euclidean``, ``sqeuclidean``, ``cityblock``, ``chebyshev``, ``cosine``. Computation is
always in float64 (float32 input is upcast, as scipy does).

NaN and infinity:
    * ``pdist``/``cdist`` follow scipy: NaN gives NaN (``chebyshev`` skips NaN differences, as
      scipy's does); a zero vector's ``cosine`` distance is NaN.
    * ``pairs``: a null or NaN feature gives NaN distances; NaN pairs sort after every number,
      are never within ``max_distance``, and count as the farthest for ``top_k``.

Example:
    >>> import numpy as np
    >>> from pktstream import distance
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    >>> distance.pdist(X).tolist()
    [5.0, 10.0, 5.0]
    >>> import pyarrow as pa
    >>> flows = pa.table({"src": ["a", "a", "a", "b"], "flow": [1, 2, 3, 4],
    ...                   "bytes": [10.0, 13.0, 30.0, 5.0], "pkts": [1.0, 5.0, 2.0, 1.0]})
    >>> t = distance.pairs(flows, key="src", id="flow", features=["bytes", "pkts"])
    >>> t.select(["key", "id_1", "id_2", "distance"]).to_pylist()[0]
    {'key': 'a', 'id_1': 1, 'id_2': 2, 'distance': 5.0}
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from collections.abc import Sequence
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _native
from ._types import Metric

__all__ = ["pdist", "cdist", "pairs", "iter_pairs", "WindowedPairs", "METRICS", "DEFAULT_MAX_GROUP_EVENTS",
           "LARGE_GROUP_TOP_K", "OnLargeGroup"]

#: The metric names accepted everywhere.
METRICS = ("euclidean", "sqeuclidean", "cityblock", "chebyshev", "cosine")

#: Default ``max_group_events`` of :class:`WindowedPairs` and the netflow pipeline. All pairs of a
#: group of ``m`` events are ``m(m-1)/2`` rows; in the pipeline's output (an IPv4 string key, two
#: 36-character string ids, two timestamps and the distance) a row costs ~125 bytes of Arrow, plus
#: 16 bytes per pair while the kernel sorts them. 4,000 events are 7,998,000 pairs: ~1.0 GB
#: (measured peak 1.0 GB above the interpreter's). 30,000 events would be 450M pairs, > 50 GB.
DEFAULT_MAX_GROUP_EVENTS = 4_000

#: ``top_k`` used for a group over ``max_group_events`` (``on_large_group="top_k"``) when no
#: ``top_k`` was given: at most ``10 m`` pairs instead of ``m(m-1)/2``.
LARGE_GROUP_TOP_K = 10

#: What to do with a group over ``max_group_events``: ``"top_k"`` keeps only each event's
#: ``top_k`` nearest (``top_k``, else :data:`LARGE_GROUP_TOP_K`), ``"skip"`` emits no pairs.
OnLargeGroup = Literal["top_k", "skip"]

log = logging.getLogger(__name__)

Duration = Union[str, int, _dt.timedelta, np.timedelta64]
_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
             "m": 60_000_000_000, "min": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}


def _matrix(x: Any, name: str = "X") -> np.ndarray:
    """Any supported 2-D input as a float32/float64 numpy array (not copied when already one)."""
    if isinstance(x, (pa.Array, pa.ChunkedArray)) and pa.types.is_fixed_size_list(x.type):
        return _fixed_size_list(x, name)
    if not isinstance(x, np.ndarray) and (hasattr(x, "__arrow_c_stream__") or hasattr(x, "__arrow_c_array__")):
        table = _table(x)
        if table.num_columns == 1 and pa.types.is_fixed_size_list(table.column(0).type):
            return _fixed_size_list(table.column(0), name)
        return _features(table, table.column_names)
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a 2-D array of numbers: {e}") from None
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows x features), got shape {a.shape}")
    if a.dtype in (np.float64, np.float32):
        return a
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    return a.astype(np.float64)


def _fixed_size_list(col: Union[pa.Array, pa.ChunkedArray], name: str) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    width = col.type.list_size
    if col.null_count:
        raise ValueError(f"{name}: null rows in a fixed-size-list column")
    values = pc.cast(col.flatten(), pa.float64()).to_numpy(zero_copy_only=False)
    return values.reshape(len(col), width)


def _table(data: Any) -> pa.Table:
    """Any Arrow-exportable table (pyarrow, polars, pandas via pyarrow) as a pyarrow Table."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    if hasattr(data, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(data)])
    raise ValueError(f"expected an Arrow table (pyarrow, polars, pandas), got {type(data).__name__}")


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise ValueError(f"no column {name!r}; the columns are {table.column_names}")
    return table.column(name)


def _features(table: pa.Table, names: Union[str, Sequence[str]]) -> np.ndarray:
    """Feature columns as an ``n x d`` float64 matrix; nulls become NaN."""
    if isinstance(names, str):
        col = _column(table, names)
        if pa.types.is_fixed_size_list(col.type):
            return _fixed_size_list(col, names)
        names = [names]
    if len(names) == 0:
        raise ValueError("features: at least one column")
    out = np.empty((table.num_rows, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        col = _column(table, name)
        t = col.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_decimal(t)):
            raise ValueError(f"feature column {name!r} is not numeric ({t})")
        out[:, j] = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    return out


def _duration_ns(value: Duration, what: str) -> int:
    """``"5s"``, ``"500ms"``, ``"1m"``, a timedelta, a numpy timedelta64 or integer ns, as ns."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a duration, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.timedelta64):
        return int(value.astype("timedelta64[ns]").astype(np.int64))
    if isinstance(value, _dt.timedelta):
        return (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(ns|us|µs|ms|s|min|m|h|d)\s*", value)
        if m:
            return round(float(m.group(1)) * _UNITS_NS[m.group(2)])
    raise ValueError(f"{what}: cannot read {value!r} as a duration (examples: '5s', '500ms', '1m', 10**9)")


def _time_ns(col: pa.ChunkedArray, name: str) -> np.ndarray:
    t = col.type
    if pa.types.is_timestamp(t):
        col = pc.cast(col, pa.timestamp("ns", tz=t.tz))
    elif not pa.types.is_integer(t):
        raise ValueError(f"time column {name!r} must be a timestamp or integer epoch ns, not {t}")
    if col.null_count:
        raise ValueError(f"time column {name!r} has {col.null_count} nulls")
    return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)


def _normalize(x: np.ndarray, how: Optional[str]) -> np.ndarray:
    if how is None:
        return x
    if how == "zscore":
        mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        return (x - mean) / np.where(std > 0, std, 1.0)
    if how == "minmax":
        lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
        return (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    raise ValueError(f"normalize must be None, 'zscore' or 'minmax', not {how!r}")


def _result(values: np.ndarray, dtype: Any) -> np.ndarray:
    return values if dtype is None else values.astype(dtype, copy=False)


def pdist(X: Any, metric: Metric = "euclidean", *, dtype: Any = None) -> np.ndarray:
    """Condensed pairwise distances between the rows of ``X``, as ``scipy.spatial.distance.pdist``.

    Args:
        X: ``n x d`` numbers: a numpy array (float64/float32, any memory order), a list of rows,
            or Arrow (a table/record batch of numeric columns, or a fixed-size-list column).
        metric: One of :data:`METRICS`.
        dtype: Cast the result to this dtype (the computation is always float64).

    Returns:
        The ``n(n-1)/2`` distances ``(0,1), (0,2), ..., (1,2), ...``.

    Raises:
        ValueError: unknown metric, input not 2-D or not numeric.

    Example:
        >>> from pktstream.distance import pdist
        >>> pdist([[0, 0], [1, 1], [2, 2]], "cityblock").tolist()
        [2.0, 4.0, 2.0]
    """
    return _result(_native.pdist(_matrix(X, "X"), metric), dtype)


def cdist(XA: Any, XB: Any, metric: Metric = "euclidean", *, dtype: Any = None) -> np.ndarray:
    """Distances between each row of ``XA`` and each row of ``XB``, as ``scipy.spatial.distance.cdist``.

    Args:
        XA: ``na x d`` numbers (same forms as :func:`pdist`).
        XB: ``nb x d`` numbers.
        metric: One of :data:`METRICS`.
        dtype: Cast the result to this dtype (the computation is always float64).

    Returns:
        An ``na x nb`` array.

    Example:
        >>> from pktstream.distance import cdist
        >>> cdist([[0.0, 0.0]], [[3.0, 4.0], [0.0, 1.0]]).tolist()
        [[5.0, 1.0]]
    """
    return _result(_native.cdist(_matrix(XA, "XA"), _matrix(XB, "XB"), metric), dtype)


def iter_pairs(
    data: Any,
    *,
    key: str,
    features: Union[str, Sequence[str]],
    id: str,
    time: Optional[str] = None,
    window: Optional[Duration] = None,
    metric: Metric = "euclidean",
    normalize: Optional[str] = None,
    top_k: Optional[int] = None,
    max_distance: Optional[float] = None,
    sort: bool = True,
    batch_size: int = 1_048_576,
    max_group_events: Optional[int] = None,
    on_large_group: OnLargeGroup = "top_k",
) -> pa.RecordBatchReader:
    """The rows of :func:`pairs`, streamed as record batches of at most ``batch_size`` rows.

    Groups are computed as batches are read, so the whole output never has to fit in memory;
    one group's pairs do (they are sorted together). See :func:`pairs` for the arguments (the
    large groups are logged, not counted in the schema metadata).

    Example:
        >>> import pyarrow as pa
        >>> from pktstream.distance import iter_pairs
        >>> t = pa.table({"k": [1, 1, 1], "i": ["x", "y", "z"], "f": [0.0, 1.0, 3.0]})
        >>> [b.num_rows for b in iter_pairs(t, key="k", id="i", features="f", batch_size=2)]
        [2, 1]
    """
    return _iter_pairs(data, key=key, features=features, id=id, time=time, window=window, metric=metric,
                       normalize=normalize, top_k=top_k, max_distance=max_distance, sort=sort,
                       batch_size=batch_size, max_group_events=max_group_events,
                       on_large_group=on_large_group)[0]


LargeGroups = List[Tuple[str, Optional[int], int]]


def _iter_pairs(data: Any, *, key: str, features: Union[str, Sequence[str]], id: str, time: Optional[str],
                window: Optional[Duration], metric: Metric, normalize: Optional[str], top_k: Optional[int],
                max_distance: Optional[float], sort: bool, batch_size: int, max_group_events: Optional[int],
                on_large_group: OnLargeGroup) -> Tuple[pa.RecordBatchReader, LargeGroups]:
    table = _table(data)
    x = _normalize(_features(table, features), normalize)
    cols = pa.table({"key": _column(table, key), "id": _column(table, id)})
    if (time is None) != (window is None):
        raise ValueError("time and window go together: give both or neither")
    time_ns = None if time is None else _time_ns(_column(table, time), time)
    window_ns = None if window is None else _duration_ns(window, "window")
    _check_options(top_k, max_distance, batch_size, max_group_events, on_large_group)
    stream, large = _native.pairs(cols, x, time=time_ns, window=window_ns, metric=metric, top_k=top_k,
                                  max_distance=max_distance, sort=sort, batch_size=batch_size,
                                  max_group_events=max_group_events, on_large_group=on_large_group)
    _log_large_groups(large, max_group_events, on_large_group, top_k)
    return pa.RecordBatchReader.from_stream(stream), large


def _log_large_groups(large: LargeGroups, limit: Optional[int], how: str, top_k: Optional[int]) -> None:
    """One warning per window that has groups over ``max_group_events``, naming their keys."""
    by_window: dict = {}
    for key, window, events in large:
        by_window.setdefault(window, []).append((key, events))
    action = "skipped" if how == "skip" else f"computed as top_k={top_k or LARGE_GROUP_TOP_K} only"
    for window, groups in by_window.items():
        shown = ", ".join(f"{k!r} ({n:,} events)" for k, n in groups[:10])
        more = f" and {len(groups) - 10} more" if len(groups) > 10 else ""
        where = "" if window is None else f"window {np.datetime64(window, 'ns')}Z: "
        log.warning("%s%d group(s) over max_group_events=%d %s: key %s%s", where, len(groups), limit, action,
                    shown, more)


def _check_options(top_k: Optional[int], max_distance: Optional[float], batch_size: int,
                   max_group_events: Optional[int] = None, on_large_group: str = "top_k") -> None:
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 0):
        raise ValueError(f"top_k must be a non-negative integer, not {top_k!r}")
    if max_group_events is not None and (isinstance(max_group_events, bool)
                                         or int(max_group_events) != max_group_events or max_group_events < 0):
        raise ValueError(f"max_group_events must be a non-negative integer or None, not {max_group_events!r}")
    if on_large_group not in ("top_k", "skip"):
        raise ValueError(f"on_large_group must be 'top_k' or 'skip', not {on_large_group!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}")
    if max_distance is not None and np.isnan(max_distance):
        raise ValueError("max_distance must be a number, not NaN")


def pairs(
    data: Any,
    *,
    key: str,
    features: Union[str, Sequence[str]],
    id: str,
    time: Optional[str] = None,
    window: Optional[Duration] = None,
    metric: Metric = "euclidean",
    normalize: Optional[str] = None,
    top_k: Optional[int] = None,
    max_distance: Optional[float] = None,
    sort: bool = True,
    batch_size: int = 1_048_576,
    max_group_events: Optional[int] = None,
    on_large_group: OnLargeGroup = "top_k",
) -> pa.Table:
    """Every pair of events that share a key (and a window), with its distance, sorted by distance.

    Each unordered pair appears once, as ``id_1, id_2`` with ``id_1 <= id_2`` (ids in value order;
    equal ids in input order). Output order: windows by start, then keys in value order (nulls
    last), then pairs by distance, ties by ``(id_1, id_2)``; with ``sort=False``, pairs in
    ``(id_1, id_2)`` order.

    Args:
        data: The events: a pyarrow Table or RecordBatch, a polars DataFrame, a pandas DataFrame,
            or anything exporting ``__arrow_c_stream__``.
        key: Group column (string, integer, ... any orderable type; nulls form one group).
        features: Numeric feature columns (or one fixed-size-list column); nulls become NaN.
        id: Event id column reported as ``id_1``/``id_2`` (any orderable type).
        time: Event time column (timestamp, or integer ns since the epoch); needs ``window``.
        window: Tumbling window length aligned to the epoch: ``"5s"``, ``"500ms"``, ``"1m"``, a
            ``timedelta`` or integer ns. Without it, all events of a key form one group.
        metric: One of :data:`METRICS`.
        normalize: ``None``, ``"zscore"`` (``(x - mean) / std`` per feature) or ``"minmax"``
            (``(x - min) / (max - min)``), computed over the whole input, NaN ignored; a constant
            feature becomes 0.
        top_k: Keep a pair only when one of its events is among the other's ``top_k`` nearest
            (nearest by ``(distance, id)``); so an event appears in at least ``min(top_k, m-1)``
            pairs of its group of ``m``, maybe more.
        max_distance: Keep a pair only when ``distance <= max_distance``.
        sort: Sort each group's pairs by distance (default).
        batch_size: Rows per record batch of the result.
        max_group_events: A ``(key, window)`` group with more events than this is *large*: it is
            not expanded to its ``m(m-1)/2`` pairs but handled as ``on_large_group`` says, logged
            (one warning per window, with the keys) and counted. ``None`` (default here): no limit.
        on_large_group: ``"top_k"`` (default): only each event's ``top_k`` nearest, ``top_k`` or
            else :data:`LARGE_GROUP_TOP_K` (10), at most ``m * k`` pairs (time stays ``m^2``
            distances, memory is linear); ``"skip"``: no pairs for that group.

    Returns:
        A table ``key, window_start, window_end, id_1, id_2, distance``; the window columns are
        ``timestamp[ns, UTC]``, null without a window. With ``max_group_events``, the schema
        metadata holds ``pktstream.large_groups`` and ``pktstream.large_group_events`` (counts as
        strings).

    Memory: with ``top_k`` or ``max_distance`` no group's ``m x m`` matrix is ever built (one row
    of distances per thread). Without them, the result has ``m(m-1)/2`` rows per group, and one
    group's pairs are held together (~16 bytes per pair) while they are sorted; use
    :func:`iter_pairs` to stream the result. Every allocation that grows with the groups is
    fallible: what cannot be had raises ``MemoryError`` (nothing aborts).

    Raises:
        ValueError: unknown metric or column, non-numeric feature, bad window or option.
        MemoryError: a group's pairs (or their sort buffers) do not fit in memory; the message
            says how many bytes. Use ``max_group_events``, ``top_k`` or ``max_distance``.

    Example:
        >>> import pyarrow as pa
        >>> from pktstream.distance import pairs
        >>> events = pa.table({
        ...     "ip": ["10.0.0.1"] * 4,
        ...     "ts": pa.array([0, 1, 2, 6], pa.int64()).cast(pa.timestamp("s")),
        ...     "id": [1, 2, 3, 4],
        ...     "x": [0.0, 1.0, 5.0, 7.0],
        ... })
        >>> t = pairs(events, key="ip", id="id", features=["x"], time="ts", window="5s")
        >>> [(r["id_1"], r["id_2"], r["distance"]) for r in t.to_pylist()]
        [(1, 2, 1.0), (2, 3, 4.0), (1, 3, 5.0)]
        >>> str(t.column("window_end")[0])
        '1970-01-01 00:00:05+00:00'
    """
    reader, large = _iter_pairs(data, key=key, features=features, id=id, time=time, window=window,
                                metric=metric, normalize=normalize, top_k=top_k, max_distance=max_distance,
                                sort=sort, batch_size=batch_size, max_group_events=max_group_events,
                                on_large_group=on_large_group)
    table = reader.read_all()
    if max_group_events is not None:
        table = table.replace_schema_metadata({"pktstream.large_groups": str(len(large)),
                                               "pktstream.large_group_events": str(sum(n for *_, n in large))})
    return table


class WindowedPairs:
    """Pairs per key over event-time tumbling windows, fed batch by batch (e.g. from Kafka).

    Rows are buffered per window ``[k * window, (k + 1) * window)`` (aligned to the epoch). The
    watermark is the largest event time seen minus ``allowed_lateness``; after each :meth:`push`,
    the windows whose end is at or before the watermark close and their pairs are returned (same
    columns and order as :func:`pairs`). Rows of one push are judged against the watermark from
    before that push. A row whose window end is at or before that watermark is late: it is not
    paired, and counted in :attr:`late_events`. :meth:`flush` closes every open window.

    Args:
        key: Group column.
        features: Numeric feature columns (or one fixed-size-list column).
        id: Event id column.
        time: Event time column (timestamp, or integer ns since the epoch).
        window: Window length (``"5s"``, ``timedelta``, integer ns, ...).
        allowed_lateness: How far behind the largest time seen a row may still be on time.
        metric, top_k, max_distance, batch_size: As in :func:`pairs`.
        max_group_events: Groups (key x window) with more events are not expanded to all pairs
            (see :func:`pairs`); default :data:`DEFAULT_MAX_GROUP_EVENTS` (4,000 events, ~8M pairs,
            ~1 GB of output), ``None`` for no limit. Counted in :attr:`large_groups` and
            :attr:`large_group_events`, and logged once per closed window with the keys.
        on_large_group: ``"top_k"`` (default) or ``"skip"``, as in :func:`pairs`.

    Example:
        >>> import pyarrow as pa
        >>> from pktstream.distance import WindowedPairs
        >>> w = WindowedPairs("ip", ["x"], "id", "t", window=10, allowed_lateness=0)
        >>> def batch(ids, t, x):
        ...     return pa.table({"ip": ["a"] * len(ids), "id": ids, "t": t, "x": x})
        >>> w.push(batch([1, 2], [1, 2], [0.0, 3.0])).num_rows     # window [0, 10) still open
        0
        >>> w.push(batch([3], [12], [9.0])).to_pylist()[0]["distance"]  # watermark 12: it closes
        3.0
        >>> w.push(batch([4], [5], [1.0])).num_rows, w.late_events     # too late for [0, 10)
        (0, 1)
        >>> w.flush().num_rows, w.open_windows                          # [10, 20) has one event
        (0, 0)
    """

    def __init__(
        self,
        key: str,
        features: Union[str, Sequence[str]],
        id: str,
        time: str,
        window: Duration,
        *,
        allowed_lateness: Duration = "0s",
        metric: Metric = "euclidean",
        top_k: Optional[int] = None,
        max_distance: Optional[float] = None,
        batch_size: int = 1_048_576,
        max_group_events: Optional[int] = DEFAULT_MAX_GROUP_EVENTS,
        on_large_group: OnLargeGroup = "top_k",
    ) -> None:
        self.key, self.id, self.time = key, id, time
        self.features = [features] if isinstance(features, str) else list(features)
        self._n_features: Optional[int] = None
        _check_options(top_k, max_distance, batch_size, max_group_events, on_large_group)
        self._large = (max_group_events, on_large_group, top_k)
        self._options: Dict[str, Any] = dict(allowed_lateness=_duration_ns(allowed_lateness, "allowed_lateness"),
                             metric=metric, top_k=top_k, max_distance=max_distance, batch_size=batch_size,
                             max_group_events=max_group_events, on_large_group=on_large_group)
        self._window = _duration_ns(window, "window")
        # Checks window, lateness and metric now; rebuilt once the feature count is known.
        self._native = _native.NativeWindowedPairs(self._window, len(self.features), **self._options)

    def push(self, batch: Any) -> pa.Table:
        """Buffers a batch of events; returns the pairs of the windows that closed (maybe none)."""
        table = _table(batch)
        features_arg = self.features[0] if len(self.features) == 1 else self.features
        x = _features(table, features_arg)
        if self._n_features is None:
            self._n_features = x.shape[1]
            if x.shape[1] != len(self.features):
                self._native = _native.NativeWindowedPairs(self._window, x.shape[1], **self._options)
        cols = pa.table({"key": _column(table, self.key), "id": _column(table, self.id)})
        t = _time_ns(_column(table, self.time), self.time)
        out = pa.table(self._native.push(cols, t, x))
        self._log_large()
        return out

    def flush(self) -> pa.Table:
        """Closes every open window and returns their pairs."""
        out = pa.table(self._native.flush())
        self._log_large()
        return out

    def _log_large(self) -> None:
        large = self._native.take_large_groups()
        if large:
            _log_large_groups(large, *self._large)

    @property
    def large_groups(self) -> int:
        """(key, window) groups over ``max_group_events`` in the windows closed so far."""
        return self._native.large_groups

    @property
    def large_group_events(self) -> int:
        """Events of those groups."""
        return self._native.large_group_events

    @property
    def late_events(self) -> int:
        """Events that arrived after their window had closed (not paired)."""
        return self._native.late_events

    @property
    def open_windows(self) -> int:
        """Windows holding events, not yet closed."""
        return self._native.open_windows

    @property
    def watermark(self) -> Optional[int]:
        """Largest event time seen minus the allowed lateness, in ns since the epoch (None before any)."""
        return self._native.watermark
