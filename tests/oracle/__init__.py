"""tshark as a test oracle: the column values pktstream must produce, frame by frame.

:func:`run_tshark` runs ``tshark -T fields`` once per capture, with reassembly and
defragmentation off (pktstream reassembles nothing), and keeps every occurrence of every field:
a tunnelled packet has one ``ip.src`` per IP header, an ICMP error one more for the header it
quotes. :func:`expect` then walks each frame's ``frame.protocols`` chain the way pktstream
decodes a packet (link layer, VLAN tags, MPLS, PPPoE, IP and IPv6 with extension headers,
IP-in-IP, GRE, ERSPAN, VXLAN, Geneve, GTP-U, then TCP/UDP/UDP-Lite/SCTP/ICMP) and picks, for
every column, the occurrence that belongs to the layer the contract names: innermost IP for
tunnels, never the header quoted inside an ICMP error. Three things the decoder does beyond the
contract's text are checked the same way, marked where they are handled: 802.11 (plain and
radiotap) data frames, Teredo as tunnel kind ``"teredo"``, and PPP in PPTP's enhanced GRE.

Where tshark decodes deeper than pktstream (decrypted WireGuard, 6LoWPAN, L2TP, ...) the walk
stops at the first layer pktstream does not decode, and the columns come from the layers before
it. Every such case is listed, with its reason, in :data:`DEEPER_THAN_CONTRACT`; a frame where
tshark goes deeper through a protocol missing from that table is an :class:`OracleError`, so the
table can only grow on purpose. Where the contract deliberately differs from tshark (Community
ID of fragments, of truncated transport headers and of IPv6 or tunnelled IP-only flows; frame
numbers with pcapng custom blocks) the rule sits next to the code that applies it.

One module per layer of the walk, each owning its tables and columns:

* :mod:`oracle.tshark`: running tshark, its records (:class:`Frame`), timestamps;
* :mod:`oracle.model`: expectations (:class:`AnyOf`, :class:`Satisfies`, :func:`same`) and the
  walk's shared state; :mod:`oracle.contract`: the tables several layers read;
* :mod:`oracle.link`, :mod:`oracle.network` (IP, tunnels, "deeper than the contract") and
  :mod:`oracle.transport` (with :mod:`oracle.community_id`): one step and its columns each;
* :mod:`oracle.expect`: :func:`expect`, the walk from the frame to the row.

Example:
    >>> frames = run_tshark("../shared/pcaps/wireshark/ipoipoip.pcap")  # doctest: +SKIP
    >>> expect(packet_records(frames)[0]).values["tunnel"]  # doctest: +SKIP
    'ipip'
"""

from .community_id import community_id
from .contract import DECODE_COLUMNS, DEEPER_THAN_CONTRACT, HEADER_END, NETWORKISH, TRANSPORTS
from .expect import expect
from .link import DECODED_ENCAPS, DECODED_LINKTYPES
from .model import AnyOf, Expectation, IpLayer, Satisfies, chain_prev, same
from .network import IPV6_EXT_NEXT, UDP_TUNNELS
from .tshark import (
    FIELDS,
    PREFS,
    TSHARK,
    Frame,
    OracleError,
    TsharkResult,
    epoch_ns,
    packet_records,
    run_tshark,
    tshark_command,
    tshark_version,
)

__all__ = [
    "AnyOf",
    "DECODED_ENCAPS",
    "DECODED_LINKTYPES",
    "DECODE_COLUMNS",
    "DEEPER_THAN_CONTRACT",
    "Expectation",
    "FIELDS",
    "Frame",
    "HEADER_END",
    "IPV6_EXT_NEXT",
    "IpLayer",
    "NETWORKISH",
    "OracleError",
    "PREFS",
    "Satisfies",
    "TRANSPORTS",
    "TSHARK",
    "TsharkResult",
    "UDP_TUNNELS",
    "chain_prev",
    "community_id",
    "epoch_ns",
    "expect",
    "packet_records",
    "run_tshark",
    "same",
    "tshark_command",
    "tshark_version",
]
