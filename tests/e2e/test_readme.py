"""The README's quickstart, run as written: its shell blocks with bash against a real ``xinfang up``.

The blocks that talk to ``localhost:8000`` are taken from README.md as they are (only the port is
changed) and run in one bash, from a folder whose ``.venv/bin/xinfang`` is this interpreter's; the
admin password comes on standard input, as a user types it.  If the README's bodies, commands or
paths drift from the API, this fails."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import IN_CI, free_port
from tests.e2e.embedded import healthy, start_up
from tests.helpers import wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
PASSWORD = "readme-password-1"


def quickstart_blocks() -> list[str]:
    """The README's ``sh`` blocks that call the running system, in order."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    return [b for b in blocks if "localhost:8000" in b]


def json_values(text: str) -> list:
    """The JSON documents curl printed one after another (no separators)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def test_readme_quickstart_runs_as_written(tmp_path):
    if shutil.which("curl") is None:  # the README's commands use curl
        if IN_CI:
            pytest.fail("curl missing (CI=true: the README's quickstart must run)")
        pytest.skip("curl not installed")
    blocks = quickstart_blocks()
    assert len(blocks) == 3, "the quickstart (token, registration, county system) blocks"
    xinfang = Path(sys.executable).with_name("xinfang")
    assert xinfang.exists(), "the package's console script"
    work = tmp_path / "repo"
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / ".venv" / "bin" / "xinfang").symlink_to(xinfang)
    data = tmp_path / "var"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_up(data, port)
    try:
        wait_for(lambda: healthy(base), timeout=60, interval=0.2, what="xinfang up")
        script = "set -euo pipefail\n" + "\n".join(b.replace("localhost:8000", f"127.0.0.1:{port}") for b in blocks)
        script += '\necho "$TOKEN" > token.txt\n'
        env = {k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")}
        env["XINFANG_DATA_DIR"] = str(data)
        run = subprocess.run(["bash", "-c", script], cwd=work, env=env, input=PASSWORD + "\n",
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        created, printed = run.stdout.lstrip().split("\n", 1)  # after the newline that ends the password prompt
        assert created.startswith("created admin admin"), run.stdout
        first, inbox, second, read_back = json_values(printed)
        # the staff registration: a new petition, personal data masked
        assert first["county_no"] == "WC-2026-0001" and first["existing"] is False, first
        assert first["display_no"].startswith("411302") and first["category_code"] == "03"
        assert first["petitioners"][0]["id_number"] == "4113**********001X"
        assert first["petitioned_at"] == "2026-11-23T01:30:00+00:00"  # answered in UTC, as every read does
        assert isinstance(inbox, list)  # the notice may still be on its way when curl asks
        # the county system's: same petitioner and matter, so 重复信访 of the first; read back by its number
        assert second["county_no"] == "WC-2026-0002" and second["registrar"] == "wancheng-xf", second
        assert second["detection"]["repeat_of"] == first["id"], second["detection"]
        assert read_back["id"] == second["id"]
        token = (work / "token.txt").read_text().strip()
        notices = wait_for(lambda: requests.get(f"{base}/notify/api/v1/inbox", params={"recipient_id": "411302-zjj"},
                                                headers={"Authorization": f"Bearer {token}"}, timeout=10).json(),
                           what="the assignment notice")
        assert notices[-1]["title"] == f"交办通知：信访件 {first['display_no']}"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
