"""Live capture throughput: packets/s captured and decoded on a veth pair, and kernel drops.

A sender in a private network namespace blasts prebuilt Ethernet frames (UDP/TCP/ICMP over IPv4
and IPv6, one VLAN-tagged) through an AF_PACKET socket on the far end of a veth pair; pktstream
captures the near end (no address, nothing routed) for a fixed time. Each row compares what was
sent with what libpcap saw, what it dropped and what pktstream delivered as rows. Needs root.

    sudo .venv/bin/python benches/bench_live.py [--seconds 5] [--rate 0 50000 ...]

``--rate 0`` means as fast as one Python sender process goes (~hundreds of thousands of packets
per second); other rates are paced. Both processes share the machine's cores: with 2 cores the
sender and the capture compete.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import textwrap
import time
import uuid

import pktstream

SENDER = r"""
import socket, struct, sys, time
far, near_mac, far_mac, seconds, rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
mac = lambda m: bytes.fromhex(m.replace(":", ""))
eth = mac(near_mac) + mac(far_mac)
a4, b4 = socket.inet_aton("10.99.0.2"), socket.inet_aton("10.99.0.1")
a6, b6 = socket.inet_pton(socket.AF_INET6, "fd00:99::2"), socket.inet_pton(socket.AF_INET6, "fd00:99::1")
def v4(proto, l4):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, a4, b4) + l4
def v6(proto, l4):
    return struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 64, a6, b6) + l4
udp = struct.pack("!HHHH", 40000, 53, 8 + 64, 0) + b"u" * 64
tcp = struct.pack("!HHIIBBHHH", 40001, 443, 1, 0, 5 << 4, 0x18, 65535, 0, 0) + b"t" * 200
icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"i" * 32
frames = [
    eth + b"\x08\x00" + v4(17, udp),
    eth + b"\x08\x00" + v4(6, tcp),
    eth + b"\x86\xdd" + v6(17, udp),
    eth + b"\x08\x00" + v4(1, icmp),
    eth + b"\x81\x00" + struct.pack("!HH", 42, 0x0800) + v4(17, udp),
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((far, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
send = s.send
sent = 0
start = time.perf_counter()
end = start + seconds
if rate <= 0:
    while time.perf_counter() < end:
        for _ in range(200):
            for f in frames:
                send(f)
        sent += 1000
else:
    step = 1000 / rate  # 1000-packet bursts at the target mean rate
    nxt = start
    while nxt < end:
        for _ in range(200):
            for f in frames:
                send(f)
        sent += 1000
        nxt += step
        d = nxt - time.perf_counter()
        if d > 0:
            time.sleep(d)
print(sent, time.perf_counter() - start)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _mac(ifname: str, ns: str = "") -> str:
    cmd = ["cat", f"/sys/class/net/{ifname}/address"]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def run_one(near: str, far: str, ns: str, seconds: float, rate: float, buffer_size: int | None,
            columns: list[str] | None) -> dict:
    near_mac, far_mac = _mac(near), _mac(far, ns)
    reader = pktstream.capture(near, duration=seconds + 1.0, buffer_size=buffer_size, columns=columns,
                               timeout=0.1)
    sender = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", SENDER, far, near_mac, far_mac, str(seconds), str(rate)],
        stdout=subprocess.PIPE, text=True,
    )
    rows = 0
    for batch in reader:
        rows += batch.num_rows
    out, _ = sender.communicate(timeout=60)
    sent, send_seconds = out.split()
    stats = reader.stats
    reader.close()
    return {
        "rate": "max" if rate <= 0 else f"{rate:,.0f}",
        "buffer": "default" if buffer_size is None else f"{buffer_size >> 20} MiB",
        "decode": "no (ts, caplen)" if columns else "yes (all columns)",
        "sent": int(sent),
        "send_pps": int(sent) / float(send_seconds),
        "rows": rows,
        "received": stats["received"],
        "dropped_kernel": stats["dropped_kernel"],
        "dropped_pktstream": stats["dropped_pktstream"],
        "capture_pps": rows / float(send_seconds),
    }


def run_backlog(near: str, far: str, ns: str, seconds: float, columns: list[str] | None) -> dict:
    """The read side's ceiling: the sender fills a large kernel buffer first, then pktstream
    drains it as fast as it can (no competition for the CPU from the sender)."""
    near_mac, far_mac = _mac(near), _mac(far, ns)
    reader = pktstream.capture(near, buffer_size=1 << 30, columns=columns, timeout=0.1)
    out = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", SENDER, far, near_mac, far_mac, str(seconds), "0"],
        check=True, capture_output=True, text=True,
    ).stdout
    sent = int(out.split()[0])
    time.sleep(0.3)  # the last kernel block retires
    start = time.perf_counter()
    rows = 0
    for batch in reader:
        rows += batch.num_rows
        if rows >= sent:
            break
    elapsed = time.perf_counter() - start
    stats = reader.stats
    reader.close()
    return {"decode": "no (ts, caplen)" if columns else "yes (all columns)", "sent": sent, "rows": rows,
            "pps": rows / elapsed, "dropped_kernel": stats["dropped_kernel"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, nargs="*", default=[0, 100_000])
    ap.add_argument("--backlog-seconds", type=float, default=2.0, help="sending time for the drain test")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_live needs root (network namespace, capture)")
    tag = uuid.uuid4().hex[:6]
    ns, near, far = f"pktbench-{tag}", f"pbn{tag}", f"pbf{tag}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", near, "type", "veth", "peer", "name", far)
        _ip("link", "set", far, "netns", ns)
        with open(f"/proc/sys/net/ipv6/conf/{near}/disable_ipv6", "w") as f:
            f.write("1")
        _ip("link", "set", near, "up")
        _ip("netns", "exec", ns, "ip", "link", "set", far, "up")
        time.sleep(0.3)
        results = []
        for rate in args.rate:
            for buffer_size in (None, 64 << 20):
                for columns in (None, ["ts", "caplen"]):
                    results.append(run_one(near, far, ns, args.seconds, rate, buffer_size, columns))
                    print(results[-1], file=sys.stderr)
        backlog = [run_backlog(near, far, ns, args.backlog_seconds, c) for c in (None, ["ts", "caplen"])]
    finally:
        subprocess.run(["ip", "link", "del", near], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    print(f"\nlive capture on a veth pair, {args.seconds:.0f} s per run; {platform.machine()}, "
          f"{os.cpu_count()} cores, {platform.platform()}; pktstream {pktstream.__version__}")
    head = (f"{'send rate':>10} {'kernel buf':>10} {'decode':>18} {'sent':>10} {'sent/s':>10} {'rows':>10} "
            f"{'rows/s':>10} {'kernel drops':>13} {'drop %':>7} {'pktstream drops':>15}")
    print(head)
    print("-" * len(head))
    for r in results:
        pct = 100.0 * r["dropped_kernel"] / max(1, r["received"])
        print(f"{r['rate']:>10} {r['buffer']:>10} {r['decode']:>18} {r['sent']:>10,} {r['send_pps']:>10,.0f} "
              f"{r['rows']:>10,} {r['capture_pps']:>10,.0f} {r['dropped_kernel']:>13,} {pct:>6.1f}% "
              f"{r['dropped_pktstream']:>15}")
    print(f"\nread-side ceiling: {args.backlog_seconds:.0f} s of sending buffered in a 1 GiB kernel buffer, "
          "then drained by pktstream")
    print(f"{'decode':>18} {'packets':>10} {'rows/s':>12} {'kernel drops':>13}")
    for r in backlog:
        print(f"{r['decode']:>18} {r['rows']:>10,} {r['pps']:>12,.0f} {r['dropped_kernel']:>13,}")
    print(textwrap.dedent("""
        rows/s = packets delivered as Arrow rows per second of sending; rows + kernel drops = packets
        libpcap received (the veth itself does not drop). "decode: no" projects file-level columns
        only, which skips frame decoding."""))


if __name__ == "__main__":
    main()
