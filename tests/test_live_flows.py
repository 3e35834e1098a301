"""Flows from a live capture on a veth pair into a private network namespace (tests/veth.py):
the same flows as from a capture file of the same packets, flows that end while the link is quiet,
and the seeds' pipeline live: capture -> flows -> Kafka -> windowed distances -> results topic.

Needs root and iproute2, as on CI: without them these tests fail, they do not skip.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid

import pktstream
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pktstream import pipelines
from pktstream._live import capture_to_pcap
from test_flows_pipeline import OUT_SCHEMA, assert_same_pairs, reference
from veth import Veth, needs_root_and_iproute2, packet_sockets, send  # noqa: F401

#: Flow columns compared between the live meter and the file meter.
KEY = ["src_ip", "dst_ip", "src_port", "dst_port", "ip_proto", "vlan_id"]
COUNTS = ["packets", "bytes", "src2dst_packets", "src2dst_bytes", "dst2src_packets", "dst2src_bytes"]


def _bpf(v: Veth) -> str:
    return f"src host {v.far4} or src host {v.far6} or vlan"


def _wait_for_sockets(v: Veth, count: int, timeout: float = 30.0) -> None:
    """Waits until ``count`` captures are bound to the near end, then for their filters."""
    deadline = time.monotonic() + timeout
    while packet_sockets(v.near) < count:
        assert time.monotonic() < deadline, f"fewer than {count} capture sockets on {v.near}"
        time.sleep(0.02)
    time.sleep(0.5)  # libpcap installs the filter (and drains what came before) right after binding


def _rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(-1 if x is None else x for x in r.values()) for r in table.select(KEY + COUNTS).to_pylist())


def test_live_flows_equal_the_flows_of_the_same_packets_on_file(veth: Veth, tmp_path) -> None:
    """Two captures of one link: one metered live, one written to a pcap and metered from the file."""
    pcap = tmp_path / "same.pcap"
    before = packet_sockets(veth.near)
    recorder = threading.Thread(
        target=capture_to_pcap,
        args=(veth.near, str(pcap)),
        kwargs={"bpf": _bpf(veth), "duration": 4.0, "timeout": 0.05},
    )
    recorder.start()
    live = pktstream.iter_flows(pktstream.capture(veth.near, bpf=_bpf(veth), duration=4.0, timeout=0.05))
    assert live.live
    _wait_for_sockets(veth, before + 2)
    send(veth)
    got = live.read_all()
    recorder.join(timeout=30)
    stats = live.stats
    want = pktstream.flows(pcap)
    # The sender's 7 conversations (a SYN's reset joins its flow), all ended at the end of the capture.
    assert want.num_rows >= 7
    assert _rows(got) == _rows(want)
    assert set(got.column("expiration").to_pylist()) == {"end"}
    assert stats["metered"] == pc.sum(want["packets"]).as_py() == pc.sum(got["packets"]).as_py()
    assert stats["dropped_kernel"] == 0 and stats["received"] >= stats["packets"]


def test_flows_end_on_a_quiet_link_by_the_wall_clock(veth: Veth) -> None:
    """With idle_timeout=1 a flow is handed out about a second after its last packet although no
    packet follows it: a live meter ends flows by the wall clock while the link is quiet."""
    reader = pktstream.iter_flows(
        pktstream.capture(veth.near, bpf=f"udp and src host {veth.far4}", timeout=0.1), idle_timeout=1.0
    )
    try:
        sender = veth.run(
            f"""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(({veth.far4!r}, 41000))
            for _ in range(3):
                s.sendto(b"q" * 10, ({veth.near4!r}, 9999))
            """,
            wait=False,
        )
        started = time.monotonic()
        batch = reader.read_next_batch()
        waited = time.monotonic() - started
        assert sender.wait(timeout=30) == 0
        assert batch is not None and batch.num_rows == 1
        row = batch.to_pylist()[0]
        assert (row["src_port"], row["dst_port"], row["packets"], row["expiration"]) == (41000, 9999, 3, "idle")
        assert waited < 10, f"the flow came {waited:.1f} s after it went quiet"
        assert reader.stats["active"] == 0
    finally:
        reader.stop()
    assert reader.read_next_batch() is None  # stopped: nothing active is left to flush


def test_stop_flushes_active_flows(veth: Veth) -> None:
    reader = pktstream.iter_flows(pktstream.capture(veth.near, bpf=_bpf(veth), timeout=0.05))
    send(veth)
    time.sleep(0.3)
    reader.stop()
    table = reader.read_all()
    assert table.num_rows >= 7 and set(table.column("expiration").to_pylist()) == {"end"}
    ports = set(table.column("dst_port").to_pylist())
    assert {50001, 50002, 50003, 50004, 50005} <= ports


def test_a_consumed_packet_reader_is_refused(veth: Veth) -> None:
    packets = pktstream.capture(veth.near, timeout=0.05, max_packets=1)
    pktstream.iter_flows(packets).stop()
    with pytest.raises(ValueError, match="already consumed"):
        pktstream.iter_flows(packets)


#: Many short UDP conversations from the far end (one source: one pipeline key), ~0.5 s apart in
#: three bursts, so that windows hold several events each.
CONVERSATIONS = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(({far4!r}, 0))
for burst in range(3):
    for i in range(20):
        s.sendto(b"c" * (20 + 37 * i), ({near4!r}, 20000 + 100 * burst + i))
        s.sendto(b"d" * (10 + i), ({near4!r}, 20000 + 100 * burst + i))
    time.sleep(0.5)
"""


def test_live_capture_to_flows_to_kafka_to_distances(veth: Veth, bootstrap, topic_factory, tmp_path) -> None:
    """The seeds' pipeline from live packets: produce_flows on a capture, the distance pipeline on
    its topic, checked against pktstream.distance.pairs over the flows of a pcap of the same link."""
    flows_topic, pairs_topic = topic_factory(partitions=2), topic_factory(partitions=1)
    bpf = f"udp and src host {veth.far4}"
    pcap = tmp_path / "conversations.pcap"
    n_packets = 3 * 20 * 2
    before = packet_sockets(veth.near)
    recorder = threading.Thread(
        target=capture_to_pcap,
        args=(veth.near, str(pcap)),
        kwargs={"bpf": bpf, "max_packets": n_packets, "timeout": 0.05},
    )
    recorder.start()
    live = pktstream.capture(veth.near, bpf=bpf, max_packets=n_packets, timeout=0.05)
    _wait_for_sockets(veth, before + 2)
    sender = veth.run(CONVERSATIONS.format(far4=veth.far4, near4=veth.near4), wait=False)
    sent = pktstream.produce_flows(live, flows_topic, bootstrap_servers=bootstrap, progress=False)
    assert sender.wait(timeout=30) == 0
    recorder.join(timeout=30)
    assert sent.flows == sent.delivered == 60 and sent.failed == 0
    report = pipelines.netflow_distances(flows_topic, pairs_topic, bootstrap_servers=bootstrap,
                                         group_id=f"live-{uuid.uuid4().hex[:8]}", idle_timeout=2.0,
                                         idle_partition_timeout=2.0)
    events = pktstream.suricata_events(pktstream.flows(pcap))
    ref = reference(events)
    print(f"\nflows: {sent}\npipeline: {report}")
    assert (report.events, report.invalid, report.late_events) == (60, 0, 0)
    assert report.pairs == report.delivered == ref.num_rows > 0
    got = pktstream.consume(pairs_topic, bootstrap_servers=bootstrap, schema=OUT_SCHEMA, timeout=10.0)
    assert pc.all(pc.is_null(got["_error"])).as_py()
    assert_same_pairs(got, ref)


def test_cli_flows_interface_ctrl_c_flushes_to_parquet(veth: Veth, tmp_path) -> None:
    """``pktstream flows -i IFACE -o out.parquet``: Ctrl-C ends the capture, the active flows are
    flushed and written, and the summary carries libpcap's counters."""
    import pyarrow.parquet as pq

    out = tmp_path / "live-flows.parquet"
    before = packet_sockets(veth.near)
    cli = subprocess.Popen(
        [sys.executable, "-m", "pktstream.cli", "flows", "-i", veth.near, "--bpf", _bpf(veth), "-o", str(out),
         "--timeout", "0.05", "--no-progress"],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while packet_sockets(veth.near) <= before:
        assert cli.poll() is None, cli.communicate()[1]
        assert time.monotonic() < deadline, "the CLI never opened its capture"
        time.sleep(0.05)
    time.sleep(0.5)
    send(veth)
    time.sleep(0.3)
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    table = pq.read_table(out)
    assert {50001, 50002, 50003, 50004, 50005} <= set(table.column("dst_port").to_pylist())
    assert set(table.column("expiration").to_pylist()) == {"end"}
    assert f"wrote {table.num_rows:,} flows to {out}" in err
    assert "dropped by the kernel" in err


def test_cli_flows_needs_a_file_or_an_interface(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "pktstream.cli", "flows"], capture_output=True, text=True)
    assert done.returncode != 0 and "give a capture file, or --interface" in done.stderr
    done = subprocess.run([sys.executable, "-m", "pktstream.cli", "flows", "tests/data/sample.pcap", "-i", "lo"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "not both" in done.stderr
