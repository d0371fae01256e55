"""A PostgreSQL server of the benchmark's own, configured as a production server is.

``python -m bench.pgserver [--datadir DIR] [--shared-buffers 6GB] -- COMMAND …`` runs COMMAND with
``XINFANG_BENCH_PG_URL`` pointing at a server started for it (initdb in a scratch folder, the machine's own
PostgreSQL binaries, a free port on 127.0.0.1, unix socket in the folder), then stops the server and
removes the folder (``--datadir``: kept, and reused by the next run).  ``bench/intake/run.py`` and
``cpu.py`` use it by default (``--pg own``).

Why: the PostgreSQL these machines start for the tests is configured for CI, not for production:
``shared_buffers`` 128 MB and autovacuum off.  And the operating system's page cache does not keep files
here (measured: it shrank from 4.2 GB to 0.7 GB in 60 s with 20 GB free, and reading 3.7 GB of one
database took 31 s), so what does not fit in ``shared_buffers`` is read from the disk again.  With a
1,000,000-petition database that made each registration wait for ~6 block reads (cpu.py: 16 ms wall and
3.8 + 1.7 ms CPU per registration; with shared_buffers 6 GB on the same server 3-4 ms wall and
2.0-2.6 + 0.9-1.1 ms).  A bureau's server has its working set in memory and autovacuum on; this one does too:

* ``shared_buffers`` a quarter of the machine's memory (at most 8 GB), ``effective_cache_size`` half;
* autovacuum on, fsync on, ``synchronous_commit`` on: PostgreSQL's defaults, nothing traded for speed;
* ``max_connections`` 300 (two gunicorn workers hold up to ~60 each, plus the relays and the meters);
* ``max_wal_size`` 4 GB, so that the bulk fill does not force a checkpoint every few seconds.

Needs the server binaries (``pg_config --bindir``, else /usr/lib/postgresql/*/bin); as root they run as
the ``postgres`` user (initdb refuses root).
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from bench.common import free_port

#: Where a kept server lives unless told otherwise (``--keep``-style use by cpu.py).
KEPT_DATADIR = Path("/var/tmp/xfb-bench-pg")


def _bindir() -> Path:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise SystemExit("PostgreSQL server binaries not found (initdb): install postgresql")
    return Path(found[-1]).parent


def _as_owner(cmd: list[str]) -> list[str]:
    """As root, run ``cmd`` as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def settings(shared_buffers: str | None = None) -> dict[str, str]:
    """The server's settings (see the module's docstring)."""
    mb = memory_bytes() // (1024 * 1024)
    return {
        "shared_buffers": shared_buffers or f"{min(mb // 4, 8192)}MB",
        "effective_cache_size": f"{mb // 2}MB",
        "max_connections": "300",
        "max_wal_size": "4GB",
        "autovacuum": "on",
        "fsync": "on",
        "synchronous_commit": "on",
        "listen_addresses": "'127.0.0.1'",
    }


def _start_under_callgrind(bindir: Path, datadir: Path, port: int, out_dir: Path) -> None:
    """The postmaster under valgrind's callgrind; returns once the server accepts connections.  Each backend is
    a fork of the postmaster, so it runs under callgrind too: it counts from its fork and writes its total
    to ``out_dir/pg.<pid>`` when it exits (valgrind's gdbserver, which ``callgrind_control`` talks to, does
    not follow a fork: counting cannot be switched on and off in a backend)."""
    import psycopg

    if os.geteuid() == 0:
        shutil.chown(out_dir, "postgres", "postgres")
    with open(datadir / "server.log", "ab") as log_file:
        subprocess.Popen(_as_owner(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/pg.%p",
                                    str(bindir / "postgres"), "-D", str(datadir), "-p", str(port), "-k", str(datadir)]),
                         stdout=log_file, stderr=log_file, start_new_session=True)
    deadline = time.monotonic() + 300
    while True:
        try:
            psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


@contextlib.contextmanager
def own_server(datadir: Path | None = None, *, shared_buffers: str | None = None,
               log=print, callgrind_dir: Path | None = None) -> Iterator[str]:
    """Start (initdb first when ``datadir`` is new or None) and yield the admin URL; stop at the end, and
    remove the folder unless ``datadir`` was given.  ``callgrind_dir``: the server runs under valgrind's
    callgrind (``_start_under_callgrind``), ~50 times slower."""
    bindir = _bindir()
    scratch = datadir is None
    if scratch:
        datadir = Path(tempfile.mkdtemp(prefix="xfb-bench-pg-", dir="/var/tmp"))
    datadir = Path(datadir)
    if os.geteuid() == 0:
        datadir.mkdir(parents=True, exist_ok=True)
        shutil.chown(datadir, "postgres", "postgres")
        datadir.chmod(0o700)
    try:
        if not (datadir / "PG_VERSION").exists():
            t0 = time.perf_counter()
            subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
                                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                           check=True, stdout=subprocess.DEVNULL)
            log(f"[pgserver] initdb {datadir} ({time.perf_counter() - t0:.1f} s)")
        port = free_port()
        conf = settings(shared_buffers)
        (datadir / "postgresql.auto.conf").write_text(
            "# bench/pgserver.py\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
        if callgrind_dir is not None:
            _start_under_callgrind(bindir, datadir, port, callgrind_dir)
        else:
            subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", f"-p {port} -k {datadir}",
                                      "-l", str(datadir / "server.log"), "-w", "-t", "120", "start"]),
                           check=True, stdout=subprocess.DEVNULL)
        log(f"[pgserver] PostgreSQL on 127.0.0.1:{port}: "
            + ", ".join(f"{k}={conf[k]}" for k in ("shared_buffers", "effective_cache_size", "autovacuum"))
            + (" (under callgrind)" if callgrind_dir is not None else ""))
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        if scratch:
            shutil.rmtree(datadir, ignore_errors=True)


def run_under_own_server(argv: list[str], *, datadir: Path | None = None, shared_buffers: str | None = None,
                         callgrind_dir: Path | None = None) -> int:
    """Run ``argv`` (a command) with ``XINFANG_BENCH_PG_URL`` set to an own server's admin URL (and, with
    ``callgrind_dir``, ``XFB_PG_CALLGRIND_DIR`` to where its backends dump their counts)."""
    with own_server(datadir, shared_buffers=shared_buffers, callgrind_dir=callgrind_dir) as url:
        env = {**os.environ, "XINFANG_BENCH_PG_URL": url}
        if callgrind_dir is not None:
            env["XFB_PG_CALLGRIND_DIR"] = str(callgrind_dir)
        child = subprocess.Popen(argv, env=env)
        while True:  # Ctrl-C reaches the child too: let it clean up its databases before the server stops
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue


def rerun_under_own_server(script: str, argv: list[str], *, datadir: Path | None = None,
                           callgrind_dir: Path | None = None) -> int:
    """A bench's ``--pg own``: run ``script`` again with ``argv`` and ``--pg url``, against an own server."""
    return run_under_own_server([sys.executable, str(Path(script).resolve()), *argv, "--pg", "url"],
                                datadir=datadir, callgrind_dir=callgrind_dir)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datadir", type=Path, default=None, help="keep the server's data here (reused if present)")
    ap.add_argument("--shared-buffers", default=None, help="default: a quarter of the memory, at most 8GB")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the command to run after --")
    return run_under_own_server(command, datadir=args.datadir, shared_buffers=args.shared_buffers)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
