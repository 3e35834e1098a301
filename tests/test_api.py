"""The Python API's contract: return types, projections, options, interop and bad input."""

from __future__ import annotations

import gzip
import os
import struct
import threading
import warnings
from pathlib import Path

import pktstream
import pyarrow as pa
import pytest

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample.pcap"


def test_read_pcap_returns_a_table_with_the_packet_schema():
    table = pktstream.read_pcap(SAMPLE)
    assert isinstance(table, pa.Table)
    assert table.schema == pktstream.schema()
    assert table.num_rows == 200
    assert table.column("frame_number").to_pylist() == list(range(1, 201))
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert all(f.nullable for f in table.schema)


def test_schema_has_every_documented_core_column():
    core = ("ts caplen wirelen interface_id link_type eth_src eth_dst ethertype vlan_id inner_vlan_id "
            "ip_version src_ip dst_ip ip_proto ttl ip_len frag_offset more_fragments src_port dst_port "
            "tcp_flags tcp_seq tcp_ack tcp_window icmp_type icmp_code payload_len community_id tunnel "
            "outer_src_ip outer_dst_ip decode_status").split()
    names = pktstream.schema().names
    assert [c for c in core if c not in names] == []
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert [c for c in names if f"`{c}`" not in readme] == [], "every column is documented in the README"


def test_interop_pandas_polars_and_c_stream():
    import polars as pl
    table = pktstream.read_pcap(SAMPLE)
    df = table.to_pandas()
    assert len(df) == 200 and df["caplen"].sum() == pa.compute.sum(table["caplen"]).as_py()
    assert pl.from_arrow(table).height == 200
    # Any Arrow C stream consumer can take the reader itself, without pyarrow in between.
    streamed = pa.table(pktstream.iter_batches(SAMPLE, batch_size=33))
    assert streamed.equals(table)
    assert pl.from_arrow(pktstream.iter_batches(SAMPLE).to_pyarrow()).height == 200


def test_iter_batches_streams_in_batch_size_pieces():
    reader = pktstream.iter_batches(SAMPLE, batch_size=64)
    sizes = [b.num_rows for b in reader]
    assert sizes == [64, 64, 64, 8]
    assert reader.stats["packets"] == 200
    assert reader.stats["format"] == "pcap"
    assert reader.progress == 1.0
    # single use: a consumed reader yields nothing more
    assert reader.read_next_batch() is None


def test_projection_keeps_order_and_skips_the_rest():
    table = pktstream.read_pcap(SAMPLE, columns=["dst_port", "ts", "src_ip"])
    assert table.column_names == ["dst_port", "ts", "src_ip"]
    full = pktstream.read_pcap(SAMPLE)
    assert table.column("src_ip").equals(full.column("src_ip"))
    meta_only = pktstream.read_pcap(SAMPLE, columns=["caplen"])
    assert meta_only.column("caplen").equals(full.column("caplen"))


def test_binary_addresses():
    table = pktstream.read_pcap(SAMPLE, addresses="binary")
    assert table.schema.field("src_ip").type == pa.binary()
    assert table.schema.field("eth_src").type == pa.binary(6)
    strings = pktstream.read_pcap(SAMPLE)
    import ipaddress

    for raw, text in zip(table["src_ip"].to_pylist(), strings["src_ip"].to_pylist()):
        assert (raw is None) == (text is None)
        if raw is not None:
            assert ipaddress.ip_address(raw) == ipaddress.ip_address(text)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"columns": ["ts", "nope"]}, "unknown column"), ({"batch_size": 0}, "batch_size"),
     ({"addresses": "hex"}, "addresses"), ({"columns": ["ts", "ts"]}, "twice")],
)
def test_bad_options_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pktstream.read_pcap(SAMPLE, **kwargs)


def test_missing_file_and_directory():
    with pytest.raises(FileNotFoundError):
        pktstream.read_pcap(DATA / "does-not-exist.pcap")
    with pytest.raises(OSError):
        pktstream.read_pcap(DATA)


def test_not_a_capture_raises_format_error_with_path_and_offset(tmp_path):
    bad = tmp_path / "notes.pcap"
    bad.write_bytes(b"GIF89a this is not a capture")
    with pytest.raises(pktstream.FormatError) as info:
        pktstream.read_pcap(bad)
    assert info.value.offset == 0 and info.value.path == str(bad)
    assert "magic" in str(info.value) and str(bad) in str(info.value)
    assert isinstance(info.value, pktstream.PktstreamError) and isinstance(info.value, ValueError)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(pktstream.FormatError, match="too short"):
        pktstream.read_pcap(empty)


def _records(path: Path) -> list:
    """(offset, length) of each record of a little-endian microsecond pcap."""
    data = path.read_bytes()
    out, at = [], 24
    while at < len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        out.append((at, 16 + caplen))
        at += 16 + caplen
    return out


def test_truncated_last_record_warns_and_keeps_every_earlier_packet(tmp_path):
    records = _records(SAMPLE)
    last_at, last_len = records[-1]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(SAMPLE.read_bytes()[: last_at + last_len - 5])
    with pytest.warns(pktstream.TruncatedCaptureWarning, match="truncated record"):
        table = pktstream.read_pcap(cut)
    assert table.num_rows == 199
    assert table.equals(pktstream.read_pcap(SAMPLE).slice(0, 199))
    with pytest.raises(pktstream.FormatError, match="truncated") as info:
        pktstream.read_pcap(cut, strict=True)
    assert info.value.record == 200 and info.value.offset == last_at
    # In strict streaming mode the packets before the problem are still handed out first.
    reader = pktstream.iter_batches(cut, batch_size=150, strict=True)
    assert reader.read_next_batch().num_rows == 150
    assert reader.read_next_batch().num_rows == 49
    with pytest.raises(pktstream.FormatError):
        reader.read_next_batch()


def test_absurd_record_length_is_an_error_not_an_allocation(tmp_path):
    data = bytearray(SAMPLE.read_bytes())
    at, _ = _records(SAMPLE)[3]
    struct.pack_into("<I", data, at + 8, 0xFFFFFFF0)
    bad = tmp_path / "huge-length.pcap"
    bad.write_bytes(bytes(data))
    with pytest.warns(pktstream.TruncatedCaptureWarning, match="corrupt"):
        table = pktstream.read_pcap(bad)
    assert table.num_rows == 3
    with pytest.raises(pktstream.FormatError, match="corrupt"):
        pktstream.read_pcap(bad, strict=True)


def test_gzip_is_detected_from_bytes_not_name(tmp_path):
    disguised = tmp_path / "really-gzip.pcap"
    disguised.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    reader = pktstream.iter_batches(disguised)
    table = reader.read_all()
    assert reader.stats["gzip"] is True
    assert table.equals(pktstream.read_pcap(SAMPLE))
    corrupt = tmp_path / "corrupt.pcap.gz"
    blob = bytearray(gzip.compress(SAMPLE.read_bytes()))
    corrupt.write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.warns(pktstream.TruncatedCaptureWarning):
        part = pktstream.read_pcap(corrupt)
    assert 0 < part.num_rows < 200


def test_reads_from_a_fifo_with_the_gil_released(tmp_path):
    """The reader blocks on the FIFO in one thread while this thread (needing the GIL) feeds it."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = {}

    def read():
        result["table"] = pktstream.read_pcap(fifo)

    t = threading.Thread(target=read)
    t.start()
    with open(fifo, "wb") as w:  # blocks until the reader opened it: needs the GIL released there
        data = SAMPLE.read_bytes()
        for i in range(0, len(data), 4096):
            w.write(data[i : i + 4096])
            w.flush()
    t.join(timeout=60)
    assert not t.is_alive()
    assert result["table"].equals(pktstream.read_pcap(SAMPLE))


def test_pcapng_and_classic_pcap_agree(tmp_path):
    from pktstream.testing import synth

    a, b = tmp_path / "a.pcap", tmp_path / "b.pcapng"
    synth.write_pcap(a, 300, seed=3)
    synth.write_pcapng(b, 300, seed=3)
    ta, tb = pktstream.read_pcap(a), pktstream.read_pcap(b)
    assert ta.drop_columns(["interface_id"]).equals(tb.drop_columns(["interface_id"]))
    assert set(tb["interface_id"].to_pylist()) == {0}
    assert ta["interface_id"].null_count == 300


def test_other_link_types_keep_their_rows_with_a_status(tmp_path):
    data = bytearray(SAMPLE.read_bytes())
    struct.pack_into("<I", data, 20, 147)  # LINKTYPE_USER0
    odd = tmp_path / "user0.pcap"
    odd.write_bytes(bytes(data))
    table = pktstream.read_pcap(odd)
    assert table.num_rows == 200
    assert set(table["decode_status"].to_pylist()) == {"link: unsupported link type 147"}
    assert table["src_ip"].null_count == 200 and table["caplen"].null_count == 0


def _repeat_capture(src: Path, dst: Path, times: int) -> int:
    data = src.read_bytes()
    with open(dst, "wb") as f:
        f.write(data)
        for _ in range(times - 1):
            f.write(data[24:])
    return dst.stat().st_size


def test_ctrl_c_interrupts_a_long_read(tmp_path):
    import signal

    big = tmp_path / "big.pcap"
    _repeat_capture(SAMPLE, big, 5000)  # 1M packets, ~0.5 GB
    raised = threading.Event()

    def on_sigint(signum, frame):  # Ctrl-C, once; later signals of the burst are ignored
        if not raised.is_set():
            raised.set()
            raise KeyboardInterrupt

    def press_ctrl_c():  # keep pressing until the read notices: independent of machine load
        while not stop.wait(0.02):
            os.kill(os.getpid(), signal.SIGINT)

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, on_sigint)
    presser = threading.Thread(target=press_ctrl_c)
    try:
        presser.start()
        with pytest.raises(KeyboardInterrupt):
            pktstream.read_pcap(big, batch_size=4096)
    finally:
        stop.set()
        presser.join()
        signal.signal(signal.SIGINT, previous)
    assert raised.is_set()


def test_streaming_memory_stays_flat(tmp_path):
    """Streaming a ~600 MB capture keeps the peak RSS far below the file size."""
    import subprocess
    import sys

    big = tmp_path / "big.pcap"
    size = _repeat_capture(SAMPLE, big, 6000)
    code = (
        "import sys, pktstream\n"
        "def hwm():\n"
        "    return int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) * 1024\n"
        "base = hwm(); n = 0\n"
        "for b in pktstream.iter_batches(sys.argv[1]): n += b.num_rows\n"
        "print(n, hwm() - base)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(big)], capture_output=True, text=True, check=True)
    packets, growth = map(int, out.stdout.split())
    assert packets == 1_200_000
    assert growth < 200 * 2**20 < size


def test_native_stub_matches_module():
    """The .pyi stub describes the native module (mypy's stubtest)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "mypy.stubtest", "pktstream._native"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_package_type_checks():
    """mypy on the whole Python package (stubs included) finds nothing."""
    import subprocess
    import sys

    # By package name, so that an installed wheel's site-packages is not taken for a source root.
    out = subprocess.run([sys.executable, "-m", "mypy", "-p", "pktstream", "--ignore-missing-imports"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_warnings_are_not_repeated(tmp_path):
    records = _records(SAMPLE)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(SAMPLE.read_bytes()[: records[-1][0] + 3])
    reader = pktstream.iter_batches(cut)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(reader)
        reader.read_next_batch()
    assert len(caught) == 1


def test_read_ahead_path_equals_direct_path(tmp_path):
    """Large files are read ahead on a thread (chunk boundaries cut records); small ones are not."""
    big = tmp_path / "big.pcap"
    size = _repeat_capture(SAMPLE, big, 60)  # ~6 MB: read ahead
    small_gz = tmp_path / "big.pcap.gz"
    small_gz.write_bytes(gzip.compress(big.read_bytes()))  # compresses far below the threshold: direct
    assert size > 4 * 2**20 > small_gz.stat().st_size
    ahead, direct = pktstream.read_pcap(big), pktstream.read_pcap(small_gz)
    assert ahead.num_rows == 12_000
    assert ahead.equals(direct)
    assert ahead.slice(0, 200).drop_columns(["frame_number"]).equals(
        pktstream.read_pcap(SAMPLE).drop_columns(["frame_number"])
    )


def test_pcapng_interface_bomb_is_a_format_error_in_bounded_memory(tmp_path):
    """A gzip of 10M repeated interface blocks (~200 MB inflated) stops at the per-section cap."""
    import subprocess
    import sys

    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 65535) + struct.pack("<I", 20)
    bomb = tmp_path / "interfaces.pcapng.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        f.write(shb)
        chunk = idb * 100_000
        for _ in range(100):
            f.write(chunk)
    assert bomb.stat().st_size < 5 * 2**20
    code = (
        "import sys, pktstream\n"
        "def hwm():\n"
        "    return int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) * 1024\n"
        "base = hwm()\n"
        "try:\n"
        "    pktstream.read_pcap(sys.argv[1]); print('read', hwm() - base)\n"
        "except pktstream.FormatError as e:\n"
        "    print(e.offset, hwm() - base); print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, check=True)
    first, message = out.stdout.split("\n", 1)
    offset, growth = map(int, first.split())
    assert offset == 28 + 20 * 65536
    assert "more than 65536 interfaces" in message
    assert growth < 200 * 2**20


def test_file_and_live_readers_share_one_native_class_and_stop_ends_only_captures():
    """`pktstream.capture` and `iter_batches` wrap the same native class; on a file, `stop()`
    (a live capture's) changes nothing and the path stays a path."""
    from pktstream import _native

    assert not hasattr(_native, "NativeLiveReader")
    native = _native.NativeReader(SAMPLE, batch_size=64)
    native.stop()
    assert Path(native.path) == SAMPLE
    table = pa.table(native.read_all())
    assert table.num_rows == pktstream.read_pcap(SAMPLE).num_rows
    assert native.stats()["format"] == "pcap"
