"""The notebooks run clean, headless, top to bottom (nbclient), as a reader would run them.

Each notebook asserts its own invariants in code cells (row counts equal what was produced, the
database totals equal the generated ones, ...); here we also check that the lines reporting them
were printed and that a figure was drawn. Notebooks 01-04 use the suite's Apache Kafka and start Spark (~1 min
each); 03 also a private PostgreSQL server (``bash scripts/install_postgres.sh``).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

# What each notebook must print (besides running without an error); 02 also _capture_lines().
EXPECTED = {
    "01_pcap_to_spark.ipynb": ["20,000 packets counted, 20,000 produced", "20,000 packets in"],
    "02_netflow_distances.ipynb": ["6,000 events", "0 late events", "pairs in the results topic",
                                   "of the 10 most isolated flows are planted anomalies"],
    "03_transactions_to_postgres.ipynb": ["6,000 transactions in the database", "replayed and skipped: [",
                                          "database totals == generated totals"],
    "04_raw_packets.ipynb": ["10,000 frames decoded by Spark, 10,000 produced", "equal read_pcap's"],
}


def _capture_lines(tmp_path: Path) -> list[str]:
    """What notebook 02's last section ("From real packets") must print, computed here without Kafka
    or Spark: the flow events of the same synthetic capture, and their pairs by ``distance.pairs``
    with the notebook's features and options."""
    import pktstream
    import pyarrow as pa
    import pyarrow.compute as pc
    from pktstream import distance
    from pktstream.testing import synth

    capture = tmp_path / "capture.pcap"
    synth.write_pcap(capture, 5_000, seed=3)
    events = pktstream.suricata_events(pktstream.flows(capture))
    raw = ["duration", "in_bytes", "in_packets", "out_bytes", "out_packets"]
    for c in raw:
        events = events.append_column(f"log_{c}", pc.log1p(pc.cast(events[c], pa.float64())))
    pairs = distance.pairs(events, key="src_ip4", features=[f"log_{c}" for c in raw], id="eventid",
                           time="@timestamp", window="5s", top_k=3)
    n, m = events.num_rows, pairs.num_rows
    assert n > 1000 and m > 1000
    return [f"{n:,} delivered, 0 failed", f", {n:,} flow events, {m:,} pairs published, 0 late events",
            f"{n:,} flow events from", f"-> {m:,} pairs in the results topic; {m:,} from distance.pairs()"]


def _expected(name: str, tmp_path: Path) -> list[str]:
    return EXPECTED.get(name, []) + (_capture_lines(tmp_path) if name.startswith("02_") else [])


def _missing(name: str) -> str:
    """Why a notebook cannot run here ('' when it can)."""
    if name.startswith("00_"):
        return ""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Spark needs Java 17"
    if name.startswith("03_"):
        if importlib.util.find_spec("adbc_driver_postgresql") is None:
            return "adbc-driver-postgresql is not installed"
        import sys

        sys.path.insert(0, str(NOTEBOOK_DIR))
        try:
            import _support
        finally:
            sys.path.remove(str(NOTEBOOK_DIR))
        if _support.postgres_bin() is None:
            return "PostgreSQL is not installed (bash scripts/install_postgres.sh)"
    return ""


def test_there_are_notebooks():
    assert NOTEBOOKS
    assert set(EXPECTED) <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    reason = _missing(path.name)
    if reason:  # scripts/setup.sh installs all of it: a missing piece must not pass silently
        pytest.fail(f"{path.name} cannot run: {reason}", pytrace=False)
    # The kernel runs in a scratch directory; `import _support` must still find notebooks/_support.py.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(NOTEBOOK_DIR), os.environ.get("PYTHONPATH")])))
    if not path.name.startswith("00_"):  # the suite's Apache Kafka (notebooks/_support.start_broker)
        monkeypatch.setenv("PKTSTREAM_NOTEBOOK_BOOTSTRAP", request.getfixturevalue("bootstrap"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") in ("execute_result", "display_data") for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    for line in _expected(path.name, tmp_path):
        assert line in printed, f"{path.name} did not print {line!r}"


def _shows_something(source: str) -> bool:
    """Whether a cell prints, draws, or ends in an expression whose value Jupyter displays."""
    if any(s in source for s in ("print(", "plt.subplots", ".printSchema()", ".show(")):
        return True
    last = ast.parse(source).body[-1]
    if not isinstance(last, ast.Expr):
        return False
    call = last.value
    # `spark.stop()`, `fig.tight_layout()`: called for their effect, they return None
    return not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("stop", "tight_layout", "close"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_notebook_is_executed(path: Path, tmp_path: Path):
    """The stored files carry their outputs (a reader on a code host sees the tables and plots):
    refreshed by ``scripts/run_notebooks.py``, which runs them top to bottom."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), \
        f"{path.name}: not stored executed top to bottom (run scripts/run_notebooks.py {path.name})"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"], f"{path.name}: an error is stored"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no stored figure"
    # A cell that prints, plots or ends in an expression must have stored what it showed.
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if _shows_something(cell.source):
            assert cell.get("outputs"), f"{path.name}: cell {index} shows something but has no stored output"
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    for line in _expected(path.name, tmp_path):
        assert line in printed, f"{path.name}: the stored outputs lack {line!r}"
    for cell in nb.cells:
        assert "execution" not in cell.metadata, f"{path.name}: execution timestamps are stored"
    blob = nbformat.writes(nb)
    assert not re.search(r"postgresql://[^/\s:@]+:[^/\s@]+@", blob), f"{path.name}: a password is stored"
    assert str(NOTEBOOK_DIR.parent) not in blob, f"{path.name}: this checkout's path is stored"
