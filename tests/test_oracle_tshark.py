"""pktstream against tshark, field by field, on every capture of the shared corpus.

The expected values come from :mod:`oracle` (tshark 4.0 with reassembly off); its docstring and
tables say which tshark occurrence each column takes and where the contract differs from tshark.
A failure lists ``file frame column: ours=... tshark=...`` for the first mismatches.
"""

from __future__ import annotations

import ipaddress
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import oracle
import pyarrow as pa
import pytest

import pktstream

#: Every column of the contract, in schema order; all of them are compared.
COLUMNS: tuple[str, ...] = (
    "frame_number", "ts", "caplen", "wirelen", "interface_id", "link_type", *oracle.DECODE_COLUMNS,
    "decode_status",
)  # fmt: skip
ADDRESS_COLUMNS = frozenset({"src_ip", "dst_ip", "outer_src_ip", "outer_dst_ip"})
SHOWN = 20


def columns_as_python(table: pa.Table) -> dict[str, list[Any]]:
    """Each column as a Python list; ``ts`` as exact integer nanoseconds."""
    out = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        out[name] = column.to_pylist()
    return out


def compare(label: str, table: pa.Table, frames: list[oracle.Frame]) -> tuple[list[str], list[str]]:
    """(mismatches, oracle errors) between a pktstream table and tshark's packet records."""
    mismatches: list[str] = []
    errors: list[str] = []
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        mismatches.append(f"{label}: columns missing from the table: {missing}")
    if table.num_rows != len(frames):
        mismatches.append(f"{label}: {table.num_rows} rows, tshark {len(frames)} packets")
    ours = columns_as_python(table)
    for row, frame in enumerate(frames[: table.num_rows]):
        expected = oracle.expect(frame, row_number=row + 1)
        where = f"{label} frame {frame.number}"
        errors += [f"{where}: {e}" for e in expected.oracle_errors]
        for column in COLUMNS:
            if column not in ours:
                continue
            value, want = ours[column][row], expected.values[column]
            if not oracle.same(value, want, address=column in ADDRESS_COLUMNS):
                note = f" [{'; '.join(expected.notes)}]" if expected.notes else ""
                mismatches.append(
                    f"{where} {column}: ours={value!r} tshark={want!r} "
                    f"({':'.join(frame.chain)}){note}"
                )
            elif column in ADDRESS_COLUMNS and value is not None:
                # contract: addresses print as Python's ipaddress does (RFC 5952 for IPv6)
                if value != str(ipaddress.ip_address(value)):
                    mismatches.append(f"{where} {column}: {value!r} is not in canonical form")
    return mismatches, errors


def report(mismatches: list[str]) -> str:
    by_column = Counter(m.split(": ")[0].split(" ")[-1] for m in mismatches)
    head = "\n".join(mismatches[:SHOWN])
    more = f"\n... and {len(mismatches) - SHOWN} more" if len(mismatches) > SHOWN else ""
    return f"{len(mismatches)} mismatches (by column: {dict(by_column)}):\n{head}{more}"


def check_against_tshark(path: Path, label: str, result: oracle.TsharkResult) -> None:
    frames = oracle.packet_records(result.frames)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = pktstream.read_pcap(path)
    truncated = [w for w in caught if issubclass(w.category, pktstream.TruncatedCaptureWarning)]
    mismatches, errors = compare(label, table, frames)
    if result.cut_short and not truncated:
        mismatches.append(f"{label}: tshark says cut short, no TruncatedCaptureWarning")
    if truncated and not result.cut_short:
        mismatches.append(f"{label}: TruncatedCaptureWarning ({truncated[0].message}) but tshark "
                          "reads the whole file")  # fmt: skip
    assert not errors, "oracle errors (fix tests/oracle.py):\n" + "\n".join(errors[:SHOWN])
    assert not mismatches, report(mismatches)


def test_matches_tshark(capture: Any, tshark: Any) -> None:
    result = tshark(capture.path)
    if result.rejected:
        pytest.skip(f"tshark rejects the file ({result.error}); see test_corpus")
    check_against_tshark(capture.path, capture.rel, result)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_synthetic_capture_matches_tshark(fmt: str, tshark: Any, tmp_path: Path) -> None:
    """The corpus has no VLAN tags, fragments or GRE/VXLAN tunnels; pktstream.synth does."""
    synth = pytest.importorskip("pktstream.synth")
    path = tmp_path / f"synth.{fmt}"
    writer = synth.write_pcap if fmt == "pcap" else synth.write_pcapng
    writer(path, 3000, seed=11)
    check_against_tshark(path, path.name, tshark(path))


def test_community_id_reference_vectors() -> None:
    """The oracle's own Community ID (used where tshark's differs from the contract) against the
    values of the spec's reference implementation."""
    assert oracle.community_id(6, "128.232.110.120", "66.35.250.204", 34855, 80) == (
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    )
    assert oracle.community_id(17, "192.168.1.52", "8.8.8.8", 54585, 53) == (
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
    )
    assert oracle.community_id(1, "192.168.0.89", "192.168.0.1", 8, 0) == (
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
    )


def test_oracle_timestamps_are_exact() -> None:
    assert oracle.epoch_ns("1500000000.830079000") == 1_500_000_000_830_079_000
    assert oracle.epoch_ns("0.000000001") == 1
    assert oracle.epoch_ns("-1.500000000") == -1_500_000_000
    assert oracle.epoch_ns("") is None
