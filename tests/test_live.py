"""Live capture on a veth pair whose far end sits in a network namespace the test creates.

The near end (captured) stays in the test's namespace *without any address*: nothing is routed
through it and the host's networking is untouched. The far end lives in a fresh namespace with
private addresses (10.x, fd00::/8); the sender there has static neighbour entries for the near
end, so its packets go out on the link (and are captured) although nobody answers them.
Needs root and iproute2 (``ip netns``), as on CI: without them these tests fail, they do not skip.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pktstream
import pyarrow as pa
import pytest
from veth import EXPECTED, Veth, needs_root_and_iproute2, packet_sockets, send, wait_for_capture  # noqa: F401


def _ours(table: pa.Table, v: Veth) -> list[dict]:
    """Rows sent by the far end's addresses (drops anything else the kernel may emit)."""
    rows = [r for r in table.to_pylist() if r["src_ip"] in (v.far4, v.far6)]
    # A reset may follow a SYN (SO_LINGER 0): keep the SYNs only, as sent.
    return [r for r in rows if r["ip_proto"] != 6 or r["tcp_flags"] == 0x02]


def _check(rows: list[dict], v: Veth) -> None:
    def key(t: tuple) -> tuple:
        return tuple(-1 if x is None else x for x in t)

    got = [(r["ip_version"], r["ip_proto"], r["src_port"], r["dst_port"], r["vlan_id"], r["wirelen"]) for r in rows]
    assert sorted(got, key=key) == sorted(EXPECTED, key=key)
    for r in rows:
        assert r["caplen"] == r["wirelen"]
        assert r["link_type"] == 1
        assert r["decode_status"] is None
        assert r["eth_src"] == v.far_mac and r["eth_dst"] == v.near_mac
        want_dst = v.near4 if r["ip_version"] == 4 else v.near6
        assert r["dst_ip"] == want_dst
        if r["ip_proto"] in (1, 58):
            assert r["icmp_type"] == (8 if r["ip_proto"] == 1 else 128)


def test_capture_with_bpf_filter(veth: Veth) -> None:
    bpf = f"src host {veth.far4} or src host {veth.far6} or vlan"
    with pktstream.capture(veth.near, bpf=bpf, timeout=0.05) as reader:
        send(veth)
        time.sleep(0.3)
        reader.stop()
        table = reader.read_all()
    rows = _ours(table, veth)
    _check(rows, veth)
    # Nothing but the sender's packets passed the filter.
    assert all(r["src_ip"] in (veth.far4, veth.far6) for r in table.to_pylist())
    stats = reader.stats
    assert stats["packets"] == table.num_rows
    assert stats["dropped_kernel"] == 0 and stats["dropped_pktstream"] == 0
    assert stats["received"] >= table.num_rows
    assert stats["timestamp_precision"] == "ns"
    ts = table.column("ts").to_pylist()
    assert ts == sorted(ts) and abs(ts[0].timestamp() - time.time()) < 30


def test_capture_without_filter_max_packets(veth: Veth) -> None:
    reader = pktstream.capture(veth.near, max_packets=len(EXPECTED), timeout=0.05)
    send(veth)
    table = reader.read_all()
    assert table.num_rows == len(EXPECTED)
    rows = _ours(table, veth)
    # The far end's own chatter (e.g. IPv6 multicast listener reports) may sneak in between;
    # every packet of ours that was captured is exactly as sent.
    assert len(rows) >= len(EXPECTED) - 2
    reader.close()
    assert reader.stats["packets"] == len(EXPECTED)


def test_capture_without_filter_duration(veth: Veth) -> None:
    started = time.monotonic()
    reader = pktstream.capture(veth.near, duration=1.0, timeout=0.05, columns=None)
    send(veth, delay=0.2, wait=False).wait(timeout=30)
    table = reader.read_all()
    assert 0.9 < time.monotonic() - started < 5
    _check(_ours(table, veth), veth)


def test_quiet_link_delivers_partial_batches_promptly(veth: Veth) -> None:
    bpf = f"udp and src host {veth.far4}"
    with pktstream.capture(veth.near, bpf=bpf, timeout=0.1, batch_size=1000) as reader:
        sender = veth.run(
            f"""
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            time.sleep(0.3)
            for i in range(3):
                s.sendto(b"x", ({veth.near4!r}, 9999))
                time.sleep(0.4)
            """,
            wait=False,
        )
        first = reader.read_next_batch()
        seen = time.monotonic()
        assert first is not None and 1 <= first.num_rows < 1000
        # The rest arrives in short batches too, well before batch_size packets.
        got = first.num_rows
        while got < 3:
            b = reader.read_next_batch()
            assert b is not None
            got += b.num_rows
        assert time.monotonic() - seen < 2.0
        sender.wait(timeout=30)


def test_columns_and_binary_addresses(veth: Veth) -> None:
    with pktstream.capture(
        veth.near, bpf=f"udp and src host {veth.far4}", columns=["ts", "src_ip", "dst_port"],
        addresses="binary", max_packets=2, timeout=0.05,
    ) as reader:
        send(veth)
        table = reader.read_all()
    assert table.column_names == ["ts", "src_ip", "dst_port"]
    assert set(table.column("src_ip").to_pylist()) == {bytes(map(int, veth.far4.split(".")))}
    assert sorted(table.column("dst_port").to_pylist()) == [50001, 50005]


def test_arrow_c_stream_export(veth: Veth) -> None:
    reader = pktstream.capture(veth.near, bpf=f"src host {veth.far4}", max_packets=3, timeout=0.05)
    send(veth)
    table = pa.table(reader)  # through __arrow_c_stream__
    assert table.num_rows == 3
    assert table.schema == pktstream.schema()


def test_unknown_interface() -> None:
    with pytest.raises(pktstream.CaptureError) as e:
        pktstream.capture("pktstream-nope0")
    assert e.value.kind == "no_such_device" and e.value.interface == "pktstream-nope0"
    assert isinstance(e.value, OSError) and isinstance(e.value, pktstream.PktstreamError)
    assert "pktstream-nope0" in str(e.value)


def test_invalid_bpf(veth: Veth) -> None:
    with pytest.raises(pktstream.CaptureError, match="syntax error") as e:
        pktstream.capture(veth.near, bpf="udp and and port")
    assert e.value.kind == "filter"


def test_bad_options(veth: Veth) -> None:
    with pytest.raises(ValueError):
        pktstream.capture(veth.near, timeout=0)
    with pytest.raises(ValueError):
        pktstream.capture(veth.near, batch_size=0)
    with pytest.raises(ValueError):
        pktstream.capture(veth.near, columns=["nope"])


def test_missing_permission_explains_cap_net_raw(veth: Veth) -> None:
    code = (
        "import pktstream\n"
        "try:\n"
        f"    pktstream.capture({veth.near!r})\n"
        "except pktstream.CaptureError as e:\n"
        "    print(e.kind); print(e)\n"
    )
    # Root without CAP_NET_RAW (dropped from the bounding set before exec).
    out = subprocess.run(
        ["setpriv", "--bounding-set", "-net_raw,-net_admin", "--inh-caps", "-net_raw,-net_admin",
         sys.executable, "-c", code],
        capture_output=True, text=True, check=True,
    ).stdout
    kind, message = out.split("\n", 1)
    assert kind == "permission", out
    assert "CAP_NET_RAW" in message


def test_ctrl_c_stops_cli_and_flushes(veth: Veth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "live.parquet"
    before = packet_sockets(veth.near)
    cli = subprocess.Popen(
        [sys.executable, "-m", "pktstream.cli", "capture", "-i", veth.near, "--bpf", f"src host {veth.far4}",
         "-o", str(out), "--timeout", "0.05"],
        stderr=subprocess.PIPE, text=True,
    )
    wait_for_capture(veth.near, before, cli)
    send(veth)
    time.sleep(0.3)
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    assert "dropped by the kernel" in err
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert sorted(table.column("dst_port").to_pylist(), key=str) == sorted([50001, 50003, 50005, None], key=str)


def test_cli_writes_pcap(veth: Veth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "live.pcap"
    before = packet_sockets(veth.near)
    cli = subprocess.Popen(
        [sys.executable, "-m", "pktstream.cli", "capture", "-i", veth.near, "--bpf",
         f"src host {veth.far4} or src host {veth.far6} or vlan", "-c", str(len(EXPECTED)), "-o", str(out)],
        stderr=subprocess.PIPE, text=True,
    )
    wait_for_capture(veth.near, before, cli)
    send(veth)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    table = pktstream.read_pcap(out)
    assert pktstream.iter_batches(out).stats["format"] in ("pcap-ns", "pcap")
    _check(_ours(table, veth), veth)


def test_produce_live_raw_then_consume(veth: Veth, bootstrap: str, topic_factory) -> None:  # type: ignore[no-untyped-def]
    topic = topic_factory(partitions=2)
    bpf = f"src host {veth.far4} or src host {veth.far6} or vlan"
    sender = send(veth, delay=1.0, wait=False)
    report = pktstream.produce_live(
        veth.near, topic, bootstrap_servers=bootstrap, bpf=bpf, max_packets=len(EXPECTED), progress=False
    )
    sender.wait(timeout=30)
    assert report.rows == report.delivered == len(EXPECTED) and report.failed == 0
    assert report.capture["captured"] == len(EXPECTED) and report.capture["dropped_kernel"] == 0
    table = pktstream.consume(topic, bootstrap_servers=bootstrap, format="raw")
    assert table.num_rows == len(EXPECTED)
    _check(_ours(table, veth), veth)


def test_produce_live_json_duration(veth: Veth, bootstrap: str, topic_factory) -> None:  # type: ignore[no-untyped-def]
    topic = topic_factory()
    sender = send(veth, delay=0.5, wait=False)
    report = pktstream.produce_live(
        veth.near, topic, bootstrap_servers=bootstrap, format="json", key="flow",
        bpf=f"udp and src host {veth.far4}", duration=2.0, progress=False,
    )
    sender.wait(timeout=30)
    assert report.delivered == 2 and not report.interrupted
    table = pktstream.consume(topic, bootstrap_servers=bootstrap, format="json")
    assert sorted(table.column("dst_port").to_pylist()) == [50001, 50005]
    assert sorted(table.column("vlan_id").to_pylist(), key=str) == sorted([42, None], key=str)
