"""Fuzz the intake API from its own OpenAPI document with schemathesis (its CLI, against the app
served on a local port): no 5xx, and every response matches the documented schema."""
from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dramatiq.brokers.stub import StubBroker

from shared.migrations import upgrade
from tests.helpers import token_for

#: Examples per operation; CI keeps it modest, a local run can raise it.
MAX_EXAMPLES = 40


@pytest.fixture
def served_intake(settings):
    from waitress import create_server

    from intake_svc.app import build_runtime, create_app

    upgrade("intake", settings)
    runtime = build_runtime(settings, broker=StubBroker())
    server = create_server(create_app(settings, runtime=runtime), host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    runtime.close()


#: The parts of the intake API fuzzed here (path regexes).
PATH_GROUPS = ["^/intake/api/v1/petitions", "^/intake/open311/"]


@pytest.mark.parametrize("paths", PATH_GROUPS)
def test_intake_api_never_fails_and_matches_its_schema(served_intake, settings, tmp_path, paths):
    # The console script sits beside this interpreter (a venv need not be on PATH, e.g. under make).
    beside = Path(sys.executable).parent / "schemathesis"
    st = str(beside) if beside.exists() else shutil.which("schemathesis")
    if st is None:
        pytest.fail("schemathesis is a test dependency; install the package with its [test] extra")
    token = token_for(settings, role="registrar", jurisdiction="411300")
    result = subprocess.run(
        [st, "run", f"{served_intake}/intake/openapi.json", "--header", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
         "--include-path-regex", paths, "--max-examples", str(MAX_EXAMPLES), "--seed", "20261122", "--no-color",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
