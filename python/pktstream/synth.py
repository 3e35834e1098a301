"""Deprecated: :mod:`pktstream.testing.synth` under its old name, until the next release."""

import sys
import warnings

from .testing import synth as _moved
from .testing.synth import *  # noqa: F403  (the names, for type checkers)
from .testing.synth import __all__  # noqa: F401

if __name__ == "__main__":  # `python -m pktstream.synth` still runs the command
    warnings.warn("python -m pktstream.synth is deprecated: use python -m pktstream.testing.synth",
                  DeprecationWarning, stacklevel=1)
    sys.exit(_moved.main())
warnings.warn("pktstream.synth moved to pktstream.testing.synth; the old name goes in the next release",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved  # one module under both names: attributes, private ones too, are shared
