"""A veth pair whose far end sits in a network namespace the test creates, for live-capture tests
(tests/test_live.py, tests/test_live_flows.py).

The near end (captured) stays in the test's namespace *without any address*: nothing is routed
through it and the host's networking is untouched. The far end lives in a fresh namespace with
private addresses (10.x, fd00::/8); the sender there has static neighbour entries for the near
end, so its packets go out on the link (and are captured) although nobody answers them.
Needs root and iproute2 (``ip netns``), as on CI: without them these tests fail, they do not skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def needs_root_and_iproute2() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("live capture tests need root and iproute2 (ip netns): run them as CI does", pytrace=False)


def ip(*args: str) -> None:
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
    ip("netns", "add", ns)
    try:
        ip("link", "add", near, "type", "veth", "peer", "name", far)
        ip("link", "set", far, "netns", ns)
        # No IPv6 on the near end: no link-local address, no router solicitations, no noise.
        with open(f"/proc/sys/net/ipv6/conf/{near}/disable_ipv6", "w") as f:
            f.write("1")
        ip("link", "set", near, "up")
        n = ["netns", "exec", ns, "ip"]
        ip(*n, "link", "set", "lo", "up")
        ip(*n, "addr", "add", f"{v.far4}/24", "dev", far)
        ip(*n, "-6", "addr", "add", f"{v.far6}/64", "dev", far, "nodad")
        ip(*n, "link", "set", far, "up")
        v.near_mac, v.far_mac = _mac(near), _mac(far, ns)
        ip(*n, "neigh", "replace", v.near4, "lladdr", v.near_mac, "dev", far, "nud", "permanent")
        ip(*n, "-6", "neigh", "replace", v.near6, "lladdr", v.near_mac, "dev", far, "nud", "permanent")
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


def send(v: Veth, *, delay: float = 0.0, wait: bool = True) -> subprocess.Popen:
    args = repr((v.near4, v.far4, v.near6, v.far6, v.near_mac, v.far_mac))
    script = (f"import time; time.sleep({delay})\n" if delay else "") + SENDER.replace("{args}", args)
    return v.run(script, wait=wait)


def packet_sockets(ifname: str) -> int:
    """How many packet sockets are bound to ``ifname`` (``/proc/net/packet``: a capture's socket)."""
    index = str(socket.if_nametoindex(ifname))
    with open("/proc/net/packet") as f:
        return sum(1 for line in list(f)[1:] if line.split()[4] == index)


def wait_for_capture(ifname: str, before: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Waits until a new capture socket is bound to ``ifname``: a fixed sleep loses the race when
    the machine is loaded and the capturing process starts slowly."""
    deadline = time.monotonic() + timeout
    while packet_sockets(ifname) <= before:
        assert proc.poll() is None, f"the capture exited early: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, f"no capture socket on {ifname} after {timeout:.0f} s"
        time.sleep(0.05)
    time.sleep(0.5)  # libpcap installs the filter (and drains what came before) right after binding
