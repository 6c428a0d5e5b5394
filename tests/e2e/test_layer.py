"""The Lambda layer as `sam build` makes it (shared/Makefile): every module ships its bytecode,
and Python uses it as shipped. Lambda's /opt is read-only, so a layer without bytecode compiles
boto3, botocore and tally from source on every cold start (bench/cold_start.py --from-source).

Built here for this machine's Python, with the same Makefile target `sam build` runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

RUNTIME = "{}.{}".format(*sys.version_info[:2])
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, never checked against the source


def _make(artifacts: Path, **variables: str) -> subprocess.CompletedProcess:
    settings = {"PYTHON": sys.executable, "RUNTIME": RUNTIME, "PLATFORM": "", **variables}
    return subprocess.run(
        ["make", "--silent", "-C", str(ROOT / "shared"), "build-SharedLayer"]
        + [f"ARTIFACTS_DIR={artifacts}"]
        + [f"{name}={value}" for name, value in settings.items()],
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    artifacts = tmp_path_factory.mktemp("SharedLayer")
    built = _make(artifacts)
    assert built.returncode == 0, built.stdout + built.stderr
    return artifacts / "python"


def test_the_layer_holds_tally_and_what_requirements_pin(layer):
    assert (layer / "tally" / "counters.py").is_file()
    for name in ("boto3", "botocore", "aws_lambda_powertools", "pydantic_core"):
        assert (layer / name).is_dir(), name


def test_every_module_of_the_layer_ships_unchecked_bytecode(layer):
    sources = [p for p in layer.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(sources) > 500  # boto3, botocore, Powertools, ... and tally
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        assert cached.is_file(), source
        flags = int.from_bytes(cached.read_bytes()[4:8], "little")
        assert flags == UNCHECKED_HASH, source


def test_a_handler_runs_on_the_layers_bytecode_whatever_its_sources_say(layer):
    # A zip keeps no reliable file times, so the bytecode must be used as shipped: here a
    # source that would fail if it were compiled again.
    source = layer / "tally" / "counters.py"
    original = source.read_text()
    source.write_text('raise ImportError("compiled from source")\n')
    try:
        code = (
            f"import sys; sys.path[:0] = [{str(ROOT / 'functions' / 'v2_up')!r}, {str(layer)!r}]\n"
            "import v2_up, tally.counters\n"
            "print(tally.counters.__file__)"
        )
        ran = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True)
    finally:
        source.write_text(original)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == str(source)


def test_bytecode_for_another_python_than_the_runtime_is_refused_before_anything_is_built(
    tmp_path,
):
    built = _make(tmp_path, RUNTIME="3.0")
    assert built.returncode != 0
    assert "bytecode for Python 3.0 needs python3.0" in built.stderr
    assert not any(tmp_path.iterdir())
