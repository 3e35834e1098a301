"""A progress bar for long reads: tqdm when it is installed and stderr is a terminal, else silent."""

from __future__ import annotations

import sys
from typing import Any, Optional


class Progress:
    """Tracks bytes of a file read so far; ``update(done)`` with an absolute count.

    Example:
        >>> with Progress(total=100, desc="reading", enabled=False) as bar:
        ...     bar.update(50)
    """

    def __init__(self, total: Optional[int], desc: str, enabled: Optional[bool] = None) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar: Any = None
        self._done = 0
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
                return
            self._bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)

    def update(self, done: int) -> None:
        if self._bar is not None and done > self._done:
            self._bar.update(done - self._done)
        self._done = max(self._done, done)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
