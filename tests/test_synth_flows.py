"""The conversation generator's flow ground truth (``pktstream.testing.synth_flows``) against the meter and NFStream."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pktstream
import pytest
from flow_oracle import nfstream_flows, undirected
from pktstream.testing import synth_flows


def _by_key(records: list[dict]) -> dict[tuple, list[int]]:
    agg: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for r in records:
        k = undirected(
            r["ip_version"],
            r["src_ip"],
            r["src_port"] or 0,
            r["dst_ip"],
            r["dst_port"] or 0,
            r["ip_proto"],
            r["vlan_id"] or 0,
        )
        agg[k][0] += 1
        agg[k][1] += r["packets"]
        agg[k][2] += r["bytes"]
    return dict(agg)


@pytest.mark.parametrize(
    ("idle", "active", "seed"),
    [(120.0, 1800.0, 0), (120.0, 1800.0, 1), (5.0, 30.0, 0), (5.0, 30.0, 1), (5.0, 30.0, 2)],
)
def test_flows_equal_the_ground_truth(tmp_path: Path, idle: float, active: float, seed: int) -> None:
    path = tmp_path / "conv.pcap"
    truth = synth_flows.write_flows_pcap(
        path, conversations=400, seed=seed, idle_timeout=idle, active_timeout=active, return_truth=True
    )
    got = synth_flows.flow_rows(pktstream.flows(path, idle_timeout=idle, active_timeout=active))
    assert len(got) == len(truth)
    for ours, expected in zip(got, truth):
        assert ours == expected
    reasons = collections.Counter(r["expiration"] for r in truth)
    assert set(reasons) == {"idle", "active", "end"}, reasons
    assert reasons["end"] >= 1 and reasons["active"] >= 3 and reasons["idle"] > len(truth) // 2
    # Known conversations: keys cut in two by an idle pause or key reuse, long ones by the active timeout.
    per_key = collections.defaultdict(list)
    for r in truth:
        per_key[next(iter(_by_key([r])))].append(r["expiration"])
    assert sum(1 for v in per_key.values() if len(v) > 1 and v[0] == "idle") >= 10
    assert sum(1 for v in per_key.values() if "active" in v) >= 3
    # FIN/RST end no flow by default: both FINs and RSTs are seen inside records, IPv6 and VLANs too.
    tcp = [r for r in truth if r["ip_proto"] == 6]
    assert any(r["src2dst_tcp_flags"] & 1 and r["dst2src_tcp_flags"] & 1 for r in tcp)
    assert any((r["src2dst_tcp_flags"] | r["dst2src_tcp_flags"]) & 4 for r in tcp)
    assert {r["ip_version"] for r in truth} == {4, 6}
    assert {r["ip_proto"] for r in truth} == {1, 6, 17, 58}
    assert any(r["vlan_id"] is not None for r in truth)
    assert sum(r["packets"] for r in truth) == pktstream.read_pcap(path, columns=["frame_number"]).num_rows


def test_nanosecond_gzip_capture(tmp_path: Path) -> None:
    path = tmp_path / "conv.pcap.gz"
    truth = synth_flows.write_flows_pcap(
        path, conversations=150, seed=4, idle_timeout=5, active_timeout=30, nanosecond=True, return_truth=True
    )
    ts = pktstream.read_pcap(path, columns=["ts"])["ts"].cast("int64").to_pylist()
    assert all(a < b for a, b in zip(ts, ts[1:]))  # strictly increasing
    assert any(t % 1000 for t in ts)  # nanosecond resolution kept
    assert synth_flows.flow_rows(pktstream.flows(path, idle_timeout=5, active_timeout=30)) == truth


def test_nfstream_agrees_with_the_ground_truth(tmp_path: Path) -> None:
    pytest.importorskip("nfstream")
    path = tmp_path / "conv.pcap"
    truth = synth_flows.write_flows_pcap(path, conversations=600, seed=7, return_truth=True)
    refused, theirs = nfstream_flows(str(path))  # idle 120 s, active 1800 s: the defaults
    assert refused is None
    ours = _by_key(truth)
    assert theirs == ours  # records, packets and bytes per undirected key
    assert sum(v[0] for v in ours.values()) > len(ours)  # some keys are split


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    synth_flows.write_flows_pcap(a, conversations=200, seed=9)
    synth_flows.write_flows_pcap(b, conversations=200, seed=9, return_truth=True)
    synth_flows.write_flows_pcap(c, conversations=200, seed=10)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_cli_writes_the_capture_and_the_truth(tmp_path: Path) -> None:
    out, truth = tmp_path / "cli.pcap", tmp_path / "truth.jsonl"
    argv = [str(out), "--conversations", "80", "--seed", "2", "--idle-timeout", "5", "--active-timeout", "30"]
    assert synth_flows.main([*argv, "--truth", str(truth)]) == 0
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    assert synth_flows.flow_rows(pktstream.flows(out, idle_timeout=5, active_timeout=30)) == records
