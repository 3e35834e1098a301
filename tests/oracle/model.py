"""The oracle's vocabulary: expectations (exact, open or a predicate), typed equality, and the
state of the walk down one frame's protocol chain, which the per-layer steps share."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .contract import HEADER_END
from .tshark import Frame


@dataclass(frozen=True)
class AnyOf:
    """An expectation the contract leaves open between a few values."""

    options: tuple[Any, ...]
    why: str

    def accepts(self, value: Any) -> bool:
        return any(same(value, option) for option in self.options)

    def __repr__(self) -> str:
        return f"AnyOf{self.options!r}"


@dataclass(frozen=True)
class Satisfies:
    """An expectation stated as a predicate (e.g. "a non-NULL decode status")."""

    check: Callable[[Any], bool]
    what: str

    def accepts(self, value: Any) -> bool:
        return bool(self.check(value))

    def __repr__(self) -> str:
        return f"<{self.what}>"


def same(ours: Any, expected: Any, *, address: bool = False) -> bool:
    """Typed equality; with ``address``, IP addresses compare by value (``2001:DB8::1`` ==
    ``2001:db8::1``)."""
    if isinstance(expected, (AnyOf, Satisfies)):
        return expected.accepts(ours)
    if address and isinstance(ours, str) and isinstance(expected, str):
        try:
            return ipaddress.ip_address(ours) == ipaddress.ip_address(expected)
        except ValueError:
            return False
    return ours == expected and type(ours) is type(expected)


@dataclass
class Expectation:
    """What pktstream must produce for one frame."""

    values: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # exclusions and contract rules applied
    oracle_errors: list[str] = field(default_factory=list)


@dataclass
class IpLayer:
    pos: int  # index in the chain
    version: int
    ext: list[int] = field(default_factory=list)  # chain indexes of IPv6 extension headers
    transport: int | None = None  # chain index of the transport layer after it


@dataclass
class Walk:
    """Where the walk down ``frame.chain`` stands, as the contract decodes: the link step, then the
    network and tunnel step, leave here what the column steps read."""

    frame: Frame
    notes: list[str]  # exclusions and contract rules applied
    errors: list[str]  # the oracle's own model does not fit tshark's output
    i: int = 0  # the next chain index to look at
    tags: list[int] = field(default_factory=list)  # VLAN tags of the outermost link header
    ethertype: Any = None  # the outermost link header's payload type
    ips: list[IpLayer] = field(default_factory=list)
    tunnel: str | None = None
    inner_from: int = 0  # index in `ips` of the first IP header inside the innermost tunnel entered
    stop: int = 0  # the chain index where the walk stopped
    truncated: list[str] = field(default_factory=list)  # layers whose header caplen cut

    @property
    def chain(self) -> list[str]:
        return self.frame.chain

    @property
    def n(self) -> int:
        return len(self.frame.chain)

    def skip_ethertype(self, k: int) -> int:
        return k + 1 if k < self.n and self.chain[k] == "ethertype" else k

    def end_ok(self, pos: int) -> bool:
        """Whether tshark read the header at ``chain[pos]`` to its end (else it is noted as cut)."""
        names = HEADER_END.get(self.chain[pos])
        if names is None or any(self.frame.at(name, pos) is not None for name in names):
            return True
        self.truncated.append(self.chain[pos])
        return False


def to_int(text: str | None, base: int = 10) -> int | None:
    return None if text is None else int(text, base)


def to_bool(text: str | None) -> bool | None:
    return None if text is None else text in ("1", "True")


def chain_prev(chain: list[str], i: int) -> str | None:
    """The layer before ``chain[i]``, skipping tshark's ``ethertype`` pseudo-layer."""
    j = i - 1
    while j >= 0 and chain[j] == "ethertype":
        j -= 1
    return chain[j] if j >= 0 else None
