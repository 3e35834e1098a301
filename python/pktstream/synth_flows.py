"""Deprecated: :mod:`pktstream.testing.synth_flows` under its old name, until the next release."""

import sys
import warnings

from .testing import synth_flows as _moved
from .testing.synth_flows import *  # noqa: F403  (the names, for type checkers)
from .testing.synth_flows import __all__  # noqa: F401

if __name__ == "__main__":  # `python -m pktstream.synth_flows` still runs the command
    warnings.warn("python -m pktstream.synth_flows is deprecated: use python -m pktstream.testing.synth_flows",
                  DeprecationWarning, stacklevel=1)
    sys.exit(_moved.main())
warnings.warn("pktstream.synth_flows moved to pktstream.testing.synth_flows; the old name goes in the next release",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved  # one module under both names: attributes, private ones too, are shared
