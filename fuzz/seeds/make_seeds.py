#!/usr/bin/env python3
"""Regenerates the fuzz seed corpora and ORIGIN.md (deterministic).

    /work/main/.venv/bin/python fuzz/seeds/make_seeds.py [PCAP_DIR]

PCAP_DIR defaults to /work/shared/pcaps. Only captures whose MANIFEST.tsv licence is BSD, MIT or
Apache are used (never the GPL Wireshark ones). read_file/ gets whole capture files; decode_frame/
gets single frames, each prefixed with its link type as 2 big-endian bytes (the format the
decode_frame target reads).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PCAPS = Path("/work/shared/pcaps")
PY = sys.executable

# (file in PCAP_DIR, why it is here)
CAPTURES = [
    ("pcap-parser/ntp.pcap", "classic pcap, Ethernet/IPv4/UDP"),
    ("pcap-parser/modified-format.pcap", "Kuznetzov 'modified' pcap variant"),
    ("gopacket/pcap__test_dns.pcap", "classic pcap, DNS over Ethernet"),
    ("gopacket/pcapgo__tests__be__test006.pcapng", "big-endian pcapng, several interfaces/link types"),
    ("gopacket/pcapgo__tests__le__test202.pcapng", "little-endian pcapng, per-packet link types, options"),
    ("gopacket/pcapgo__tests__le__test017.pcapng", "pcapng with unknown/custom blocks"),
    ("python-pcapng/test006.ntar", "pcapng (ntar) with an xeth interface"),
]
# (output name, synth arguments)
SYNTH = [
    ("synth.pcap", []),
    ("synth_ns_be.pcap", ["--ns", "--big-endian"]),
    ("synth_2if.pcapng", ["--pcapng", "--interfaces", "2"]),
    ("synth.pcap.gz", []),
    ("synth.pcapng.gz", ["--pcapng"]),
]
KINDS = ["tcp4", "udp6", "icmp4", "icmp6", "ext6", "frag4", "frag6", "vxlan", "gre", "ipip", "arp",
         "igmp", "trunc", "vlan"]
LOOPBACK = "gopacket/pcap__test_loopback.pcap"  # too big (58 KB) as a read_file seed, fine to cut


def licence_ok(rel: str) -> str:
    for line in (PCAPS / "MANIFEST.tsv").read_text().splitlines()[1:]:
        cols = line.split("\t")
        if cols[0] == rel:
            origin = cols[-1]
            if "GPL" in origin or not any(k in origin for k in ("BSD", "MIT", "Apache")):
                raise SystemExit(f"{rel}: licence not allowed: {origin}")
            return origin
    raise SystemExit(f"{rel}: not in MANIFEST.tsv")


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """(link type, frame) of every packet in a pcap or pcapng file (minimal parser)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    out: list[tuple[int, bytes]] = []
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        pos, e, links = 0, "<", []
        while pos + 12 <= len(data):
            btype = struct.unpack_from(e + "I", data, pos)[0]
            if btype == 0x0A0D0D0A:
                e = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                links = []
            blen = struct.unpack_from(e + "I", data, pos + 4)[0]
            body = data[pos + 8 : pos + blen - 4]
            if btype == 1:
                links.append(struct.unpack_from(e + "H", body, 0)[0])
            elif btype == 6:
                ifid, _, _, cap, _ = struct.unpack_from(e + "IIIII", body, 0)
                if ifid < len(links):
                    out.append((links[ifid], body[20 : 20 + cap]))
            elif btype == 3 and links:
                out.append((links[0], body[4:]))
            if blen < 12:
                break
            pos += blen
        return out
    for e in "<>":
        if struct.unpack_from(e + "I", data, 0)[0] in (0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34):
            break
    else:
        raise ValueError("not a capture")
    modified = struct.unpack_from(e + "I", data, 0)[0] == 0xA1B2CD34
    link = struct.unpack_from(e + "I", data, 20)[0] & 0xFFFF
    pos = 24
    hdr = 24 if modified else 16
    while pos + hdr <= len(data):
        cap = struct.unpack_from(e + "I", data, pos + 8)[0]
        out.append((link, data[pos + hdr : pos + hdr + cap]))
        pos += hdr + cap
    return out


def main() -> None:
    global PCAPS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pcap_dir", nargs="?", type=Path, default=PCAPS, help="the capture corpus (default %(default)s)")
    PCAPS = p.parse_args().pcap_dir
    if not (PCAPS / "MANIFEST.tsv").is_file():  # checked before anything is deleted
        sys.exit(f"{PCAPS}: no MANIFEST.tsv there: not a capture corpus")
    rf, df = HERE / "read_file", HERE / "decode_frame"
    for d in (rf, df):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    origin = [
        "# Fuzz seed origins",
        "",
        "Regenerate with `/work/main/.venv/bin/python fuzz/seeds/make_seeds.py` (deterministic).",
        "Only BSD/MIT/Apache captures from /work/shared/pcaps are used (MANIFEST.tsv), never GPL ones.",
        "",
        "## read_file/ (whole capture files)",
        "",
        "| seed | origin | notes |",
        "|---|---|---|",
    ]
    for rel, why in CAPTURES:
        lic = licence_ok(rel)
        name = rel.replace("/", "__")
        shutil.copyfile(PCAPS / rel, rf / name)
        origin.append(f"| `{name}` | `{rel}` from {lic} | {why} |")
    for name, args in SYNTH:
        subprocess.run(
            [PY, "-m", "pktstream.testing.synth", str(rf / name), "-n", "20", "--seed", "1", *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cmd = " ".join(["python -m pktstream.testing.synth", name, "-n 20 --seed 1", *args])
        origin.append(f"| `{name}` | generated: `{cmd}` | pktstream synthetic traffic |")
    for p in rf.iterdir():
        assert p.stat().st_size < 20_000, p

    origin += [
        "",
        "## decode_frame/ (2-byte big-endian link type + one frame)",
        "",
        "| seed | link type | origin |",
        "|---|---|---|",
    ]

    def put(name: str, link: int, frame: bytes, src: str) -> None:
        (df / name).write_bytes(struct.pack(">H", link) + frame)
        origin.append(f"| `{name}` | {link} | {src} |")

    # Ethernet frames: the shortest synth frame of each kind (one per decoder path: TCP/UDP/ICMP
    # over v4 and v6, IPv6 extension headers, fragments, tunnels, ARP, IGMP, truncation), the
    # shortest QinQ-tagged one, and real frames.
    sys.path.insert(0, str(HERE.parent.parent / "python"))
    from pktstream.testing.synth import packets

    best: dict[str, bytes] = {}
    for sp in packets(5000, seed=3):
        kind = sp.kind
        if sp.frame[12:14] in (b"\x88\xa8", b"\x81\x00") and kind not in ("trunc", "snap"):
            kind = "vlan"
        if kind not in best or len(sp.frame) < len(best[kind]):
            best[kind] = sp.frame
    for kind in KINDS:
        put(f"eth_{kind}", 1, best[kind], f"shortest '{kind}' frame of pktstream.testing.synth.packets(5000, seed=3)")
    ntp = frames((PCAPS / "pcap-parser/ntp.pcap").read_bytes())
    put("eth_ntp_0", 1, ntp[0][1], "frame 0 of pcap-parser/ntp.pcap")
    licence_ok(LOOPBACK)
    loop = frames((PCAPS / LOOPBACK).read_bytes())
    assert loop[0][0] == 0
    put("null_0", 0, loop[0][1], f"frame 0 of {LOOPBACK}")
    put("loop_108", 108, loop[0][1][:4][::-1] + loop[0][1][4:],
        f"frame 0 of {LOOPBACK}, family word byte-swapped to network order for LINKTYPE_LOOP")

    # Other link types: the untagged tcp4 and udp6 frames above with the Ethernet header
    # stripped, raw or re-wrapped.
    v4, v6 = best["tcp4"], best["udp6"]
    assert v4[12:14] == b"\x08\x00" and v6[12:14] == b"\x86\xdd"
    put("raw_12_v4", 12, v4[14:], "synth IPv4 frame, Ethernet header stripped")
    put("raw_101_v6", 101, v6[14:], "synth IPv6 frame, Ethernet header stripped")
    put("ipv4_228", 228, v4[14:], "synth IPv4 frame, Ethernet header stripped")
    put("ipv6_229", 229, v6[14:], "synth IPv6 frame, Ethernet header stripped")
    sll = struct.pack(">HHH8sH", 0, 1, 6, v4[6:12] + b"\0\0", 0x0800)
    put("sll_113", 113, sll + v4[14:], "synth IPv4 frame re-wrapped in a Linux cooked (SLL) header")
    sll2 = struct.pack(">HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, v6[6:12] + b"\0\0")
    put("sll2_276", 276, sll2 + v6[14:], "synth IPv6 frame re-wrapped in a Linux SLL2 header")
    # 802.11 data frame (FromDS=0, ToDS=1) + LLC/SNAP, and the same behind a minimal radiotap
    # header (version 0, length 8, no present fields).
    wlan = (
        struct.pack("<HH", 0x0108, 0)
        + v4[0:6] + v4[6:12] + v4[0:6]
        + struct.pack("<H", 0)
        + b"\xaa\xaa\x03\x00\x00\x00\x08\x00"
        + v4[14:]
    )
    put("wlan_105", 105, wlan, "synth IPv4 frame re-wrapped in an 802.11 data header + LLC/SNAP")
    put("radiotap_127", 127, struct.pack("<BBHI", 0, 0, 8, 0) + wlan,
        "the wlan_105 frame behind an 8-byte radiotap header")

    (HERE / "ORIGIN.md").write_text("\n".join(origin) + "\n")
    print(f"{len(list(rf.iterdir()))} read_file seeds, {len(list(df.iterdir()))} decode_frame seeds")


if __name__ == "__main__":
    main()
