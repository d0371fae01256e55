"""The deployment validator (.ci/check_compose.py): the real files pass, and broken ones are reported."""
from __future__ import annotations

import copy
import importlib.util
import shutil
import sys
from pathlib import Path

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_compose", ROOT / ".ci" / "check_compose.py")
cc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cc)

SERVICES = ("intake", "assign", "supervise", "notify")
CODE_ENV = {
    "XINFANG_DATA_DIR", "XINFANG_INTAKE_DATABASE_URL", "XINFANG_ASSIGN_DATABASE_URL",
    "XINFANG_SUPERVISE_DATABASE_URL", "XINFANG_NOTIFY_DATABASE_URL", "XINFANG_BROKER_URL",
    "XINFANG_SECRET_KEY", "XINFANG_TOKEN_TTL_SECONDS", "XINFANG_ENV", "XINFANG_CLOCK_CONTROL",
    "XINFANG_TIMEZONE", "XINFANG_CALENDAR_FILE", "XINFANG_DIRECTORY_FILE", "XINFANG_OUTBOX_POLL_SECONDS",
    "XINFANG_SWEEP_INTERVAL_SECONDS", "XINFANG_WORKER_THREADS", "XINFANG_RETENTION_DAYS",
    "XINFANG_LOG_LEVEL", "XINFANG_REDIS_HEARTBEAT_MS",
}


@pytest.fixture
def compose() -> dict:
    return copy.deepcopy(cc.load_compose(ROOT))


@pytest.fixture
def tmp_root(tmp_path: Path) -> Path:
    """A copy of the files the validator reads, to break one at a time."""
    for rel in ("docker-compose.yml", "Dockerfile", "deploy", "shared/config.py"):
        src, dst = ROOT / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return tmp_path


def contract_cli() -> click.Group:
    """A stand-in with the agreed shape of shared.cli:cli, so the parser logic is tested on its own."""
    service = click.Choice(SERVICES)

    @click.group()
    def cli():
        pass

    @cli.command()
    @click.argument("service", type=service)
    @click.option("--host")
    @click.option("--port", type=int)
    @click.option("--workers", type=int)
    @click.option("--threads", type=int)
    def serve(**_):
        pass

    @cli.command()
    @click.argument("service", type=service)
    @click.option("--processes", type=int)
    @click.option("--metrics-port", type=int)
    @click.option("--threads", type=int)
    def worker(**_):
        pass

    @cli.command()
    @click.argument("service", type=service, required=False)
    def migrate(**_):
        pass

    @cli.command()
    def scheduler():
        pass

    @cli.group()
    def clock():
        pass

    @clock.command()
    def show():
        pass

    return cli


# ------------------------------------------------------------------ the real files


@pytest.mark.parametrize("title, check", cc.CHECKS, ids=[title for title, _ in cc.CHECKS])
def test_repository_files_pass(title, check, compose):
    if check is cc.check_schema:
        pytest.importorskip("check_jsonschema")
    assert check(compose, ROOT) == []


def test_main_prints_one_line_per_check_and_a_summary(capsys):
    pytest.importorskip("check_jsonschema")
    assert cc.main([str(ROOT)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(cc.CHECKS) + 1
    assert lines[-1] == f"check_compose: {len(cc.CHECKS)} checks, {len(cc.CHECKS)} passed, 0 failed"


def test_code_env_vars_cover_what_settings_reads():
    """The grep finds every name Settings.from_env really looks up (and at least the documented ones)."""
    from shared.config import Settings

    class Recorder(dict):
        def get(self, key, default=None):
            read.add(key)
            return default

    read: set[str] = set()
    Settings.from_env(Recorder())
    assert CODE_ENV <= read <= cc.code_env_vars(ROOT)


def test_compose_has_the_expected_services(compose):
    names = set(compose["services"])
    assert {"postgres", "redis", "migrate", "scheduler", "gateway"} <= names
    assert {f"{s}-{role}" for s in SERVICES for role in ("web", "worker")} <= names


# ------------------------------------------------------------------ CLI commands


@pytest.mark.parametrize("cli_source", ["contract", "shared.cli"])
@pytest.mark.parametrize("command, expected", [
    (["xinfang", "serv", "intake"], "No such command 'serv'"),
    (["xinfang", "serve", "intak"], "'intak' is not one of"),
    (["xinfang", "serve", "intake", "--bogus", "1"], "No such option"),
    (["xinfang", "serve", "intake", "--port", "http"], "not a valid integer"),
    (["xinfang", "worker"], "Missing argument"),
    (["xinfang", "clock"], "missing command"),
    (["xinfang"], "missing command"),
])
def test_bad_xinfang_commands_are_reported(compose, cli_source, command, expected):
    cli = contract_cli() if cli_source == "contract" else pytest.importorskip("shared.cli").cli
    compose["services"]["intake-worker"]["command"] = command
    problems = cc.check_cli(compose, ROOT, cli=cli)
    assert len(problems) == 1 and problems[0].startswith("intake-worker:") and expected in problems[0], problems


@pytest.mark.parametrize("args", [["serve", "notify", "--host", "0.0.0.0", "--port", "8000"],
                                  ["worker", "assign", "--threads", "8"], ["migrate"], ["migrate", "intake"],
                                  ["scheduler"], ["clock", "show"]])
def test_good_xinfang_commands_parse(args):
    assert cc.cli_error(args, contract_cli()) is None
    assert cc.cli_error(args) is None  # the real shared.cli:cli


def test_unimportable_cli_is_reported(compose, monkeypatch):
    monkeypatch.setitem(sys.modules, "shared.cli", None)
    problems = cc.check_cli(compose, ROOT)
    assert len(problems) == 1 and problems[0].startswith("cannot import the CLI (shared.cli:cli)")


# ------------------------------------------------------------------ environment


def test_unknown_env_var_is_reported(compose):
    compose["services"]["notify-worker"]["environment"] = {**compose["services"]["notify-worker"]["environment"],
                                                          "XINFANG_NOPE": "1"}
    assert cc.check_env(compose, ROOT) == ["XINFANG_NOPE is not read by shared/config.py"]


def test_unknown_env_var_in_list_form_is_reported(compose):
    compose["services"]["gateway"]["environment"] = ["XINFANG_NOPE=1"]
    assert "XINFANG_NOPE is not read by shared/config.py" in cc.check_env(compose, ROOT)


@pytest.mark.parametrize("key, value, expected", [
    ("XINFANG_CLOCK_CONTROL", "1", "XINFANG_CLOCK_CONTROL must not be set"),
    ("XINFANG_ENV", "development", "XINFANG_ENV must be production"),
    ("XINFANG_SECRET_KEY", "hunter2hunter2", "XINFANG_SECRET_KEY must be ${...}"),
    ("XINFANG_ASSIGN_DATABASE_URL", "postgresql+psycopg://x@postgres/xinfang_other", "no such database"),
])
def test_unsafe_production_environment_is_reported(compose, key, value, expected):
    compose["services"]["scheduler"]["environment"] = {**compose["services"]["scheduler"]["environment"], key: value}
    problems = cc.check_env(compose, ROOT)
    assert len(problems) == 1 and problems[0].startswith("scheduler:") and expected in problems[0], problems


# ------------------------------------------------------------------ roles, gateway, dependencies


def test_wrong_healthcheck_path_is_reported(compose):
    test = compose["services"]["assign-web"]["healthcheck"]["test"]
    compose["services"]["assign-web"]["healthcheck"]["test"] = [t.replace("/assign/healthz", "/intake/healthz") for t in test]
    assert [p for p in cc.check_roles(compose, ROOT) if p.startswith("assign-web: healthcheck")]


def test_web_serving_another_service_is_reported(compose):
    compose["services"]["supervise-web"]["command"][2] = "notify"
    compose["services"]["notify-worker"]["command"] = ["xinfang", "worker", "intake"]
    problems = cc.check_roles(compose, ROOT)
    assert any(p.startswith("supervise-web: must run `xinfang serve supervise`") for p in problems)
    assert any(p.startswith("notify-worker: must run `xinfang worker notify`") for p in problems)


def test_nginx_routes_parse_upstreams_and_direct_targets():
    conf = """
    upstream a { zone a 64k; server intake-web:8000 resolve; }  # comment { }
    server { location /intake/ { proxy_pass http://a; }
             location ^~ /assign/ { proxy_pass http://assign-web:8000/x/; }
             location = /healthz { return 200; } }
    """
    assert cc.nginx_routes(conf) == {"/intake/": (["intake-web:8000"], ""), "/assign/": (["assign-web:8000"], "/x/")}


def test_misrouted_gateway_is_reported(compose, tmp_root):
    conf = tmp_root / "deploy" / "nginx.conf"
    conf.write_text(conf.read_text().replace("server notify-web:8000", "server supervise-web:8000")
                    .replace("proxy_pass http://intake_web;", "proxy_pass http://intake_web/;")
                    .replace("X-Correlation-ID", "X-Request-ID"))
    problems = cc.check_gateway(compose, tmp_root)
    assert any("location /notify/ must proxy to notify-web:8000" in p for p in problems)
    assert any("location /intake/ proxy_pass has URI part '/'" in p for p in problems)
    assert any("no proxy_set_header X-Correlation-ID" in p for p in problems)


def test_healthy_condition_needs_a_healthcheck(compose):
    del compose["services"]["redis"]["healthcheck"]
    problems = cc.check_depends_on(compose, ROOT)
    assert "intake-web: waits for redis to be healthy, but redis has no healthcheck" in problems


def test_missing_migrate_dependency_is_reported(compose):
    deps = compose["services"]["assign-worker"]["depends_on"]  # shared with the others via the YAML anchor
    compose["services"]["assign-worker"]["depends_on"] = {k: v for k, v in deps.items() if k != "migrate"}
    assert cc.check_depends_on(compose, ROOT) == [
        "assign-worker: must depend on migrate with condition service_completed_successfully"]


def test_gateway_must_wait_for_healthy_webs(compose):
    compose["services"]["gateway"]["depends_on"]["notify-web"] = {"condition": "service_started"}
    assert cc.check_gateway(compose, ROOT) == ["gateway: must depend on notify-web being healthy"]


def test_redis_without_persistence_settings_is_reported(compose):
    compose["services"]["redis"]["command"] = ["redis-server", "--maxmemory-policy", "allkeys-lru"]
    assert len(cc.check_redis(compose, ROOT)) == 2


# ------------------------------------------------------------------ lifecycle and image


@pytest.mark.parametrize("value, seconds", [("11m", 660), ("660s", 660), ("1m30s", 90), ("1h", 3600),
                                            ("500ms", 0.5), ("10", 0.0), ("soon", 0.0)])
def test_duration_seconds(value, seconds):
    assert cc.duration_seconds(value) == pytest.approx(seconds)


def test_short_grace_period_is_reported(compose):
    compose["services"]["intake-worker"]["stop_grace_period"] = "600s"
    del compose["services"]["scheduler"]["stop_grace_period"]
    problems = cc.check_lifecycle(compose, ROOT)
    assert [p.split(":")[0] for p in problems] == ["intake-worker", "scheduler"]


def test_exactly_one_scheduler(compose):
    compose["services"]["scheduler"]["deploy"] = {"replicas": 2}
    assert cc.check_lifecycle(compose, ROOT) == ["scheduler: must run exactly one replica"]
    compose["services"]["scheduler2"] = copy.deepcopy(compose["services"]["scheduler"])
    assert any("exactly one scheduler service" in p for p in cc.check_lifecycle(compose, ROOT))


def test_service_not_built_from_dockerfile_is_reported(compose, tmp_root):
    compose["services"]["notify-worker"]["build"] = {"context": "./other"}
    assert cc.check_image(compose, ROOT)[0].startswith("notify-worker: must build from ./Dockerfile")
    (tmp_root / "Dockerfile").unlink()
    assert cc.check_image(compose, tmp_root) == ["Dockerfile is missing"]


def test_root_image_is_reported(compose, tmp_root):
    dockerfile = tmp_root / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 10001:10001", "USER root"))
    assert cc.check_image(compose, tmp_root) == ["Dockerfile: must switch to a non-root USER"]


# ------------------------------------------------------------------ schema


def test_schema_violation_is_reported(compose, tmp_root):
    pytest.importorskip("check_jsonschema")
    compose["services"]["intake-web"]["comand"] = compose["services"]["intake-web"].pop("command")
    (tmp_root / "docker-compose.yml").write_text(yaml.safe_dump(compose, sort_keys=False))
    problems = cc.check_schema(compose, tmp_root)
    assert len(problems) == 1 and "'comand' was unexpected" in problems[0], problems
