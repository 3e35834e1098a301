"""Decode throughput of pktstream against the tools users would otherwise use, side by side.

One command, one process run, one table::

    .venv/bin/python benches/bench_decode.py [--packets 1000000] [--quick] [--json out.json]

On the same synthetic capture (``pktstream.testing.synth``, seed 0; generated once and cached under
``~/.cache/pktstream/bench/``) it times:

* pktstream ``read_pcap`` (all columns, an Arrow table), the same plus ``.to_pandas()``, and
  ``iter_batches`` (streamed, batches discarded) - best of 3; ``iter_batches`` also on a
  ``pktstream.testing.synth_flows`` capture of the same size (conversations of ~30 packets, as real
  links carry: the Community ID is hashed once per flow there, on nearly every packet of the
  ``synth`` mix);
* dpkt -> pandas DataFrame, 15 header fields, written the way users write it - one run
  (it takes tens of seconds);
* scapy ``PcapReader`` on the first 20,000 packets (the rate is extrapolated; said in the table);
* tshark ``-T fields`` (15 fields) read into pandas, on the first 100,000 packets.

Subsets are prefixes of the big capture (the generator is sequential), so the packet mix is the
same. It then measures the peak RSS of streaming a ~1.2 GB capture with ``iter_batches`` in a
fresh interpreter (next to the file size, and to ``read_pcap`` materialising it), and the
pktstream rate over every readable file of the real corpus in ``/work/shared/pcaps``.

Benchmarks are not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pktstream.testing import synth

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pktstream" / "bench"
CORPUS = ROOT.parent / "shared" / "pcaps"


# ----------------------------------------------------------------------------- inputs
def cached_capture(n: int, seed: int = 0) -> Path:
    """The synthetic n-packet pcap, generated once (atomically) into the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synth-{n}-seed{seed}.pcap"
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        synth.write_pcap(tmp, n, seed=seed)
        tmp.replace(path)
        print(
            f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
    return path


def conversations_capture(n: int) -> Path:
    """A ``pktstream.testing.synth_flows`` capture of about ``n`` packets: conversations, so most packets
    belong to a flow seen before (the Community ID is computed once per flow, as on real links),
    where the ``synth`` mix starts a new flow on nearly every packet."""
    from pktstream.testing.synth_flows import write_flows_pcap

    CACHE.mkdir(parents=True, exist_ok=True)
    conversations = max(1, n * 34_000 // 1_130_000)
    path = CACHE / f"conversations-{conversations}.pcap"
    if not path.exists():
        tmp = path.with_suffix(".tmp.pcap")
        write_flows_pcap(tmp, conversations=conversations, seed=0)
        tmp.replace(path)
    return path


def best_of(runs: int, fn: Callable[[], int]) -> tuple[float, int]:
    """Best wall time of ``runs`` calls of ``fn`` (which returns a packet count)."""
    best, count = float("inf"), 0
    for _ in range(runs):
        t = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - t)
    return best, count


# ----------------------------------------------------------------------------- contenders
def run_pktstream_table(path: Path) -> int:
    import pktstream

    return pktstream.read_pcap(path).num_rows


def run_pktstream_pandas(path: Path) -> int:
    import pktstream

    return len(pktstream.read_pcap(path).to_pandas())


def run_pktstream_stream(path: Path, **options: Any) -> int:
    import pktstream

    n = 0
    for batch in pktstream.iter_batches(path, **options):
        n += batch.num_rows
    return n


#: The ~14 fields the other tools extract (what a 5-tuple analysis needs), as a projection.
FIVE_TUPLE = ["ts", "wirelen", "ip_version", "src_ip", "dst_ip", "ip_proto", "ttl", "src_port",
              "dst_port", "tcp_flags", "vlan_id", "icmp_type", "payload_len", "decode_status"]


COLUMNS = [
    "ts",
    "wirelen",
    "eth_src",
    "eth_dst",
    "ethertype",
    "vlan_id",
    "src_ip",
    "dst_ip",
    "ip_proto",
    "ttl",
    "src_port",
    "dst_port",
    "tcp_flags",
    "icmp_type",
    "icmp_code",
]


def run_dpkt_pandas(path: Path) -> int:
    """dpkt -> list of tuples -> pandas, as in dpkt's examples and most blog posts."""
    import dpkt
    import pandas as pd

    rows = []
    with open(path, "rb") as f:
        for ts, buf in dpkt.pcap.Reader(f):
            src = dst = proto = ttl = sport = dport = flags = itype = icode = vlan = None
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except (dpkt.UnpackError, dpkt.NeedData):
                rows.append((ts, len(buf)) + (None,) * 13)
                continue
            tags = getattr(eth, "vlan_tags", None)
            if tags:
                vlan = tags[0].id
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP):
                src, dst = socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst)
                proto, ttl = ip.p, ip.ttl
            elif isinstance(ip, dpkt.ip6.IP6):
                src = socket.inet_ntop(socket.AF_INET6, ip.src)
                dst = socket.inet_ntop(socket.AF_INET6, ip.dst)
                proto, ttl = ip.nxt, ip.hlim
            else:
                ip = None
            if ip is not None:
                l4 = ip.data
                if isinstance(l4, dpkt.tcp.TCP):
                    sport, dport, flags = l4.sport, l4.dport, l4.flags
                elif isinstance(l4, dpkt.udp.UDP):
                    sport, dport = l4.sport, l4.dport
                elif isinstance(l4, (dpkt.icmp.ICMP, dpkt.icmp6.ICMP6)):
                    itype, icode = l4.type, l4.code
            rows.append(
                (
                    ts,
                    len(buf),
                    eth.src.hex(":"),
                    eth.dst.hex(":"),
                    eth.type,
                    vlan,
                    src,
                    dst,
                    proto,
                    ttl,
                    sport,
                    dport,
                    flags,
                    itype,
                    icode,
                )
            )
    return len(pd.DataFrame(rows, columns=COLUMNS))


def run_scapy(path: Path) -> int:
    """scapy's PcapReader, the same fields, into pandas."""
    import pandas as pd
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.utils import PcapReader

    logging.getLogger("scapy").setLevel(logging.ERROR)  # random payloads upset its DNS parser

    rows = []
    with PcapReader(str(path)) as reader:
        for pkt in reader:
            src = dst = proto = ttl = sport = dport = flags = itype = icode = vlan = None
            etype = pkt[Ether].type if Ether in pkt else None
            if Dot1Q in pkt:
                vlan = pkt[Dot1Q].vlan
            if IP in pkt:
                ip = pkt[IP]
                src, dst, proto, ttl = ip.src, ip.dst, ip.proto, ip.ttl
            elif IPv6 in pkt:
                ip = pkt[IPv6]
                src, dst, proto, ttl = ip.src, ip.dst, ip.nh, ip.hlim
            if TCP in pkt:
                sport, dport, flags = pkt[TCP].sport, pkt[TCP].dport, int(pkt[TCP].flags)
            elif UDP in pkt:
                sport, dport = pkt[UDP].sport, pkt[UDP].dport
            elif ICMP in pkt:
                itype, icode = pkt[ICMP].type, pkt[ICMP].code
            rows.append(
                (
                    float(pkt.time),
                    pkt.wirelen,
                    pkt.src if Ether in pkt else None,
                    pkt.dst if Ether in pkt else None,
                    etype,
                    vlan,
                    src,
                    dst,
                    proto,
                    ttl,
                    sport,
                    dport,
                    flags,
                    itype,
                    icode,
                )
            )
    return len(pd.DataFrame(rows, columns=COLUMNS))


TSHARK_FIELDS = [
    "frame.time_epoch",
    "frame.len",
    "eth.src",
    "eth.dst",
    "eth.type",
    "vlan.id",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "ip.proto",
    "ip.ttl",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "tcp.flags",
    "icmp.type",
]


def run_tshark(path: Path) -> int:
    """tshark -T fields into pandas.read_csv (what users do to get a DataFrame)."""
    import pandas as pd

    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "header=y", "-E", "separator=/t"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        df = pd.read_csv(proc.stdout, sep="\t", low_memory=False)
    return len(df)


# ----------------------------------------------------------------------------- memory
# Peak RSS is read from VmHWM, the high-water mark of this process's own address space. On Linux
# getrusage's ru_maxrss survives exec: a child started by a big parent reports the parent's peak.
_RSS_CODE = """
import sys, time, warnings
import pyarrow, pktstream
def hwm():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
warnings.simplefilter("ignore")
base = hwm()
t = time.perf_counter()
if sys.argv[2] == "stream":
    n = 0
    for b in pktstream.iter_batches(sys.argv[1]):
        n += b.num_rows
else:
    n = pktstream.read_pcap(sys.argv[1]).num_rows
dt = time.perf_counter() - t
print(base, hwm(), n, dt)
"""


def peak_rss(path: Path, mode: str) -> tuple[int, int, int, float]:
    """(peak KiB after imports, peak KiB at the end, packets, seconds) in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CODE, str(path), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    base, peak, n, dt = out.stdout.split()
    return int(base), int(peak), int(n), float(dt)


# ----------------------------------------------------------------------------- corpus
def corpus_files() -> list[Path]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    with open(manifest, newline="") as f:
        return [CORPUS / row["path"] for row in csv.DictReader(f, delimiter="\t")]


def run_corpus(files: list[Path]) -> tuple[int, int, int]:
    """(packets, files read, files refused) over the corpus."""
    import pktstream

    packets = ok = refused = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in files:
            try:
                packets += pktstream.read_pcap(p).num_rows
                ok += 1
            except (pktstream.PktstreamError, OSError, ValueError):
                refused += 1
    return packets, ok, refused


# ----------------------------------------------------------------------------- report
def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for mod in ("pktstream", "pyarrow", "pandas", "dpkt", "scapy"):
        try:
            m = __import__(mod)
            versions.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            versions.append(f"{mod} missing")
    tshark = shutil.which("tshark")
    if tshark:
        ver = [tshark, "--version"]
        out = subprocess.run(ver, capture_output=True, text=True, check=False).stdout
        words = out.split("\n", 1)[0].split()
        versions.append(f"tshark {words[2] if len(words) > 2 else '?'}")
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}; "
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}\n"
        + ", ".join(versions)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000, help="size of the main capture")
    ap.add_argument("--quick", action="store_true", help="100k packets, 1 run, no 1.2 GB file")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    n = 100_000 if args.quick and args.packets == 1_000_000 else args.packets
    runs = 1 if args.quick else 3
    scapy_n = min(n, 5_000 if args.quick else 20_000)
    tshark_n = min(n, 20_000 if args.quick else 100_000)
    big_n = 0 if args.quick else 2_000_000

    import dpkt  # noqa: F401 - imports are not what is timed
    import pandas  # noqa: F401
    import pktstream  # noqa: F401
    import scapy.all  # noqa: F401

    main_file = cached_capture(n)
    size = main_file.stat().st_size
    results: list[dict[str, Any]] = []

    def record(tool: str, packets: int, seconds: float, note: str = "") -> None:
        results.append(
            {
                "tool": tool,
                "packets": packets,
                "seconds": seconds,
                "rate": packets / seconds,
                "note": note,
            }
        )
        print(f"  {tool}: {packets:,} packets in {seconds:.2f} s", file=sys.stderr)

    print(f"timing on {main_file} ({size / 1e6:.0f} MB)", file=sys.stderr)
    best = f"best of {runs}" if runs > 1 else "1 run"
    dt, cnt = best_of(runs, lambda: run_pktstream_table(main_file))
    record("pktstream read_pcap (Arrow table, all columns)", cnt, dt, best)
    dt, cnt = best_of(runs, lambda: run_pktstream_pandas(main_file))
    record("pktstream read_pcap(...).to_pandas()", cnt, dt, best)
    dt, cnt = best_of(runs, lambda: run_pktstream_stream(main_file))
    record("pktstream iter_batches (streamed, discarded)", cnt, dt, best)
    dt, cnt = best_of(runs, lambda: run_pktstream_stream(main_file, addresses="binary"))
    record("pktstream iter_batches, addresses='binary'", cnt, dt, best)
    dt, cnt = best_of(runs, lambda: run_pktstream_stream(main_file, columns=FIVE_TUPLE))
    record("pktstream iter_batches, the 14 fields the others extract", cnt, dt, best)
    conv = conversations_capture(n)
    dt, cnt = best_of(runs, lambda: run_pktstream_stream(conv))
    record("pktstream iter_batches on conversations (synth_flows: ~30 packets a flow)", cnt, dt, best)
    dt, cnt = best_of(1, lambda: run_dpkt_pandas(main_file))
    record("dpkt -> pandas (15 fields)", cnt, dt, "1 run")
    sub = cached_capture(tshark_n)
    dt, cnt = best_of(1, lambda: run_tshark(sub))
    record("tshark -T fields -> pandas (18 fields)", cnt, dt, f"first {tshark_n:,} packets")
    sub = cached_capture(scapy_n)
    dt, cnt = best_of(1, lambda: run_scapy(sub))
    note = f"first {scapy_n:,} packets; rate extrapolated"
    record("scapy PcapReader -> pandas (15 fields)", cnt, dt, note)

    ref = results[0]["rate"]
    print(f"\n### pktstream decode benchmark\n\n{machine()}\n")
    print(f"Capture: synthetic, {n:,} packets, {size / 1e6:.0f} MB (pktstream.testing.synth, seed 0)\n")
    print("| tool | packets | seconds | packets/s | MB/s | pktstream is x faster | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        mbs = r["rate"] * size / n / 1e6
        print(
            f"| {r['tool']} | {r['packets']:,} | {r['seconds']:.2f} | {r['rate']:,.0f} | "
            f"{mbs:,.0f} | {ref / r['rate']:.1f} | {r['note']} |"
        )

    like = next(r for r in results if "14 fields" in r["tool"])
    others = [r for r in results if not r["tool"].startswith("pktstream")]
    print(
        "\nLike for like (pktstream's 14-field projection vs the same fields from the others): "
        + ", ".join(f"{r['tool'].split()[0]} {like['rate'] / r['rate']:,.0f}x" for r in others)
    )

    rss_file = cached_capture(big_n) if big_n else main_file
    rss_size = rss_file.stat().st_size
    mem = {}
    for mode in ("stream", "table"):
        base, peak, cnt, dt = peak_rss(rss_file, mode)
        mem[mode] = {"baseline_kib": base, "peak_kib": peak, "packets": cnt, "seconds": dt}
    s, t = mem["stream"], mem["table"]
    print(
        f"\nPeak RSS on {rss_file.name} ({rss_size / 1e9:.2f} GB, {s['packets']:,} packets), "
        f"fresh interpreter, {s['baseline_kib'] / 1024:.0f} MB after importing pyarrow+pktstream:"
    )
    print(
        f"- iter_batches, streamed: peak {s['peak_kib'] / 1024:.0f} MB "
        f"({s['packets'] / s['seconds']:,.0f} packets/s)"
    )
    print(
        f"- read_pcap, whole table: peak {t['peak_kib'] / 1024:.0f} MB "
        f"({t['packets'] / t['seconds']:,.0f} packets/s)"
    )

    files = corpus_files()
    corpus: dict[str, Any] = {}
    if files:
        dt, _ = best_of(runs, lambda: run_corpus(files)[0])
        packets, ok, refused = run_corpus(files)
        nbytes = sum(p.stat().st_size for p in files if p.exists())
        corpus = {
            "files": len(files),
            "read": ok,
            "refused": refused,
            "packets": packets,
            "seconds": dt,
            "bytes": nbytes,
        }
        print(
            f"\nReal corpus ({CORPUS}): {ok} of {len(files)} files read ({refused} refused as "
            f"broken), {packets:,} packets, {nbytes / 1e6:.1f} MB in {dt * 1000:.0f} ms = "
            f"{packets / dt:,.0f} packets/s (small files: per-file overhead dominates)"
        )

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "capture": str(main_file),
                    "results": results,
                    "memory": mem,
                    "corpus": corpus,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
