"""A local distributed stack: separate ``xinfang serve`` / ``xinfang worker`` processes on
PostgreSQL + Redis, as docker-compose runs them.  Used by the distributed tests and by bench/."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import SERVICES, Settings


def stack_env(*, data_dir: Path, db_urls: dict[str, str], broker_url: str, secret: str,
              namespace: str = "xinfang", extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")}
    env.update({
        "XINFANG_DATA_DIR": str(data_dir), "XINFANG_BROKER_URL": broker_url, "XINFANG_SECRET_KEY": secret,
        "XINFANG_CLOCK_CONTROL": "1", "XINFANG_REDIS_NAMESPACE": namespace,
        "XINFANG_OUTBOX_POLL_SECONDS": "0.2", "XINFANG_LOG_LEVEL": "WARNING",
        # A killed worker's messages come back within seconds, not a minute (tests only).
        "XINFANG_REDIS_HEARTBEAT_MS": "2000", "XINFANG_REDIS_MAINTENANCE_CHANCE": "1000000",
        "PYTHONUNBUFFERED": "1",
    })
    for svc in SERVICES:
        env[f"XINFANG_{svc.upper()}_DATABASE_URL"] = db_urls[svc]
    env.update(extra or {})
    return env


@dataclass
class DistributedStack:
    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def migrate(self) -> None:
        from shared.system import migrate

        migrate(self.settings)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "shared.cli", *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_worker(self, service: str, *, name: str | None = None, threads: int = 4) -> subprocess.Popen:
        return self._spawn(name or f"{service}-worker", "worker", service, "--threads", str(threads))

    def start_web(self, service: str, port: int, *, workers: int = 1, threads: int = 8) -> str:
        self._spawn(f"{service}-web", "serve", service, "--host", "127.0.0.1", "--port", str(port),
                    "--workers", str(workers), "--threads", str(threads))
        base = f"http://127.0.0.1:{port}"
        self.wait_http(f"{base}/{service}/readyz")
        return base

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not become ready; see {self.log_dir}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.log_dir.glob("*.log"))
