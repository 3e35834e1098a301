"""The pktstream row for one tshark packet record: the walk down its protocol chain, layer by layer."""

from __future__ import annotations

from typing import Any

from .link import DECODED_ENCAPS, link_columns, link_type, undecoded, walk_link
from .model import AnyOf, Expectation, Satisfies, Walk, to_int
from .network import deeper_than_contract, ip_columns, walk_network
from .tshark import Frame, epoch_ns


def expect(frame: Frame, row_number: int | None = None) -> Expectation:
    """The pktstream row for a tshark packet record (``row_number``: its 1-based position among
    the capture's packets; defaults to tshark's frame number)."""
    f = frame
    v: dict[str, Any] = {}
    notes: list[str] = []
    errors: list[str] = []
    frame_columns(f, row_number, v)
    encap = to_int(f.first("frame.encap_type"))
    if encap not in DECODED_ENCAPS:
        undecoded(encap, v, notes)
        return Expectation(v, notes, errors)
    v["link_type"] = link_type(encap)

    w = Walk(f, notes, errors)
    walk_link(w, encap)
    walk_network(w)
    if w.truncated:
        notes.append(f"header cut by caplen in: {', '.join(w.truncated)}")
    deeper_than_contract(w)

    link_columns(w, encap, v)
    ip_columns(w, v)
    v["decode_status"] = decode_status(w)
    return Expectation(v, notes, errors)


def frame_columns(f: Frame, row_number: int | None, v: dict[str, Any]) -> None:
    """``frame_number``, ``ts``, ``caplen``, ``wirelen`` and ``interface_id``."""
    # frame_number: tshark numbers every record, including pcapng custom blocks; pktstream
    # numbers packets. Without custom blocks the two agree.
    v["frame_number"] = row_number if row_number is not None else f.number
    v["ts"] = epoch_ns(f.first("frame.time_epoch"))  # None only for Simple Packet Blocks
    v["caplen"] = to_int(f.first("frame.cap_len"))
    v["wirelen"] = to_int(f.first("frame.len"))
    v["interface_id"] = to_int(f.first("frame.interface_id"))  # absent for classic pcap


def decode_status(w: Walk) -> Any:
    if w.truncated:
        return Satisfies(lambda x: isinstance(x, str) and x != "", "a decode status")
    elif w.frame.first("_ws.malformed") is not None:
        # tshark flags a malformed layer, possibly one pktstream does not decode: open
        return AnyOf((None, Satisfies(bool, "any status")), "tshark: malformed")
    else:
        return None
