"""`xinfang up`, the README's first command, as a user runs it: a real process on a port."""
from __future__ import annotations

import signal

import requests

from shared.config import Settings
from tests.conftest import free_port
from tests.e2e.embedded import healthy, start_up
from tests.helpers import SECRET, auth, petition_body, wait_for


def test_up_serves_all_four_services_stops_on_ctrl_c_and_resumes(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(secret_key=SECRET)
    proc = start_up(tmp_path, port)
    try:
        wait_for(lambda: healthy(base), timeout=60, interval=0.2, what="xinfang up")
        created = requests.post(f"{base}/intake/api/v1/petitions", json=petition_body(),
                                headers=auth(settings, role="registrar"), timeout=10)
        assert created.status_code == 201
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "xinfang stopped" in output
    # Started again on the same data folder, it still has the petition and its notice
    proc = start_up(tmp_path, port)
    try:
        wait_for(lambda: healthy(base), timeout=60, interval=0.2, what="xinfang up (restart)")
        got = requests.get(f"{base}/intake/api/v1/petitions/{created.json()['id']}",
                           headers=auth(settings), timeout=10)
        assert got.status_code == 200
        inbox = wait_for(lambda: requests.get(f"{base}/notify/api/v1/inbox", params={"recipient_id": "411302-zjj"},
                                              headers=auth(settings), timeout=10).json(), what="the notice")
        assert len(inbox) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_a_taken_port_is_refused_before_anything_starts(tmp_path):
    """Another ``xinfang up`` or demo on the port: a clear error at once, not a traceback after start-up
    (or, for the demo, after the month was played)."""
    import socket

    from click.testing import CliRunner

    from shared.cli import cli

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for command in (["up"], ["demo", "--days", "1"]):
            result = CliRunner().invoke(cli, [*command, "--port", str(port)],
                                        env={"XINFANG_DATA_DIR": str(tmp_path / "var")})
            assert result.exit_code == 2, result.output
            assert f"无法在 127.0.0.1:{port} 上监听" in result.output and "--port" in result.output
    assert not (tmp_path / "var").exists()  # nothing was started, migrated or simulated
