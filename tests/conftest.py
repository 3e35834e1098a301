"""Shared fixtures: the capture corpus (``PKTSTREAM_PCAPS``) and cached tshark runs."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import oracle`, any import mode

import oracle
from kafka_fixtures import (  # noqa: F401  (fixtures)
    _local_kafka,
    bootstrap,
    kafka_broker,
    restartable_broker,
    secure_kafka,
    topic_factory,
)
from spark_fixtures import spark  # noqa: F401  (fixtures)
from veth import veth  # noqa: F401  (fixture: a veth pair into a private network namespace)

#: The shared corpus: ``$PKTSTREAM_PCAPS``, else ``../shared/pcaps`` beside the repository.
PCAPS = Path(
    os.environ.get("PKTSTREAM_PCAPS") or Path(__file__).resolve().parents[1].parent / "shared" / "pcaps"
)
#: The permissively licensed captures bundled with the tests: the corpus tests always run on them.
DATA = Path(__file__).resolve().parent / "data"
#: Set (as scripts/test.sh does for CI) to fail, rather than run on tests/data alone, when the
#: shared corpus is missing or empty.
REQUIRE_CORPUS = os.environ.get("PKTSTREAM_REQUIRE_CORPUS") == "1"


@dataclass(frozen=True)
class Capture:
    """One row of ``MANIFEST.tsv``; ``packets`` is None where the manifest says ``?``."""

    rel: str
    format: str
    linktype: str
    packets: int | None
    size: int
    root: Path = PCAPS

    @property
    def path(self) -> Path:
        return self.root / self.rel

    def __str__(self) -> str:
        return self.rel


def _read_manifest(root: Path) -> tuple[Capture, ...]:
    path = root / "MANIFEST.tsv"
    if not path.exists():
        return ()
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return tuple(
        Capture(
            rel=row["path"],
            format=row["format"],
            linktype=row["linktype"],
            packets=int(row["packets"]) if row["packets"].isdigit() else None,
            size=int(row["bytes"]),
            root=root,
        )
        for row in rows
    )


@cache
def manifest() -> tuple[Capture, ...]:
    """tests/data's captures (always), then the shared corpus's (when present)."""
    local = tuple(Capture(**{**c.__dict__, "rel": f"data/{c.rel}", "root": DATA.parent}) for c in _read_manifest(DATA))
    return local + _read_manifest(PCAPS)


def pytest_configure(config: pytest.Config) -> None:
    for name, what in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {what}")
    if REQUIRE_CORPUS and not _read_manifest(PCAPS):
        raise pytest.UsageError(
            f"PKTSTREAM_REQUIRE_CORPUS=1 but the capture corpus at {PCAPS} is missing or empty "
            "(set PKTSTREAM_PCAPS, or put ../shared/pcaps beside the repository)"
        )


#: pytest markers, given by the fixtures a test uses (``-m "not spark"`` etc.); CI runs them all.
MARKERS = {
    "kafka": "talks to Apache Kafka (the session broker, a secured or a restartable one)",
    "spark": "runs PySpark",
    "live": "captures live on a veth pair in a private network namespace (root)",
    "tshark": "compares with tshark",
    "corpus": "runs once per capture of tests/data and the shared corpus",
    "notebooks": "executes the notebooks",
}
_MARKER_FIXTURES = {
    "kafka": {"bootstrap", "kafka_broker", "secure_kafka", "restartable_broker", "topic_factory", "_local_kafka"},
    "spark": {"spark"},
    "live": {"veth"},
    "tshark": {"tshark"},
    "corpus": {"capture", "good_capture"},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _MARKER_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)
        if item.nodeid.startswith("tests/test_notebooks"):
            item.add_marker("notebooks")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests taking a ``capture`` argument run once per manifest row (id: its path)."""
    if "capture" in metafunc.fixturenames:
        captures = manifest()
        metafunc.parametrize("capture", captures, ids=[c.rel for c in captures])
    if "good_capture" in metafunc.fixturenames:
        # The manifest gives no packet count ("?") for exactly the deliberately broken files.
        good = [c for c in manifest() if c.packets is not None]
        metafunc.parametrize("good_capture", good, ids=[c.rel for c in good])


@pytest.fixture(scope="session")
def tshark(request: pytest.FixtureRequest) -> Callable[..., oracle.TsharkResult]:
    """``tshark(path)``: the oracle's tshark run for a capture, once per session and path, and
    cached on disk (by content) in pytest's cache directory across sessions. Fails when tshark is
    not installed (scripts/setup.sh installs it: a missing oracle must not pass silently)."""
    if oracle.TSHARK is None:
        pytest.fail("tshark is not installed: run scripts/setup.sh")
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    cache_dir = Path(cache.mkdir("tshark-oracle")) if cache is not None else None
    memo: dict[str, oracle.TsharkResult] = {}

    def run(path: os.PathLike[str]) -> oracle.TsharkResult:
        key = os.fspath(path)
        if key not in memo:
            memo[key] = oracle.run_tshark(path, cache_dir=cache_dir)
        return memo[key]

    return run
