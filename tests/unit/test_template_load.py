"""The local runtime imports a function's module on its first call, as Lambda's cold start does;
tally serve's first calls may come at once, from many threads."""

from __future__ import annotations

import sys
import threading

import pytest

from tally_local.template import Function


def test_concurrent_first_calls_all_get_the_handler_of_one_import(tmp_path):
    (tmp_path / "slow_to_import.py").write_text(
        "import time\nimports = globals().setdefault('imports', 0) + 1\n"
        "time.sleep(0.2)\n\ndef handler(event, context):\n    return imports\n"
    )
    functions = [Function("Slow", tmp_path, "slow_to_import.handler", {}) for _ in range(8)]
    got: list = []
    threads = [threading.Thread(target=lambda f=f: got.append(f.load())) for f in functions]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(got) == 8 and len(set(got)) == 1  # every one the one handler
        assert got[0](None, None) == 1  # imported once
    finally:
        sys.modules.pop("slow_to_import", None)


def test_a_module_that_fails_to_import_is_imported_again_next_time(tmp_path):
    source = tmp_path / "broken_once.py"
    source.write_text("raise RuntimeError('not yet')\n")
    function = Function("Broken", tmp_path, "broken_once.handler", {})
    try:
        with pytest.raises(RuntimeError):
            function.load()
        source.write_text("def handler(event, context):\n    return 'fixed'\n")
        assert function.load()(None, None) == "fixed"
    finally:
        sys.modules.pop("broken_once", None)
