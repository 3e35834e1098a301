#!/usr/bin/env python3
"""Regenerates fuzz/seeds/decode_messages/ (deterministic; needs pyarrow).

    /work/main/.venv/bin/python fuzz/seeds/make_message_seeds.py

Each seed is the decode_messages target's input: a format byte (0 json, 1 arrow, 2 raw, 3 binary;
+4: arrow with the fixed schema ``a: int64``), then messages separated by ``SEP``, each a control
byte (bit 0 tombstone, bit 1 key, bits 2-4 a header) followed by the value.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

HERE = Path(__file__).resolve().parent
OUT = HERE / "decode_messages"
SEP = b"\xff~\xff"


def ipc(table: pa.Table | pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write(table)
    return sink.getvalue().to_pybytes()


def seed(fmt: int, *values: bytes, ctl: int = 2) -> bytes:
    return bytes([fmt]) + SEP.join(bytes([ctl]) + v for v in values)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    ints = pa.record_batch({"a": pa.array([1, 2, None], pa.int64())})
    mixed = pa.record_batch(
        {
            "a": pa.array([1, 2], pa.int64()),
            "s": pa.array(["x", None], pa.string()),
            "l": pa.array([[1, 2], []], pa.list_(pa.int32())),
            "st": pa.array([{"u": 1}, None], pa.struct([("u", pa.int8())])),
            "d": pa.array(["p", "q"]).dictionary_encode(),
            "n": pa.nulls(2),
            "b": pa.array([True, False]),
        }
    )
    union = pa.record_batch(
        {"u": pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])])}
    )
    seeds = {
        "json_objects": seed(0, b'{"a":1}', b'{"a":"x","src_ip":"10.0.0.1","ts":"2024-01-01T00:00:00Z"}', b""),
        "json_mixed": seed(0, b'{"a":1}{"a":2}', b"[1]", b'{"ip_proto":6,"src_port":80}', b"{", ctl=0),
        "arrow_ints": seed(1, ipc(ints), ipc(ints)),
        "arrow_ints_schema": seed(5, ipc(ints), b"", ipc(ints)),
        "arrow_mixed": seed(1, ipc(mixed)),
        "arrow_union": seed(1, ipc(union)),
        "arrow_nulls": seed(1, ipc(pa.record_batch({"n": pa.nulls(1000)}))),
        "raw_frames": seed(2, bytes.fromhex("ffffffffffff000000000001080045000014000100004006") + bytes(20), b"", ctl=2),
        "binary_values": seed(3, b"abc", b"", b"\x00\xff", ctl=3),
    }
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
