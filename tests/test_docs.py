"""Documentation examples run: every docstring example in the package, and the README's Python blocks."""

from __future__ import annotations

import doctest
import importlib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    "pktstream",
    "pktstream._reader",
    "pktstream._kafka",
    "pktstream.broker",
    "pktstream.netflow",
    "pktstream.pipelines",
    "pktstream.exceptions",
    "pktstream._progress",
    "pktstream._build",
    "pktstream.synth",
    "pktstream.synth_flows",
]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name != "pktstream._progress":
        assert result.attempted > 0, f"{name} documents no runnable example"


def test_readme_python_blocks_run(tmp_path, bootstrap, secure_kafka, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", bootstrap)  # the Kafka block talks to the test broker
    user, password = next(iter(secure_kafka.users.items()))  # the secured-cluster block: SASL_SSL
    monkeypatch.setenv("KAFKA_SASL_BOOTSTRAP", secure_kafka.bootstrap("SASL_SSL"))
    monkeypatch.setenv("KAFKA_USER", user)
    monkeypatch.setenv("KAFKA_PASSWORD", password)
    monkeypatch.setenv("KAFKA_CA", str(secure_kafka.ca_file))
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})


def test_readme_quickstart_names_real_commands():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/setup.sh" in readme and "bash scripts/test.sh" in readme
    for script in ["scripts/setup.sh", "scripts/test.sh", ".ci/run"]:
        assert os.access(ROOT / script, os.X_OK), script
