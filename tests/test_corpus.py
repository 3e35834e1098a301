"""Every capture of the shared corpus: read without error (or rejected with FormatError when
broken), packet counts, gzip transparency, batching, and truncated tails.

A capture counts as broken when its manifest row says ``?`` or tshark cannot read it to its end
(today: ``gopacket/pcapgo__tests__be__test901.pcapng``, a second section header with major
version 2, and ``python-pcapng/test007.ntar``, whose first packet block's two total-length fields
disagree). ``pcap-parser/err-buffertoosmall.pcapng`` is *not* broken despite its name: it tests
a parser's buffer handling, and tshark and capinfos read its 27 packets. Without tshark, only
the manifest decides, and the checks against tshark's packet counts are left out.
"""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path
from typing import Any

import oracle
import pktstream
import pyarrow as pa
import pytest


def read_recording_warnings(path: Path, **options: Any) -> tuple[pa.Table, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = pktstream.read_pcap(path, **options)
    return table, [w for w in caught if issubclass(w.category, pktstream.TruncatedCaptureWarning)]


def test_reads_capture(capture: Any, tshark: Any) -> None:
    """A good capture reads whole, with the manifest's and tshark's packet count; a broken one
    raises FormatError."""
    result = tshark(capture.path)
    if capture.packets is None or result.rejected:
        check_broken(capture, result)
        return
    table, truncated = read_recording_warnings(capture.path)
    assert table.schema == pktstream.schema()
    assert table.num_rows == capture.packets, "manifest packet count"
    assert table.num_rows == len(oracle.packet_records(result.frames)), "tshark packet count"
    if result.cut_short:  # tshark reads what precedes a truncated tail
        assert truncated, "tshark says the file is cut short: expected TruncatedCaptureWarning"
    else:
        assert not truncated, f"unexpected warning: {truncated[0].message}"


def check_broken(capture: Any, result: oracle.TsharkResult) -> None:
    delivered = len(oracle.packet_records(result.frames))
    with pytest.raises(pktstream.FormatError) as info:
        pktstream.read_pcap(capture.path, strict=True)
    assert info.value.path is not None and isinstance(info.value.offset, int)
    # Without strict, the reader's documented rule for a corrupt structure *after* some packets
    # (PacketReader: "a truncated or corrupt tail ends the stream with a
    # TruncatedCaptureWarning") applies: the packets tshark delivers before its error, plus the
    # warning. Anything else (other rows, no warning) fails.
    try:
        table, truncated = read_recording_warnings(capture.path)
    except pktstream.FormatError:
        return
    message = (
        f"{table.num_rows} rows (tshark reads {delivered} before its error: "
        f"{result.error}), warnings: {[str(w.message) for w in truncated]}"
    )
    assert truncated and table.num_rows > 0, message
    assert table.num_rows == delivered, message


def test_gzip_is_transparent(good_capture: Any, tmp_path: Path) -> None:
    """A gzipped copy (or, for a .gz capture, the decompressed copy) reads to the same table."""
    capture = good_capture
    original = pktstream.read_pcap(capture.path)
    data = capture.path.read_bytes()
    copy = tmp_path / "copy"
    if data[:2] == b"\x1f\x8b":
        copy.write_bytes(gzip.decompress(data))
    else:
        with capture.path.open("rb") as src, gzip.open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst)
    assert pktstream.read_pcap(copy).equals(original)


def test_iter_batches_of_seven(good_capture: Any) -> None:
    capture = good_capture
    with pktstream.iter_batches(capture.path, batch_size=7) as reader:
        batches = list(reader)
        schema = reader.schema
    assert all(0 < batch.num_rows <= 7 for batch in batches)
    assert all(batch.schema == schema for batch in batches)
    whole = pktstream.read_pcap(capture.path)
    assert pa.Table.from_batches(batches, schema=schema).equals(whole)


def test_truncated_tail(good_capture: Any, tshark: Any, tmp_path: Path) -> None:
    """The capture (decompressed) minus its last 3 bytes: pktstream returns the packets tshark
    reads from it, identical to the full file's first rows, plus a TruncatedCaptureWarning;
    ``strict=True`` raises FormatError."""
    capture = good_capture
    data = capture.path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    cut = tmp_path / "cut"
    cut.write_bytes(data[:-3])
    result = tshark(cut)
    assert result.cut_short, f"tshark: {result.error}"
    expected_rows = len(oracle.packet_records(result.frames))
    with pytest.raises(pktstream.FormatError):
        pktstream.read_pcap(cut, strict=True)
    try:
        table, truncated = read_recording_warnings(cut)
    except pktstream.FormatError:
        # src/reader.rs: "a file that yields no packet at all before its problem is not a usable
        # capture". With no packet before the cut, an error carries the same data as an empty
        # table + warning would.
        assert expected_rows == 0, f"FormatError, but tshark reads {expected_rows} packets"
        return
    assert truncated, "expected TruncatedCaptureWarning"
    assert table.num_rows == expected_rows
    assert table.equals(pktstream.read_pcap(capture.path).slice(0, expected_rows))


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        pktstream.read_pcap(tmp_path / "does-not-exist.pcap")
