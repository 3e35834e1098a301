"""Documentation examples run: every docstring example in the package, and the README's Python blocks."""

from __future__ import annotations

import doctest
import importlib
import importlib.machinery
import os
import pkgutil
import re
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: The deprecated aliases of moved modules: their examples run under the new names.
ALIASES = {"pktstream.synth", "pktstream.synth_flows", "pktstream.netflow"}


def _modules() -> list[str]:
    """Every module of the imported package (the source tree's or an installed wheel's), less the
    deprecated aliases."""
    import pktstream

    names = sorted(m.name for m in pkgutil.walk_packages(pktstream.__path__, "pktstream."))
    return ["pktstream", *(n for n in names if n not in ALIASES)]


def test_the_aliases_are_the_moved_modules():
    """Each alias listed above is one (else its examples would go untested)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in ALIASES:
            before = sys.modules.get(name)
            module = importlib.import_module(name)
            assert module.__name__ == name.replace("pktstream.", "pktstream.testing."), name
            if before is None:  # leave no trace: the suite must not use the old names unnoticed
                parent, _, child = name.rpartition(".")
                del sys.modules[name]
                if getattr(sys.modules[parent], child, None) is module:
                    delattr(sys.modules[parent], child)


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name, request):
    """Every module's docstring examples run (examples read tests/data or temp files, and reach no
    further than loopback); every Python module documents at least one that runs."""
    module = importlib.import_module(name)
    globs = dict(vars(module))
    if name.startswith("pktstream.spark"):
        globs["spark"] = request.getfixturevalue("spark")  # the suite's one local session
    result = doctest.testmod(module, globs=globs, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    native = isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)
    if not native:  # the extension's docstrings come from Rust; its Python wrappers carry the examples
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
