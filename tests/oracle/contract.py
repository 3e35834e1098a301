"""The contract's tables that more than one layer of the walk reads."""

from __future__ import annotations

#: Layers tshark decodes but the contract does not, after which tshark finds another link,
#: network or transport header. The walk stops at the key; the columns come from the layers
#: before it. A key ``a>b`` means: ``b`` directly after ``a`` without a layer name in between.
DEEPER_THAN_CONTRACT: dict[str, str] = {
    "wg": "WireGuard: tshark decrypts transport data with the keys of the capture's Decryption "
    "Secrets Block and dissects the inner packet; pktstream sees an opaque UDP payload",
    "6lowpan": "6LoWPAN (IPv6 over 802.15.4) is not decoded by the contract",
    "ayiya": "AYIYA (anything in anything, UDP 5072) is not a tunnel kind of the contract",
    "etherip": "EtherIP (IP protocol 97) is not a tunnel kind of the contract",
    "l2tp": "L2TP is not a tunnel kind of the contract",
    "ppp": "PPP is decoded only in a PPPoE session or PPTP's GRE, and only for IP payloads",
    "esp": "ESP stops the contract's walk (tshark decrypts it only with configured SAs)",
    "ah": "AH is walked only as an IPv6 extension header; over IPv4, ip_proto is 51 and the "
    "transport columns stay NULL",
    "nsh": "Network Service Header is not decoded by the contract",
    "capwap.data": "CAPWAP data channel is not a tunnel kind of the contract",
    "lisp-data": "LISP data plane is not a tunnel kind of the contract",
    "openvpn": "OpenVPN is not decoded by the contract",
    "pwethheuristic": "Ethernet pseudowire over MPLS: the contract decodes IP directly under MPLS",
    "pwethcw": "Ethernet pseudowire over MPLS: the contract decodes IP directly under MPLS",
    "pwethnocw": "Ethernet pseudowire over MPLS: the contract decodes IP directly under MPLS",
    "udp>ip": "IP directly in UDP without a named layer (tshark's VXLAN-GPE, UDP 4790): not a "
    "tunnel kind of the contract",
    "udp>ipv6": "IPv6 directly in UDP without a named layer (tshark's VXLAN-GPE, UDP 4790): not "
    "a tunnel kind of the contract",
    "udp>eth": "Ethernet directly in UDP without a named layer: not a tunnel kind of the contract",
}

#: Columns a link type the contract does not decode leaves NULL.
DECODE_COLUMNS: tuple[str, ...] = (
    "eth_src", "eth_dst", "ethertype", "vlan_id", "inner_vlan_id", "ip_version", "src_ip",
    "dst_ip", "ip_proto", "ttl", "ip_len", "frag_offset", "more_fragments", "src_port",
    "dst_port", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_window", "icmp_type", "icmp_code",
    "payload_len", "community_id", "tunnel", "outer_src_ip", "outer_dst_ip",
)  # fmt: skip

#: The transport layers the contract decodes.
TRANSPORTS = ("tcp", "udp", "udplite", "sctp", "icmp", "icmpv6")
#: Last fixed-header field of each decoded layer: missing means tshark ran out of captured bytes.
HEADER_END: dict[str, tuple[str, ...]] = {
    "eth": ("eth.type", "eth.len"),
    "vlan": ("vlan.etype",),
    "ieee8021ad": ("ieee8021ah.etype",),
    "ip": ("ip.dst",),
    "ipv6": ("ipv6.dst",),
    "tcp": ("tcp.urgent_pointer",),
    "udp": ("udp.checksum",),
    "udplite": ("udp.checksum",),
    "sctp": ("sctp.checksum",),
    "icmp": ("icmp.checksum",),
    "icmpv6": ("icmpv6.checksum",),
}
#: Layers after which more of the chain means tshark decodes deeper than the contract.
NETWORKISH = frozenset({"eth", "vlan", "ip", "ipv6", *TRANSPORTS})
