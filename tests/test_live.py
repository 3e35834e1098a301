"""Live capture on a veth pair whose far end sits in a network namespace the test creates.

The near end (captured) stays in the test's namespace *without any address*: nothing is routed
through it and the host's networking is untouched. The far end lives in a fresh namespace with
private addresses (10.x, fd00::/8); the sender there has static neighbour entries for the near
end, so its packets go out on the link (and are captured) although nobody answers them.
Needs root and iproute2 (``ip netns``), as on CI: without them these tests fail, they do not skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import pktstream
import pyarrow as pa
import pytest


@pytest.fixture(autouse=True)
def _needs_root_and_iproute2() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("live capture tests need root and iproute2 (ip netns): run them as CI does", pytrace=False)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Veth:
    ns: str
    near: str  # captured, in the test's namespace, no address
    far: str  # in `ns`
    near_mac: str
    far_mac: str
    near4: str
    far4: str
    near6: str
    far6: str

    def run(self, script: str, *, wait: bool = True) -> subprocess.Popen:
        """Runs a Python script inside the namespace (``FAR`` names the far interface)."""
        code = f"FAR = {self.far!r}\n" + textwrap.dedent(script)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c", code])
        if wait:
            assert p.wait(timeout=30) == 0
        return p


def _mac(ifname: str, ns: str | None = None) -> str:
    cmd = ["cat", f"/sys/class/net/{ifname}/address"]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def veth() -> Iterator[Veth]:
    tag = uuid.uuid4().hex[:6]
    ns, near, far = f"pktstream-{tag}", f"pkn{tag}", f"pkf{tag}"
    octet = int(tag[:2], 16) % 200 + 20
    v = Veth(ns, near, far, "", "", f"10.{octet}.77.1", f"10.{octet}.77.2", f"fd00:{octet}::1", f"fd00:{octet}::2")
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", near, "type", "veth", "peer", "name", far)
        _ip("link", "set", far, "netns", ns)
        # No IPv6 on the near end: no link-local address, no router solicitations, no noise.
        with open(f"/proc/sys/net/ipv6/conf/{near}/disable_ipv6", "w") as f:
            f.write("1")
        _ip("link", "set", near, "up")
        n = ["netns", "exec", ns, "ip"]
        _ip(*n, "link", "set", "lo", "up")
        _ip(*n, "addr", "add", f"{v.far4}/24", "dev", far)
        _ip(*n, "-6", "addr", "add", f"{v.far6}/64", "dev", far, "nodad")
        _ip(*n, "link", "set", far, "up")
        v.near_mac, v.far_mac = _mac(near), _mac(far, ns)
        _ip(*n, "neigh", "replace", v.near4, "lladdr", v.near_mac, "dev", far, "nud", "permanent")
        _ip(*n, "-6", "neigh", "replace", v.near6, "lladdr", v.near_mac, "dev", far, "nud", "permanent")
        time.sleep(0.2)  # carrier up
        yield v
    finally:
        subprocess.run(["ip", "link", "del", near], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


#: The traffic the far end sends: (kind, src port, dst port, payload bytes).
SENDER = """
import socket, struct, time
NEAR4, FAR4, NEAR6, FAR6, NEAR_MAC, FAR_MAC = {args}

def udp(family, src, dst, sport, dport, n):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((src, sport))
    s.sendto(b"u" * n, (dst, dport))
    s.close()

def syn(family, src, dst, sport, dport):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, sport))
    s.setblocking(False)
    try:
        s.connect((dst, dport))
    except BlockingIOError:
        pass
    time.sleep(0.05)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

def ping(family, proto, icmp_type, dst, n):
    s = socket.socket(family, socket.SOCK_RAW, proto)
    body = struct.pack("!BBHHH", icmp_type, 0, 0, 0x1234, 1) + b"p" * n
    if family == socket.AF_INET:  # the kernel fills in the ICMPv6 checksum, not the ICMPv4 one
        c = sum(struct.unpack("!%dH" % (len(body) // 2), body + b"\\0" * (len(body) % 2)))
        c = (c >> 16) + (c & 0xFFFF)
        c = ~(c + (c >> 16)) & 0xFFFF
        body = body[:2] + struct.pack("!H", c) + body[4:]
    s.sendto(body, (dst, 0))
    s.close()

def vlan_frame(vid, sport, dport, n):
    payload = b"v" * n
    udp = struct.pack("!HHHH", sport, dport, 8 + n, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     socket.inet_aton(FAR4), socket.inet_aton(NEAR4))
    mac = lambda m: bytes.fromhex(m.replace(":", ""))
    frame = mac(NEAR_MAC) + mac(FAR_MAC) + struct.pack("!HHH", 0x8100, vid, 0x0800) + ip + udp
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((FAR, 0))
    s.send(frame)
    s.close()

udp(socket.AF_INET, FAR4, NEAR4, 40001, 50001, 100)
udp(socket.AF_INET6, FAR6, NEAR6, 40002, 50002, 200)
syn(socket.AF_INET, FAR4, NEAR4, 40003, 50003)
syn(socket.AF_INET6, FAR6, NEAR6, 40004, 50004)
ping(socket.AF_INET, socket.IPPROTO_ICMP, 8, NEAR4, 32)
ping(socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, NEAR6, 48)
vlan_frame(42, 40005, 50005, 60)
"""

#: What each sent packet must look like: (ip_version, ip_proto, src port, dst port, vlan, wirelen).
#: Ethernet 14 (+4 VLAN), IPv4 20 / IPv6 40, UDP 8, TCP SYN 20 + options (Linux: 20 more).
EXPECTED = [
    (4, 17, 40001, 50001, None, 14 + 20 + 8 + 100),
    (6, 17, 40002, 50002, None, 14 + 40 + 8 + 200),
    (4, 6, 40003, 50003, None, 14 + 20 + 40),
    (6, 6, 40004, 50004, None, 14 + 40 + 40),
    (4, 1, None, None, None, 14 + 20 + 8 + 32),
    (6, 58, None, None, None, 14 + 40 + 8 + 48),
    (4, 17, 40005, 50005, 42, 18 + 20 + 8 + 60),
]


def _send(v: Veth, *, delay: float = 0.0, wait: bool = True) -> subprocess.Popen:
    args = repr((v.near4, v.far4, v.near6, v.far6, v.near_mac, v.far_mac))
    script = (f"import time; time.sleep({delay})\n" if delay else "") + SENDER.replace("{args}", args)
    return v.run(script, wait=wait)


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
        _send(veth)
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
    _send(veth)
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
    _send(veth, delay=0.2, wait=False).wait(timeout=30)
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
        _send(veth)
        table = reader.read_all()
    assert table.column_names == ["ts", "src_ip", "dst_port"]
    assert set(table.column("src_ip").to_pylist()) == {bytes(map(int, veth.far4.split(".")))}
    assert sorted(table.column("dst_port").to_pylist()) == [50001, 50005]


def test_arrow_c_stream_export(veth: Veth) -> None:
    reader = pktstream.capture(veth.near, bpf=f"src host {veth.far4}", max_packets=3, timeout=0.05)
    _send(veth)
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


def _packet_sockets(ifname: str) -> int:
    """How many packet sockets are bound to ``ifname`` (``/proc/net/packet``: a capture's socket)."""
    index = str(socket.if_nametoindex(ifname))
    with open("/proc/net/packet") as f:
        return sum(1 for line in list(f)[1:] if line.split()[4] == index)


def _wait_for_capture(ifname: str, before: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Waits until a new capture socket is bound to ``ifname``: a fixed sleep loses the race when
    the machine is loaded and the capturing process starts slowly."""
    deadline = time.monotonic() + timeout
    while _packet_sockets(ifname) <= before:
        assert proc.poll() is None, f"the capture exited early: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, f"no capture socket on {ifname} after {timeout:.0f} s"
        time.sleep(0.05)
    time.sleep(0.5)  # libpcap installs the filter (and drains what came before) right after binding


def test_ctrl_c_stops_cli_and_flushes(veth: Veth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "live.parquet"
    before = _packet_sockets(veth.near)
    cli = subprocess.Popen(
        [sys.executable, "-m", "pktstream.cli", "capture", "-i", veth.near, "--bpf", f"src host {veth.far4}",
         "-o", str(out), "--timeout", "0.05"],
        stderr=subprocess.PIPE, text=True,
    )
    _wait_for_capture(veth.near, before, cli)
    _send(veth)
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
    before = _packet_sockets(veth.near)
    cli = subprocess.Popen(
        [sys.executable, "-m", "pktstream.cli", "capture", "-i", veth.near, "--bpf",
         f"src host {veth.far4} or src host {veth.far6} or vlan", "-c", str(len(EXPECTED)), "-o", str(out)],
        stderr=subprocess.PIPE, text=True,
    )
    _wait_for_capture(veth.near, before, cli)
    _send(veth)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    table = pktstream.read_pcap(out)
    assert pktstream.iter_batches(out).stats["format"] in ("pcap-ns", "pcap")
    _check(_ours(table, veth), veth)


def test_produce_live_raw_then_consume(veth: Veth, bootstrap: str, topic_factory) -> None:  # type: ignore[no-untyped-def]
    topic = topic_factory(partitions=2)
    bpf = f"src host {veth.far4} or src host {veth.far6} or vlan"
    sender = _send(veth, delay=1.0, wait=False)
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
    sender = _send(veth, delay=0.5, wait=False)
    report = pktstream.produce_live(
        veth.near, topic, bootstrap_servers=bootstrap, format="json", key="flow",
        bpf=f"udp and src host {veth.far4}", duration=2.0, progress=False,
    )
    sender.wait(timeout=30)
    assert report.delivered == 2 and not report.interrupted
    table = pktstream.consume(topic, bootstrap_servers=bootstrap, format="json")
    assert sorted(table.column("dst_port").to_pylist()) == [50001, 50005]
    assert sorted(table.column("vlan_id").to_pylist(), key=str) == sorted([42, None], key=str)
