"""``xinfang up`` as a user runs it: a real process serving every service on one port."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from shared.config import SERVICES
from tests.helpers import SECRET


def start_up(data_dir: Path, port: int) -> subprocess.Popen:
    """``xinfang up --port PORT`` on ``data_dir``, its output captured (read it with ``communicate``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")}
    env.update(XINFANG_DATA_DIR=str(data_dir), XINFANG_SECRET_KEY=SECRET, XINFANG_LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "shared.cli", "up", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def healthy(base: str) -> bool:
    """Every service answers its liveness probe."""
    try:
        return all(requests.get(f"{base}/{s}/healthz", timeout=2).json()["status"] == "alive" for s in SERVICES)
    except (requests.RequestException, ValueError):
        return False
