"""The `pktstream` command line, run as a user would (a subprocess of the installed entry point)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pktstream
import pyarrow.parquet as pq
import pytest

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample.pcap"


def run(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("pktstream", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "pktstream.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)


def test_inspect_summarises_the_capture():
    out = run("inspect", str(SAMPLE), "-n", "3")
    assert out.returncode == 0, out.stderr
    table = pktstream.read_pcap(SAMPLE)
    assert "Packets:         200" in out.stdout
    assert "pcap (microsecond timestamps)" in out.stdout
    assert "ethernet (200)" in out.stdout
    assert "TCP" in out.stdout and "Top talkers" in out.stdout
    first_src = table["src_ip"][0].as_py()
    assert "First 3 packets" in out.stdout and first_src in out.stdout


def test_inspect_json_counts_match_the_table():
    out = run("inspect", str(DATA / "gopacket_test_dns.pcap"), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    table = pktstream.read_pcap(DATA / "gopacket_test_dns.pcap")
    assert report["packets"] == table.num_rows
    assert report["captured_bytes"] == sum(table["caplen"].to_pylist())
    assert report["protocols"] == {"UDP": table.num_rows}


def test_convert_writes_the_same_table_to_parquet(tmp_path):
    out_file = tmp_path / "out.parquet"
    out = run("convert", str(SAMPLE), str(out_file))
    assert out.returncode == 0, out.stderr
    assert pq.read_table(out_file).equals(pktstream.read_pcap(SAMPLE))
    proj = tmp_path / "proj.parquet"
    assert run("convert", str(SAMPLE), str(proj), "--columns", "ts,dst_port").returncode == 0
    assert pq.read_table(proj).column_names == ["ts", "dst_port"]


def test_errors_are_one_line_with_status_2(tmp_path):
    missing = run("inspect", str(tmp_path / "nope.pcap"))
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.pcap"
    bad.write_text("hello world, not a capture")
    result = run("convert", str(bad), str(tmp_path / "x.parquet"))
    assert result.returncode == 2 and "magic" in result.stderr and "Traceback" not in result.stderr


def test_schema_lists_every_column():
    out = run("schema")
    assert out.returncode == 0
    assert [line.split()[0] for line in out.stdout.splitlines()] == pktstream.schema().names


def _cargo_version() -> str:
    """The one version number of the project: Cargo.toml's [package] version."""
    import re

    text = (Path(__file__).resolve().parents[1] / "Cargo.toml").read_text()
    match = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    assert match, "Cargo.toml has no [package] version"
    return match.group(1)


def test_version_names_the_build_and_its_libraries():
    import importlib.metadata

    r = run("--version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    version = _cargo_version()
    assert lines[0] == f"pktstream {version}"
    assert pktstream.__version__ == version == importlib.metadata.version("pktstream")
    assert lines[1].startswith("librdkafka 2.")
    features = lines[1].split("(", 1)[1].rstrip(")").split(",")
    for feature in ("ssl", "sasl_plain", "sasl_scram", "sasl_oauthbearer", "zstd", "gzip", "lz4", "snappy"):
        assert feature in features, (feature, lines[1])
    assert lines[2].startswith("libpcap version 1."), lines
    info = pktstream.build_info()
    assert info["version"] == version and info["librdkafka_features"] == features


@pytest.mark.parametrize("name", ["dns.pcap", "dns.pcap.gz"])
def test_convert_to_pcap_writes_what_tcpdump_writes(tmp_path: Path, name: str) -> None:
    """``pktstream convert IN OUT.pcap --bpf EXPR`` is ``tcpdump -r IN -w OUT EXPR``: the same
    records, byte for byte (the file headers differ only in the snap length field)."""
    import gzip

    tcpdump = shutil.which("tcpdump")
    assert tcpdump, "scripts/setup.sh installs tcpdump"
    out = tmp_path / name
    r = run("convert", str(SAMPLE), str(out), "--bpf", "udp port 53", "--no-progress")
    assert r.returncode == 0, r.stderr
    theirs = tmp_path / "tcpdump.pcap"
    subprocess.run([tcpdump, "-r", str(SAMPLE), "-w", str(theirs), "udp port 53"], check=True, capture_output=True)
    ours = out.read_bytes()
    if name.endswith(".gz"):
        ours = gzip.decompress(ours)
    assert ours[24:] == theirs.read_bytes()[24:] and len(ours) > 24
    assert f"wrote {pktstream.read_pcap(out).num_rows:,} packets" in r.stderr
