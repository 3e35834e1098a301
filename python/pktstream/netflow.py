"""Deprecated: :mod:`pktstream.testing.netflow` under its old name, until the next release."""

import sys
import warnings

from .testing import netflow as _moved
from .testing.netflow import *  # noqa: F403  (the names, for type checkers)
from .testing.netflow import __all__  # noqa: F401

if __name__ == "__main__":  # `python -m pktstream.netflow` still runs the command
    warnings.warn("python -m pktstream.netflow is deprecated: use python -m pktstream.testing.netflow",
                  DeprecationWarning, stacklevel=1)
    sys.exit(_moved.main())
warnings.warn("pktstream.netflow moved to pktstream.testing.netflow; the old name goes in the next release",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved  # one module under both names: attributes, private ones too, are shared
