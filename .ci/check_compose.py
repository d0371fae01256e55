#!/usr/bin/env python3
"""Validate docker-compose.yml: the compose-spec schema, then consistency with the code.

    python .ci/check_compose.py [REPO_ROOT]

Every ``check_*(compose, root)`` takes the parsed compose file and the repository
root and returns a list of problems (empty: fine); tests/unit/test_compose.py calls
them directly.  Prints one line per check and a summary; exits 1 on any problem.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.config import SERVICES  # noqa: E402  (the four service short names)

COMPOSE_FILE = "docker-compose.yml"
NGINX_CONF = "deploy/nginx.conf"
MAX_ACTOR_TIME_LIMIT_S = 600  # the longest Dramatiq time limit (the sweep actors)
Problems = list[str]


def load_compose(root: Path = ROOT) -> dict[str, Any]:
    return yaml.safe_load((root / COMPOSE_FILE).read_text(encoding="utf-8"))


def services(compose: dict) -> dict[str, dict]:
    return {name: svc or {} for name, svc in (compose.get("services") or {}).items()}


def command_of(svc: dict) -> list[str]:
    cmd = svc.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def xinfang_services(compose: dict) -> dict[str, list[str]]:
    """Services whose command runs the ``xinfang`` CLI, with that command."""
    return {name: cmd for name, svc in services(compose).items() if (cmd := command_of(svc))[:1] == ["xinfang"]}


def duration_seconds(value: Any) -> float:
    """A compose duration ('11m', '1m30s', '660s', '500ms') in seconds; 0 if unparseable."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s|ns)", str(value))
    if not parts or "".join(n + u for n, u in parts) != str(value).strip():
        return 0.0
    return sum(float(n) * units[u] for n, u in parts)


def env_of(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def check_schema(compose: dict, root: Path = ROOT) -> Problems:
    """The official compose-spec JSON schema, as vendored by check-jsonschema (+ `docker compose config`)."""
    path = str(root / COMPOSE_FILE)
    run = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", path],
                         capture_output=True, text=True)
    problems = [] if run.returncode == 0 else [(run.stdout + run.stderr).strip() or "check-jsonschema failed"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        env = {**os.environ, "XINFANG_SECRET_KEY": os.environ.get("XINFANG_SECRET_KEY", "ci-placeholder")}
        conf = subprocess.run([docker, "compose", "-f", path, "config", "-q"], capture_output=True, text=True, env=env, cwd=root)
        if conf.returncode:
            problems.append("docker compose config: " + (conf.stdout + conf.stderr).strip())
    return problems


def cli_error(args: list[str], cli: Any = None) -> str | None:
    """Parse ``xinfang ARGS`` with click's own parser, down to the leaf command; None if valid."""
    import click
    if cli is None:
        from shared.cli import cli
    try:
        ctx = cli.make_context("xinfang", list(args), resilient_parsing=False)
        while isinstance(ctx.command, click.Group):
            pending = [*(ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args), *ctx.args]
            if not pending:
                return None if ctx.command.invoke_without_command else f"{ctx.command_path}: missing command"
            name, cmd, rest = ctx.command.resolve_command(ctx, pending)
            ctx = cmd.make_context(name, rest, parent=ctx)
    except click.UsageError as exc:  # NoSuchCommand, NoSuchOption, BadParameter, MissingParameter, ...
        message = "missing command" if type(exc).__name__ == "NoArgsIsHelpError" else exc.format_message()
        return (f"{exc.ctx.command_path}: " if exc.ctx else "") + message
    except click.exceptions.Exit:
        return "prints help/exits instead of running"
    return None


def check_cli(compose: dict, root: Path = ROOT, cli: Any = None) -> Problems:
    """Every `xinfang ...` command is a real subcommand with options the click group accepts."""
    try:
        found = xinfang_services(compose)
        return [f"{name}: `{shlex.join(cmd)}`: {err}" for name, cmd in found.items() if (err := cli_error(cmd[1:], cli))]
    except ImportError as exc:
        return [f"cannot import the CLI (shared.cli:cli): {exc}"]


def code_env_vars(root: Path = ROOT) -> set[str]:
    """The XINFANG_* names shared/config.py reads: literals, plus f-string templates per service."""
    src = (root / "shared" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r"\bXINFANG_[A-Z][A-Z0-9_]*[A-Z0-9]\b", src))
    for template in re.findall(r"""f["'](XINFANG_[A-Z0-9_]*\{[^"']*)["']""", src):
        names |= {re.sub(r"\{[^}]*\}", svc.upper(), template) for svc in SERVICES}
    return names


def check_env(compose: dict, root: Path = ROOT) -> Problems:
    """XINFANG_* names are read by shared/config.py; production-safe values; DBs the init script creates."""
    named = set(re.findall(r"\$\{?(XINFANG_\w+)", (root / COMPOSE_FILE).read_text(encoding="utf-8")))
    init_sql = (root / "deploy" / "postgres-init.sql").read_text(encoding="utf-8")
    created = set(re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)", init_sql, re.I))
    problems, xinfang = [], xinfang_services(compose)
    for name, svc in services(compose).items():
        env = env_of(svc)
        named |= {key for key in env if key.startswith("XINFANG_")}
        urls = {key: env.get(key, "") for key in (f"XINFANG_{s.upper()}_DATABASE_URL" for s in SERVICES)}
        problems += [f"{name}: {msg}" for bad, msg in [
            (env.get("XINFANG_ENV") != "production", "XINFANG_ENV must be production"),
            ("XINFANG_CLOCK_CONTROL" in env, "XINFANG_CLOCK_CONTROL must not be set (production refuses it)"),
            (not env.get("XINFANG_SECRET_KEY", "").startswith("${"), "XINFANG_SECRET_KEY must be ${...} from the host"),
            *((urlsplit(url).path.lstrip("/") not in created, f"{key}={url!r}: no such database in postgres-init.sql")
              for key, url in urls.items()),
        ] if bad and name in xinfang]
    return problems + [f"{var} is not read by shared/config.py" for var in sorted(named - code_env_vars(root))]


def check_roles(compose: dict, root: Path = ROOT) -> Problems:
    """S-web runs `serve S` with a /S/healthz healthcheck; S-worker runs `worker S`."""
    problems, svcs = [], services(compose)
    for s in SERVICES:
        web, worker = command_of(svcs.get(f"{s}-web", {})), command_of(svcs.get(f"{s}-worker", {}))
        if web[:3] != ["xinfang", "serve", s]:
            problems.append(f"{s}-web: must run `xinfang serve {s}` (has {web or 'nothing'})")
        if worker[:3] != ["xinfang", "worker", s]:
            problems.append(f"{s}-worker: must run `xinfang worker {s}` (has {worker or 'nothing'})")
        test = " ".join(map(str, (svcs.get(f"{s}-web", {}).get("healthcheck") or {}).get("test") or []))
        urls = re.findall(r"https?://[^\s'\"]+", test)
        port = web[web.index("--port") + 1] if "--port" in web[:-1] else "8000"
        if not urls or any(urlsplit(u).path != f"/{s}/healthz" or str(urlsplit(u).port) != port for u in urls):
            problems.append(f"{s}-web: healthcheck must GET http://127.0.0.1:{port}/{s}/healthz (has {test!r})")
    return problems


def nginx_routes(text: str) -> dict[str, tuple[list[str], str]]:
    """{location prefix: (upstream servers, URI part of proxy_pass)} from an nginx config."""
    text = re.sub(r"(?m)#.*$", "", text)
    upstreams = {m[1]: re.findall(r"(?m)(?:^|;)\s*server\s+([^\s;]+)", m[2])
                 for m in re.finditer(r"upstream\s+(\S+)\s*\{([^}]*)\}", text)}
    routes = {}
    for m in re.finditer(r"location\s+(?:[=^~]+\s+)?(/[^\s{]*)\s*\{([^}]*)\}", text):
        if p := re.search(r"proxy_pass\s+https?://([^/\s;]+)(/[^\s;]*)?\s*;", m[2]):
            routes[m[1]] = (upstreams.get(p[1], [p[1]]), p[2] or "")
    return routes


def check_gateway(compose: dict, root: Path = ROOT) -> Problems:
    """deploy/nginx.conf routes /S/ to S-web:8000 (prefix kept) and sets the forwarding headers."""
    text = (root / NGINX_CONF).read_text(encoding="utf-8")
    routes, problems = nginx_routes(text), []
    for s in SERVICES:
        servers, uri = routes.get(f"/{s}/", ([], ""))
        if not servers or any(server != f"{s}-web:8000" for server in servers):
            problems.append(f"{NGINX_CONF}: location /{s}/ must proxy to {s}-web:8000 (has {servers or 'nothing'})")
        if uri:
            problems.append(f"{NGINX_CONF}: location /{s}/ proxy_pass has URI part {uri!r}; the /{s}/ prefix must reach the service")
    for header in ("X-Correlation-ID", "X-Forwarded-For", "X-Forwarded-Proto"):
        if not re.search(rf"proxy_set_header\s+{header}\s", text, re.I):
            problems.append(f"{NGINX_CONF}: no proxy_set_header {header}")
    gateway = services(compose).get("gateway", {})
    if not any(str(v).startswith(f"./{NGINX_CONF}:") for v in gateway.get("volumes") or []):
        problems.append(f"gateway: must mount ./{NGINX_CONF}")
    if not any(str(p).split(":")[0] == "8000" for p in gateway.get("ports") or []):
        problems.append("gateway: must publish port 8000 (\"8000:8000\")")
    deps = gateway.get("depends_on") if isinstance(gateway.get("depends_on"), dict) else {}
    return problems + [f"gateway: must depend on {s}-web being healthy" for s in SERVICES
                       if (deps.get(f"{s}-web") or {}).get("condition") != "service_healthy"]


def check_depends_on(compose: dict, root: Path = ROOT) -> Problems:
    """service_healthy targets have a healthcheck; xinfang processes wait for postgres, redis and migrate."""
    problems, svcs = [], services(compose)
    required = {"postgres": "service_healthy", "redis": "service_healthy", "migrate": "service_completed_successfully"}
    for name, svc in svcs.items():
        deps = svc.get("depends_on") or {}
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        for target, spec in deps.items():
            cond = (spec or {}).get("condition", "service_started")
            health = (svcs.get(target) or {}).get("healthcheck") or {}
            if target not in svcs:
                problems.append(f"{name}: depends on unknown service {target}")
            elif cond == "service_healthy" and (not health.get("test") or health.get("disable")):
                problems.append(f"{name}: waits for {target} to be healthy, but {target} has no healthcheck")
        if name in xinfang_services(compose) and name != "migrate":
            problems += [f"{name}: must depend on {t} with condition {c}" for t, c in required.items()
                         if (deps.get(t) or {}).get("condition") != c]
    return problems


def check_redis(compose: dict, root: Path = ROOT) -> Problems:
    """Redis keeps messages: append-only file and no eviction."""
    cmd = " ".join(command_of(services(compose).get("redis", {})))
    return [f"redis: command must contain {want}" for want, rx in
            (("--appendonly yes", r"appendonly\s+yes"), ("--maxmemory-policy noeviction", r"maxmemory-policy\s+noeviction"))
            if not re.search(rx, cmd)]


def check_lifecycle(compose: dict, root: Path = ROOT) -> Problems:
    """Workers and the scheduler outlive the longest actor on stop; exactly one scheduler."""
    problems, svcs, found = [], services(compose), xinfang_services(compose)
    for name in (name for name, cmd in found.items() if cmd[1:2] in (["worker"], ["scheduler"])):
        grace = svcs[name].get("stop_grace_period", "10s (default)")
        if duration_seconds(grace) <= MAX_ACTOR_TIME_LIMIT_S:
            problems.append(f"{name}: stop_grace_period {grace} must exceed {MAX_ACTOR_TIME_LIMIT_S}s (longest actor time limit)")
    schedulers = [name for name, cmd in found.items() if cmd[1:2] == ["scheduler"]]
    if len(schedulers) != 1:
        problems.append(f"exactly one scheduler service is required (found {schedulers})")
    return problems + [f"{name}: must run exactly one replica" for name in schedulers
                       if (svcs[name].get("deploy") or {}).get("replicas", 1) != 1 or svcs[name].get("scale", 1) != 1]


def check_image(compose: dict, root: Path = ROOT) -> Problems:
    """The xinfang services build from ./Dockerfile: python:3.11-slim, `pip install .`, non-root."""
    dockerfile = root / "Dockerfile"
    if not dockerfile.is_file():
        return ["Dockerfile is missing"]
    text, problems = dockerfile.read_text(encoding="utf-8"), []
    for name in xinfang_services(compose):
        build = services(compose)[name].get("build")
        build = {"context": build} if isinstance(build, str) else build or {}
        if (root / str(build.get("context", "?"))).resolve() != root.resolve() or build.get("dockerfile", "Dockerfile") != "Dockerfile":
            problems.append(f"{name}: must build from ./Dockerfile (build: {build or 'none'})")
    users = re.findall(r"(?m)^USER\s+(\S+)", text)
    return problems + [f"Dockerfile: {msg}" for bad, msg in [
        (not re.search(r"(?m)^FROM\s+python:3\.11-slim\b", text), "must be based on python:3.11-slim"),
        (not re.search(r"pip install[^\n]*\s\.(\s|$)", text), "must install the project with `pip install .`"),
        (not users or users[-1].split(":")[0] in ("root", "0"), "must switch to a non-root USER"),
        (re.search(r"(?m)^(ENV|ARG)\b.*SECRET", text), "must not bake secrets into ENV/ARG"),
    ] if bad]


CHECKS: list[tuple[str, Callable[[dict, Path], Problems]]] = [
    ("compose-spec schema", check_schema),
    ("xinfang commands parse with shared.cli", check_cli),
    ("environment matches shared/config.py", check_env),
    ("web/worker roles and healthchecks", check_roles),
    ("gateway routes", check_gateway),
    ("depends_on conditions", check_depends_on),
    ("redis persistence", check_redis),
    ("grace periods and single scheduler", check_lifecycle),
    ("image built from Dockerfile", check_image),
]


def run_checks(root: Path = ROOT) -> list[tuple[str, Problems]]:
    try:
        compose = load_compose(root)
    except (OSError, yaml.YAMLError) as exc:
        return [("load docker-compose.yml", [str(exc)])]
    results = []
    for title, check in CHECKS:
        try:
            results.append((title, check(compose, root)))
        except Exception as exc:  # a broken file must be reported, not crash the report
            results.append((title, [f"check crashed: {type(exc).__name__}: {exc}"]))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]).resolve() if argv else ROOT
    results = run_checks(root)
    for title, problems in results:
        print(f"{'ok  ' if not problems else 'FAIL'}  {title}")
        for problem in problems:
            print("        " + problem.replace("\n", "\n        "))
    failed = sum(1 for _, problems in results if problems)
    print(f"check_compose: {len(results)} checks, {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
