"""Flow metering throughput: pktstream against NFStream and a hand-written dpkt flow dict.

One command, one process run, one table::

    .venv/bin/python benches/bench_flows.py [--packets 1000000] [--quick] [--json out.json]

On three captures of about the same size it times:

* ``conversations``: ``pktstream.testing.synth_flows`` (seed 0): interleaved TCP, UDP and ICMP
  conversations of ~30 packets on average, IPv6 and VLANs among them - the realistic case;
* ``many-flows``: the synthetic capture of ``pktstream.testing.synth`` (seed 0), where nearly every
  packet starts a flow - the worst case for a meter (a table insert, a Community ID and a record
  per packet);
* ``long-flows``: TCP conversations of ~500 packets each (2,000 flows per million packets);

all cached under ``~/.cache/pktstream/bench/``; and on each:

* pktstream ``flows()`` (all columns, an Arrow table) - best of 3;
* NFStream 6.6 with one meter, no dissection, no statistics (``n_meters=1``) - one run (on the
  first 50,000 packets of ``many-flows``: it meters ~5k packets/s there);
* NFStream with its default meters (one per core) - one run, on ``conversations`` only;
* dpkt, and scapy, each with a hand-written flow dict (5-tuple, packets and bytes per
  direction) on the first 200,000 (dpkt) or 50,000 (scapy) packets (the rate is extrapolated;
  said in the table).

``--memory-gb G`` instead writes a ``synth_flows`` capture of about G GB and meters it with
``iter_flows`` in a child process, printing the peak resident memory (the issue's bound: a 5 GB
capture under 300 MB).

Benchmarks are not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pktstream" / "bench"
sys.path.insert(0, str(ROOT / "benches"))

from bench_decode import best_of, cached_capture, conversations_capture  # noqa: E402


def long_flows_capture(n: int) -> Path:
    """``n`` packets of TCP conversations, 500 packets each, 8 interleaved at a time."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"longflows-{n}.pcap"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1_700_000_000.0
        for i in range(n):
            conv = (i // 8) // 500 * 8 + i % 8
            fwd = (i // 8) % 2 == 0
            a, b = struct.pack("!I", 0x0A000000 + conv), struct.pack("!I", 0xC0A80001)
            sport, dport = 10_000 + conv % 50_000, 443
            src, dst, sp, dp = (a, b, sport, dport) if fwd else (b, a, dport, sport)
            payload = b"\0" * (100 if fwd else 1200)
            tcp = struct.pack("!HHIIBBHHH", sp, dp, i, 0, 0x50, 0x18, 65535, 0, 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst) + tcp
            frame = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00" + ip
            t += 0.0001
            sec, usec = divmod(round(t * 1e6), 1_000_000)
            out.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    tmp.replace(path)
    return path


def run_pktstream(path: Path) -> int:
    import pktstream

    reader = pktstream.iter_flows(path)
    reader.read_all()
    return int(reader.stats["packets"])


def run_nfstream(path: Path, meters: int = 1) -> int:
    from nfstream import NFStreamer

    packets = 0
    streamer = NFStreamer(
        source=str(path), n_meters=meters, statistical_analysis=False, n_dissections=0, splt_analysis=0
    )
    for flow in streamer:
        packets += flow.bidirectional_packets
    return packets


def run_scapy_dict(path: Path, limit: int) -> int:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.utils import PcapReader

    flows: dict[tuple, list[int]] = {}
    n = 0
    with PcapReader(str(path)) as packets:
        for pkt in packets:
            n += 1
            if n > limit:
                break
            ip = pkt.getlayer(IP)
            if ip is None:
                continue
            l4 = ip.payload
            sp, dp = (l4.sport, l4.dport) if isinstance(l4, (TCP, UDP)) else (0, 0)
            a, b = (ip.src, sp), (ip.dst, dp)
            key = (min(a, b), max(a, b), ip.proto)
            entry = flows.setdefault(key, [0, 0, 0, 0])
            d = 0 if a <= b else 2
            entry[d] += 1
            entry[d + 1] += len(pkt)
    return min(n, limit)


def memory(gb: float) -> int:
    """Peak RSS of metering a ~``gb`` GB conversations capture in a child process."""
    import resource
    import subprocess

    from pktstream.testing.synth_flows import write_flows_pcap

    CACHE.mkdir(parents=True, exist_ok=True)
    conversations = int(gb * 1e9 / 606e6 * 34_000)
    path = CACHE / f"conversations-{conversations}.pcap"
    if not path.exists():
        tmp = path.with_suffix(".tmp.pcap")
        write_flows_pcap(tmp, conversations=conversations, seed=1)
        tmp.replace(path)
    code = (
        "import sys, time, pktstream\n"
        "t = time.perf_counter(); r = pktstream.iter_flows(sys.argv[1]); n = 0\n"
        "for b in r: n += b.num_rows\n"
        "print(n, r.stats['packets'], time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True)
    flows, packets, seconds = out.stdout.split()
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    size_gb = path.stat().st_size / 1e9
    print(
        f"{size_gb:.2f} GB capture, {int(packets):,} packets -> {int(flows):,} flows in {float(seconds):.1f} s "
        f"({int(packets) / float(seconds):,.0f} packets/s); peak RSS of the metering process: {peak_mb:,.0f} MB"
    )
    return 0


def run_dpkt_dict(path: Path, limit: int) -> int:
    import dpkt

    flows: dict[tuple, list[int]] = {}
    n = 0
    with path.open("rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            n += 1
            if n > limit:
                break
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            l4 = ip.data
            sp, dp = (l4.sport, l4.dport) if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)) else (0, 0)
            a, b = (ip.src, sp), (ip.dst, dp)
            key = (min(a, b), max(a, b), ip.p)
            entry = flows.setdefault(key, [0, 0, 0, 0])
            d = 0 if a <= b else 2
            entry[d] += 1
            entry[d + 1] += len(buf)
    return min(n, limit)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100k packets, 1 run")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    ap.add_argument("--memory-gb", type=float, help="only: peak RSS metering a synth_flows capture this big")
    args = ap.parse_args(argv)
    if args.memory_gb:
        return memory(args.memory_gb)
    n = 100_000 if args.quick and args.packets == 1_000_000 else args.packets
    runs = 1 if args.quick else 3
    dpkt_n, scapy_n = min(n, 200_000), min(n, 50_000)
    import dpkt  # noqa: F401 - imports are not what is timed
    import nfstream  # noqa: F401
    import pktstream  # noqa: F401
    import scapy.all  # noqa: F401

    captures = {
        "conversations": conversations_capture(n),
        "many-flows": cached_capture(n),
        "long-flows": long_flows_capture(n),
    }
    # NFStream meters ~5k packets/s when nearly every packet is a new flow: a prefix will do.
    nfstream_input = {**captures, "many-flows": cached_capture(min(n, 50_000))}
    results: list[dict[str, Any]] = []

    def record(capture: str, tool: str, seconds: float, packets: int, note: str = "") -> None:
        results.append(
            {
                "capture": capture,
                "tool": tool,
                "seconds": seconds,
                "packets": packets,
                "rate": packets / seconds if seconds else 0.0,
                "note": note,
            }
        )

    for name, path in captures.items():
        contenders: list[tuple[str, int, Callable[[], int], str]] = [
            ("pktstream flows()", runs, lambda p=path: run_pktstream(p), f"best of {runs}"),
            (
                "NFStream 6.6, 1 meter",
                1,
                lambda p=nfstream_input[name]: run_nfstream(p),
                "one run" + ("" if nfstream_input[name] == path else ", first 50,000 packets"),
            ),
            ("dpkt + flow dict", 1, lambda p=path: run_dpkt_dict(p, dpkt_n), f"first {dpkt_n:,} packets"),
            ("scapy + flow dict", 1, lambda p=path: run_scapy_dict(p, scapy_n), f"first {scapy_n:,} packets"),
        ]
        if name == "conversations":
            meters = os.cpu_count() or 1
            contenders.insert(2, (f"NFStream 6.6, {meters} meters", 1,
                                  lambda p=path: run_nfstream(p, 0), "one run, default n_meters"))
        for tool, k, fn, note in contenders:
            try:
                seconds, packets = best_of(k, fn)
            except ImportError as e:
                print(f"skipping {tool}: {e}", file=sys.stderr)
                continue
            record(name, tool, seconds, packets, note)

    print(
        f"\nflow metering, {n:,} packets per capture; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{'capture':<14} {'tool':<24} {'packets/s':>12} {'vs NFStream':>12}  note")
    for name in captures:
        rows = [r for r in results if r["capture"] == name]
        ref = next((r["rate"] for r in rows if r["tool"].startswith("NFStream 6.6, 1 meter")), None)
        for r in rows:
            ratio = f"{r['rate'] / ref:.1f}x" if ref else "-"
            print(f"{name:<14} {r['tool']:<24} {r['rate']:>12,.0f} {ratio:>12}  {r['note']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
