"""Community ID v1 (https://github.com/corelight/community-id-spec), computed by the oracle itself."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct

_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
                139: 140, 140: 139, 144: 145, 145: 144}  # fmt: skip


def community_id(proto: int, src: str, dst: str, sport: int | None = None,
                 dport: int | None = None, seed: int = 0) -> str:  # fmt: skip
    """Community ID v1 of a flow; ``sport``/``dport`` are ICMP type/code for ICMP(v6)."""
    saddr, daddr = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    one_way = False
    if proto in (1, 58) and sport is not None:
        pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
        if sport in pairs:
            dport = pairs[sport]
        else:
            one_way = True
    has_ports = sport is not None and dport is not None
    ordered = (one_way or saddr < daddr
               or (saddr == daddr and (not has_ports or sport <= dport)))  # type: ignore[operator]  # fmt: skip
    if not ordered:
        saddr, daddr, sport, dport = daddr, saddr, dport, sport
    data = struct.pack("!H", seed) + saddr + daddr + struct.pack("!BB", proto, 0)
    if has_ports:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()
