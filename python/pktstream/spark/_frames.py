"""Raw frames read by Spark's Kafka source with ``includeHeaders=true``: the ``link_type`` and
``wirelen`` headers pktstream's producer writes (Apache Metron's layout), applied to decoded rows.

:func:`pktstream.decode_values` reads no headers: it decodes every frame as Ethernet and takes
``wirelen`` to be the captured length. That is right for most topics, and wrong for a loopback,
raw-IP or Linux-cooked capture. Here the frames whose ``link_type`` header is not Ethernet are
decoded again by pktstream's capture reader, from a small in-memory pcap of that link type, and
``link_type`` / ``wirelen`` come from the headers. Nothing per row happens in Python for Ethernet.
"""

from __future__ import annotations

import os
import struct
import tempfile
from typing import Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["header_ints", "apply_headers"]

ETHERNET = 1


def header_ints(headers: pa.Array, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(values, present)`` of an integer header per message, from Spark's ``headers`` column
    (``array<struct<key: string, value: binary>>``; decimal text values, the last one wins).

    Example:
        >>> h = pa.array([[{"key": "link_type", "value": b"101"}], None, []],
        ...              pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())])))
        >>> values, present = header_ints(h, "link_type")
        >>> values.tolist(), present.tolist()
        ([101, 0, 0], [True, False, False])
    """
    n = len(headers)
    values = np.zeros(n, np.int64)
    present = np.zeros(n, bool)
    if n == 0 or headers.null_count == n:
        return values, present
    flat = headers.flatten()
    parents = pc.list_parent_indices(headers).to_numpy()
    keys = flat.field("key")
    texts = flat.field("value")
    match = pc.fill_null(pc.equal(keys, name), False).to_numpy(zero_copy_only=False)
    for parent, text in zip(parents[match], texts.filter(pa.array(match)).to_pylist()):
        try:
            values[parent] = int(text.decode("ascii")) if text is not None else 0
            present[parent] = text is not None
        except (UnicodeDecodeError, ValueError):
            continue  # an unreadable header is as good as none: the frame keeps the defaults
    return values, present


def _pcap(frames: Sequence[bytes], ts_ns: np.ndarray, wirelen: np.ndarray, link_type: int) -> bytes:
    """A nanosecond pcap file of ``frames`` with one link type."""
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, link_type)]
    for frame, ts, orig in zip(frames, ts_ns.tolist(), wirelen.tolist()):
        out.append(struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000, len(frame), orig))
        out.append(frame)
    return b"".join(out)


def _read_frames(data: bytes, columns: Optional[Sequence[str]], addresses: str) -> pa.Table:
    import pktstream

    fd, path = tempfile.mkstemp(suffix=".pcap", prefix="pktstream-frames-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return pktstream.read_pcap(path, columns=columns, addresses=addresses)  # type: ignore[arg-type]
    finally:
        os.unlink(path)


def apply_headers(
    decoded: pa.RecordBatch,
    values: pa.Array,
    headers: pa.Array,
    columns: Optional[Sequence[str]],
    addresses: str = "string",
) -> pa.RecordBatch:
    """``decoded`` (one row per frame, from :func:`pktstream.decode_values`) with the ``link_type``
    and ``wirelen`` headers applied: non-Ethernet frames decoded again with their link type.
    ``frame_number`` and ``ts`` stay as decoded (message order, key timestamps)."""
    link, has_link = header_ints(headers, "link_type")
    wire, has_wire = header_ints(headers, "wirelen")
    n = decoded.num_rows
    caplen = pc.binary_length(values.cast(pa.binary())).to_numpy(zero_copy_only=False)
    caplen = np.nan_to_num(caplen.astype(np.float64)).astype(np.int64)
    wirelen = np.where(has_wire, wire, caplen)
    names = decoded.schema.names
    arrays = list(decoded.columns)
    other = np.flatnonzero(has_link & (link != ETHERNET))
    if len(other):
        if "ts" in names:
            ts = decoded.column(names.index("ts")).cast(pa.timestamp("ns", "UTC")).cast(pa.int64())
            ts_ns = np.nan_to_num(ts.to_numpy(zero_copy_only=False).astype(np.float64)).astype(np.int64)
        else:  # not asked for: the records' times do not reach the output
            ts_ns = np.zeros(n, np.int64)
        frames = values.cast(pa.binary()).to_pylist()
        order = np.arange(n)
        parts = []
        base = n
        for lt in np.unique(link[other]).tolist():
            rows = other[link[other] == lt]
            table = _read_frames(_pcap([frames[i] or b"" for i in rows.tolist()], ts_ns[rows], wirelen[rows], lt),
                                 columns, addresses)
            if table.num_rows != len(rows):
                continue  # the reader refused the link type: keep the Ethernet decoding
            parts.append(table)
            order[rows] = base + np.arange(len(rows))
            base += len(rows)
        if parts:
            redone = pa.concat_tables(parts).combine_chunks()
            take = pa.array(order)
            for k, name in enumerate(names):
                if name in ("frame_number", "ts", "_error", "_message") or name not in redone.schema.names:
                    continue
                merged = pa.concat_arrays([arrays[k], redone.column(name).combine_chunks().cast(arrays[k].type)])
                arrays[k] = merged.take(take)
    if "link_type" in names:
        k = names.index("link_type")
        current = pc.fill_null(arrays[k], ETHERNET).to_numpy(zero_copy_only=False)
        arrays[k] = pa.array(np.where(has_link, link, current), arrays[k].type)
    if "wirelen" in names:
        k = names.index("wirelen")
        arrays[k] = pa.array(wirelen, arrays[k].type)
    return pa.RecordBatch.from_arrays(arrays, names=names)
