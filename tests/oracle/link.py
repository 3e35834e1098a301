"""The link layer: which link types the contract decodes, the link header and its VLAN tags, and
the link columns (``link_type``, ``eth_src``, ``eth_dst``, ``ethertype``, ``vlan_id``,
``inner_vlan_id``)."""

from __future__ import annotations

from typing import Any

from .contract import DECODE_COLUMNS
from .model import AnyOf, Satisfies, Walk, to_int
from .tshark import SNAP_PIDS, Frame, OracleError

#: Link types the contract decodes, by tshark encapsulation (frame.encap_type) -> LINKTYPE_ values.
DECODED_ENCAPS: dict[int, frozenset[int]] = {
    1: frozenset({1}),  # Ethernet
    25: frozenset({113}),  # Linux cooked (SLL)
    210: frozenset({276}),  # Linux cooked v2 (SLL2)
    7: frozenset({101, 12, 14}),  # raw IP
    129: frozenset({228}),  # raw IPv4
    130: frozenset({229}),  # raw IPv6
    15: frozenset({0}),  # BSD null
    174: frozenset({108}),  # OpenBSD loop
    # 802.11, plain and behind radiotap: not in the contract's list, but src/decode/link.rs decodes
    # unprotected data frames (LLC/SNAP ethertype, then IP); checked here against tshark.
    20: frozenset({105}),
    23: frozenset({127}),
    # Link layers in src/decode/link_extra.rs (LLC/SNAP or an NLPID in front of IP).
    2: frozenset({6}),  # Token Ring
    5: frozenset({10}),  # FDDI
    6: frozenset({10}),  # FDDI, bit-swapped addresses (what libpcap writes as LINKTYPE_FDDI)
    26: frozenset({107}),  # Frame Relay
}
DECODED_LINKTYPES = frozenset().union(*DECODED_ENCAPS.values())


def link_type(encap: int | None) -> Any:
    """The ``link_type`` expectation for a tshark encapsulation the contract decodes."""
    options = tuple(sorted(DECODED_ENCAPS[encap]))  # type: ignore[index]
    return options[0] if len(options) == 1 else AnyOf(options, "same tshark encap")


def undecoded(encap: int | None, v: dict[str, Any], notes: list[str]) -> None:
    """The row of a link type the contract does not decode: no column past the link type."""
    v["link_type"] = Satisfies(lambda x: x not in DECODED_LINKTYPES, "a link type not decoded")
    for column in DECODE_COLUMNS:
        v[column] = None
    v["decode_status"] = Satisfies(
        lambda x: isinstance(x, str) and x.startswith("link:"), 'a "link: ..." status'
    )
    notes.append(f"link type not decoded by the contract (tshark encap {encap})")


def walk_link(w: Walk, encap: int | None) -> None:
    """Steps over the link header and its VLAN tags; leaves ``w.i`` at the payload, ``w.tags`` and
    ``w.ethertype`` set."""
    f, chain, n = w.frame, w.chain, w.n
    first_link = chain[0] if chain else None
    i = 0
    ethertype: Any = None
    if encap == 1:
        if first_link != "eth":
            raise OracleError(f"frame {f.number}: Ethernet frame without eth layer: {chain}")
        w.end_ok(0)
        i = 1
    elif encap in (25, 210):
        i = 1
    elif encap in (15, 174, 7):
        if first_link not in ("null", "raw"):
            raise OracleError(f"frame {f.number}: unexpected link layer {chain[:1]}")
        i = 1
    elif encap in (2, 5, 6):
        if first_link not in ("tr", "fddi"):
            raise OracleError(f"frame {f.number}: unexpected link layer {chain[:1]}")
        i = 1
    elif encap == 26:
        if first_link != "fr":
            raise OracleError(f"frame {f.number}: unexpected link layer {chain[:1]}")
        ethertype = to_int(f.at("fr.snaptype", 0), 16)  # only SNAP (NLPID 0x80) names an ethertype
        i = 1
    elif encap in (20, 23):
        if "wlan" not in chain:
            raise OracleError(f"frame {f.number}: 802.11 frame without wlan layer: {chain}")
        i = chain.index("wlan") + 1
    # raw IPv4 / IPv6 (129, 130): the chain starts at ip / ipv6

    # link-level run: VLAN tags, then the payload ethertype
    tags = w.tags
    if encap == 1 and i < n and chain[i] == "ethertype":
        ethertype = to_int(f.at("eth.type", 0), 16)
        i = w.skip_ethertype(i)
        while i < n and chain[i] in ("vlan", "ieee8021ad"):
            tags.append(i)
            w.end_ok(i)
            name = "vlan.etype" if chain[i] == "vlan" else "ieee8021ah.etype"
            ethertype = to_int(f.at(name, i), 16)
            i = w.skip_ethertype(i + 1)
    elif encap in (1, 2, 5, 6, 20, 23) and i < n and chain[i] == "llc":
        # 802.3 (or 802.11) LLC. Contract: NULL "for 802.3/LLC frames without SNAP"; behind a
        # SNAP header the protocol ID is an ethertype only for OUI 00-00-00 (RFC 1042) and
        # 00-00-F8 (802.1H); other OUIs number their own protocols (CDP is Cisco's 0x2000).
        oui = f.at("llc.oui", i)
        if oui is not None:
            if to_int(oui, 16) in (0x000000, 0x0000F8):
                ethertype = _snap_protocol(f, i)
            i += 1
    elif encap in (25, 210):
        for name in ("sll.etype", "sll.ltype", "sll.gretype"):
            if f.at(name, 0) is not None:
                ethertype = to_int(f.at(name, 0), 16)
                break
        i = w.skip_ethertype(i)
        if i < n and chain[i] in ("vlan", "ieee8021ad"):
            w.notes.append("VLAN tags under SLL: ethertype is the SLL protocol or the tagged type")
            sll_protocol = ethertype
            while i < n and chain[i] in ("vlan", "ieee8021ad"):
                tags.append(i)
                name = "vlan.etype" if chain[i] == "vlan" else "ieee8021ah.etype"
                ethertype = to_int(f.at(name, i), 16)
                i = w.skip_ethertype(i + 1)
            ethertype = AnyOf((sll_protocol, ethertype), "contract: 'for SLL the protocol field'")
    w.i, w.ethertype = i, ethertype


def link_columns(w: Walk, encap: int | None, v: dict[str, Any]) -> None:
    f, chain = w.frame, w.chain
    if encap == 1:
        v["eth_src"], v["eth_dst"] = f.at("eth.src", 0), f.at("eth.dst", 0)
    elif encap in (25, 210):
        v["eth_src"] = f.at("sll.src.eth", 0) if to_int(f.at("sll.halen", 0)) == 6 else None
        v["eth_dst"] = None
    else:
        v["eth_src"] = v["eth_dst"] = None
    if encap in (1, 25, 210, 20, 23, 2, 5, 6, 26):
        v["ethertype"] = w.ethertype
    else:
        # null / loop / raw IP: the contract defines no ethertype for these link types
        inner = w.ips[0].version if w.ips else None
        by_version = {4: 0x0800, 6: 0x86DD}.get(inner)  # type: ignore[arg-type]
        v["ethertype"] = AnyOf((None, by_version), "no ethertype defined for null/loop/raw")
    tag_ids = [to_int(f.at("vlan.id" if chain[t] == "vlan" else "ieee8021ad.id", t)) for t in w.tags]
    v["vlan_id"] = tag_ids[0] if tag_ids else None
    v["inner_vlan_id"] = tag_ids[1] if len(tag_ids) > 1 else None


def _snap_protocol(f: Frame, pos: int) -> int | None:
    """The protocol ID of the SNAP header at ``chain[pos]``: tshark names the field after the OUI
    (``llc.type`` for RFC 1042 ethertypes, ``llc.cisco_pid``, ...)."""
    for name in ["llc.type"] + [f"llc.{pid}" for pid in SNAP_PIDS.split()]:
        value = f.at(name, pos)
        if value is not None:
            return int(value, 16) if value.startswith("0x") else int(value)
    raise OracleError(f"frame {f.number}: SNAP header without a protocol ID field")
