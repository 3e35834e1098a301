"""Runs the notebooks top to bottom and stores them executed (outputs, tables and plots written in).

    .venv/bin/python scripts/run_notebooks.py                 # all of notebooks/*.ipynb
    .venv/bin/python scripts/run_notebooks.py 01 03_transactions_to_postgres.ipynb   # some, by name or prefix
    .venv/bin/python scripts/run_notebooks.py --check          # run, but leave the files untouched

One private Apache Kafka (``pktstream.broker.ApacheKafka``, loopback, temporary data) serves every
notebook (``$PKTSTREAM_NOTEBOOK_BOOTSTRAP``); it is stopped at the end. Each notebook runs in a fresh
kernel (this interpreter's ``python3``), working directory ``notebooks/``, with the checkout's
``python/`` and ``notebooks/`` on ``PYTHONPATH``.

The stored files are kept stable and reviewable: no execution timestamps or kernel ids, execution
counts 1, 2, 3... in cell order, no Spark start-up banner on stderr, temporary directories, this checkout's and the home directory's paths
replaced by ``<tmp>``, ``<repo>`` and ``~``, and the run fails (writing nothing for that notebook) if an output holds an error, a
PostgreSQL URI with a password, or another absolute path of this machine.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
HOME = str(Path.home())
# A notebook's temporary files (tempfile.mkdtemp): a new random name on every run.
TEMP = re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/(?:tmp|pktstream-)[A-Za-z0-9_-]+")

# Outputs must not carry these: a URI with a password, or a path on this machine we did not expect.
SECRET = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
MACHINE_PATH = re.compile(r"(/(?:work|home|root|Users|private|var/folders)/[^\s'\"]*)")


# What the JVM prints on stderr when Spark starts, the same on every run bar a timestamp: not worth storing.
SPARK_BANNER = re.compile(
    r"^(WARNING: Using incubator modules: .*|Using Spark's default log4j profile: .*|Setting default log level to .*"
    r"|To adjust logging level use sc\.setLogLevel.*|\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN NativeCodeLoader: .*)\n?",
    re.M)


def _select(names: list[str]) -> list[Path]:
    every = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if not names:
        return every
    chosen = []
    for name in names:
        stem = Path(name).name
        match = [p for p in every if p.name == stem or p.stem == stem or p.name.startswith(stem)]
        if len(match) != 1:
            raise SystemExit(f"{name!r} names {len(match)} notebooks in {NOTEBOOK_DIR} (one expected)")
        chosen.append(match[0])
    return chosen


def _scrub(text: str) -> str:
    text = TEMP.sub("<tmp>", text)
    text = text.replace(str(ROOT), "<repo>")
    if HOME not in ("/", ""):
        text = text.replace(HOME, "~")
    return text


def _clean(nb: nbformat.NotebookNode) -> list[str]:
    """Strips volatile metadata, numbers the executed cells and scrubs paths; returns the problems."""
    problems = []
    nb.metadata.pop("widgets", None)
    nb.metadata.get("language_info", {}).pop("version", None)     # the patch release of the machine
    count = 0
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)                         # iopub/shell timestamps
        cell.metadata.pop("collapsed", None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                out["text"] = SPARK_BANNER.sub("", out["text"])
        cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "stream" or o["text"]]
        for out in cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = count
            out.get("metadata", {}).pop("execution", None)
            if out.get("output_type") == "error":
                problems.append(f"cell {index}: {out.get('ename')}: {out.get('evalue')}")
            if "text" in out:
                out["text"] = _scrub(out["text"])
            for mime, value in list(out.get("data", {}).items()):
                if mime.startswith("text/") and isinstance(value, str):
                    out["data"][mime] = _scrub(value)
            blob = " ".join([out.get("text", "")] + [v for k, v in out.get("data", {}).items()
                                                      if k.startswith("text/") and isinstance(v, str)])
            if SECRET.search(blob):
                problems.append(f"cell {index}: an output holds a URI with a password")
            for path in MACHINE_PATH.findall(blob):
                problems.append(f"cell {index}: an output holds a machine path: {path}")
    return problems


def run(path: Path, timeout: int) -> tuple[nbformat.NotebookNode, list[str]]:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, record_timing=False,
                            allow_errors=False, resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()
    return nb, _clean(nb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="names or prefixes (e.g. 01); default: all")
    parser.add_argument("--check", action="store_true", help="run them, but do not write the files")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    args = parser.parse_args(argv)
    paths = _select(args.notebooks)

    # The kernel imports this checkout's package and notebooks/_support.py.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "python"), str(NOTEBOOK_DIR), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")   # a debugger warning on stderr

    from pktstream.broker import ApacheKafka

    broker = None
    if any(not p.name.startswith("00_") for p in paths) and not os.environ.get("PKTSTREAM_NOTEBOOK_BOOTSTRAP"):
        broker = ApacheKafka(security=False).start()
        os.environ["PKTSTREAM_NOTEBOOK_BOOTSTRAP"] = broker.bootstrap_servers
        print("Apache Kafka on", broker.bootstrap_servers, flush=True)
    failed = 0
    try:
        for path in paths:
            t0 = time.monotonic()
            try:
                nb, problems = run(path, args.timeout)
            except Exception as e:  # noqa: BLE001 - report it, go on with the others
                print(f"FAIL {path.name}: {type(e).__name__}: {str(e)[-2000:]}", flush=True)
                failed += 1
                continue
            if problems:
                print(f"FAIL {path.name} (not written):", *problems, sep="\n  ", flush=True)
                failed += 1
                continue
            images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
            if not args.check:
                nbformat.validate(nb)
                nbformat.write(nb, path)
            print(f"ok   {path.name}: {time.monotonic() - t0:.0f} s, {images} figure(s)"
                  f"{'' if args.check else ', written'}", flush=True)
    finally:
        if broker is not None:
            broker.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
