"""Synthetic captures and events for tests, docs and demos (like :mod:`numpy.testing`).

None of this is needed to decode, meter or stream traffic; it makes inputs whose right answers are
known, so tests, benchmarks, notebooks and the README's examples need no shipped captures.

* :mod:`pktstream.testing.synth`: deterministic packet captures (pcap, pcapng, gzip) of a mixed
  enterprise uplink, each frame with the column values a decoder must produce;
* :mod:`pktstream.testing.synth_flows`: captures of whole conversations, with the flow records a
  meter must produce from them;
* :mod:`pktstream.testing.netflow`: netflow events, the input of the distance pipeline.

Each is also a command (``python -m pktstream.testing.synth OUT.pcap -n 1000``, ...). The old
names ``pktstream.synth``, ``pktstream.synth_flows`` and ``pktstream.netflow`` still import, with a
``DeprecationWarning``, until the next release.

Example:
    >>> import os, tempfile
    >>> import pktstream
    >>> from pktstream.testing import netflow, synth
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.pcap")
    >>> expected = synth.write_pcap(path, 50, seed=7, return_expected=True)
    >>> pktstream.read_pcap(path).num_rows == len(expected) == 50
    True
    >>> netflow.events(10, seed=1).schema == netflow.SCHEMA
    True
"""

from . import netflow, synth, synth_flows

__all__ = ["netflow", "synth", "synth_flows"]
