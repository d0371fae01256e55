"""The bulk fill (bench/fill) writes what the slow path (the simulator through the HTTP APIs) makes the
system write, table by table, for the same seed and parameters.

Compared on normalised columns (surrogate ids mapped to display numbers, wall-clock columns left out).
The bulk path writes each case as routing leaves it (待签收, receipt stages open) and does not replay the
units' handling, so what handling changes is left out of the comparison: the case state and headline
deadline, intake's copy of the case status after the first change, stages opened or closed after 交办,
supervise's state columns, overdue markers.  The period (6 days) is shorter than the earliest closure the
workload can produce, so no reflow (回流) is drawn and no earlier case is closed when a repeat arrives:
registrations, detection flags and routing must then match exactly.
"""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import create_engine, select

from shared import clock
from shared.config import Settings
from shared.simulator.workload import Params
from tests.helpers import SECRET

pytestmark = pytest.mark.slow

SEED, DAYS, PER_DAY, START = 4, 6, 6, date(2026, 9, 1)
RECEIPT_KINDS = ("acceptance_notice", "objection", "assigned")


def read(settings: Settings, service: str, table) -> list[dict]:
    engine = create_engine(settings.database_url(service))
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
    finally:
        engine.dispose()


def snapshot(settings: Settings) -> dict[str, dict]:
    """Every compared table as {key: normalised row}."""
    from assign_svc.models import Case, CaseEvent, CaseStage
    from intake_svc.models import DisplaySequence, Petition, PetitionChange, Petitioner
    from intake_svc.pii import PiiVault
    from supervise_svc.models import CaseStageView, CaseView, DirectoryPerson, DirectoryUnit

    vault = PiiVault(settings)
    petitions = read(settings, "intake", Petition.__table__)
    no_of = {p["id"]: p["display_no"] for p in petitions}
    cases = read(settings, "assign", Case.__table__)
    case_no = {c["id"]: c["display_no"] for c in cases}
    assigned_at = {c["id"]: c["assigned_at"] for c in cases}

    def flags(value: dict | None) -> dict:
        value = dict(value or {})
        if value.get("repeat_of"):
            value["repeat_of"] = no_of.get(value["repeat_of"], "?")
        return value

    out: dict[str, dict] = {}
    skip = {"id", "case_status", "case_resolved", "case_final", "case_updated_at"}
    out["intake.petitions"] = {p["display_no"]: {**{k: v for k, v in p.items() if k not in skip},
                                                 "repeat_of": no_of.get(p["repeat_of"]) if p["repeat_of"] else None}
                               for p in petitions}
    out["intake.petitioners"] = {
        (no_of[p["petition_id"]], p["seq"]): {
            "name": p["name"], "id_blind": p["id_blind"], "phone_blind": p["phone_blind"],
            "id_number": vault.open(p["id_number_enc"]), "phone": vault.open(p["phone_enc"]),
            "address_code": p["address_code"], "address": p["address"], "registered_at": p["registered_at"]}
        for p in read(settings, "intake", Petitioner.__table__)}
    changes = sorted(read(settings, "intake", PetitionChange.__table__), key=lambda c: c["id"])
    firsts: dict[tuple, dict] = {}
    for c in changes:
        key = (no_of[c["petition_id"]], c["action"])
        if key in firsts:
            continue  # later case-status changes come from the handling the bulk path does not replay
        data = dict(c["changes"])
        if c["action"] == "registered" and data["detection"].get("repeat_of"):
            data["detection"] = {**data["detection"], "repeat_of": no_of[data["detection"]["repeat_of"]]}
        firsts[key] = {"actor": c["actor"], "changes": data}
    out["intake.petition_changes (first per action)"] = firsts
    out["intake.display_sequences"] = {(s["region6"], s["day"]): s["last"]
                                       for s in read(settings, "intake", DisplaySequence.__table__)}
    skip = {"id", "petition_id", "status", "due_at", "deadline_basis", "row_version", "previous_status", "extension",
            "opinion", "service", "evaluations", "closure", "review", "cessation", "closed_at", "resolution",
            "updated_at", "reviewed_by"}
    out["assign.cases"] = {c["display_no"]: {**{k: v for k, v in c.items() if k not in skip}, "flags": flags(c["flags"])}
                           for c in cases}

    def stage_key(s: dict, opened: str) -> tuple | None:
        if s["kind"] not in RECEIPT_KINDS or s[opened] != assigned_at.get(s["case_id"]):
            return None  # opened later, by the handling
        return (case_no[s["case_id"]], s["kind"])

    stages = {}
    for s in read(settings, "assign", CaseStage.__table__):
        key = stage_key(s, "started_at")
        if key is None:
            continue
        row = {k: v for k, v in s.items() if k not in ("id", "case_id", "policy_id", "closed_at", "outcome", "warned_at",
                                                          "paused_at", "paused_days", "extension_days")}
        if s["extension_days"] or s["paused_days"] or s["paused_at"]:
            row.pop("due_at"), row.pop("warn_at")  # moved by an extension or pause after 交办
        stages[key] = row
    out["assign.case_stages (opened at 交办)"] = stages
    out["assign.case_events (交办)"] = {
        case_no[e["case_id"]]: {k: v for k, v in e.items() if k not in ("id", "case_id")}
        for e in read(settings, "assign", CaseEvent.__table__) if e["seq"] == 1}
    keep = ("display_no", "region_code", "category", "registered_at", "request_text", "channel", "purpose",
            "statutory_type", "legal_litigation", "group_visit", "cross_level", "reflow", "unit_id", "unit_name",
            "leader_id", "leader_name", "mode", "in_clock", "assigned_at")
    out["supervise.case_views"] = {
        v["display_no"]: {**{k: v[k] for k in keep}, "flags": flags(v["flags"]),
                          "repeat_of": no_of.get(v["repeat_of"]) if v["repeat_of"] else None,
                          "case": case_no.get(v["case_id"])}
        for v in read(settings, "supervise", CaseView.__table__)}
    views = {}
    for s in read(settings, "supervise", CaseStageView.__table__):
        key = stage_key(s, "opened_at")
        if key is None:
            continue
        row = {k: s[k] for k in ("unit_id", "region_code", "due_at", "warn_at", "basis", "policy", "paused")}
        if key in stages and "due_at" not in stages[key]:
            row.pop("due_at"), row.pop("warn_at")
        row["petition"] = no_of.get(s["petition_id"])
        views[key] = row
    out["supervise.supervise_case_stages (opened at 交办)"] = views
    out["supervise.directory_units"] = {u["id"]: {k: v for k, v in u.items() if k != "version"}
                                        for u in read(settings, "supervise", DirectoryUnit.__table__)}
    out["supervise.directory_people"] = {p["id"]: {k: v for k, v in p.items() if k != "version"}
                                         for p in read(settings, "supervise", DirectoryPerson.__table__)}
    return out


def differences(slow: dict[str, dict], bulk: dict[str, dict]) -> list[str]:
    lines = []
    for table in slow:
        a, b = slow[table], bulk[table]
        for key in sorted(set(a) | set(b), key=str):
            if key not in b:
                lines.append(f"{table} {key}: only in the slow path")
            elif key not in a:
                lines.append(f"{table} {key}: only in the bulk fill")
            elif a[key] != b[key]:
                if isinstance(a[key], dict) and isinstance(b[key], dict):
                    for col in sorted(set(a[key]) | set(b[key])):
                        if a[key].get(col, "<absent>") != b[key].get(col, "<absent>"):
                            lines.append(f"{table} {key} {col}: slow={a[key].get(col, '<absent>')!r} "
                                         f"bulk={b[key].get(col, '<absent>')!r}")
                else:
                    lines.append(f"{table} {key}: slow={a[key]!r} bulk={b[key]!r}")
    return lines


@pytest.fixture(scope="module")
def slow_path(tmp_path_factory):
    """The simulator through the HTTP APIs on the embedded system (SQLite), once for the module."""
    from shared.simulator import demo

    base = Settings(data_dir=tmp_path_factory.mktemp("slow") / "var", secret_key=SECRET, clock_control=True,
                    outbox_poll_seconds=0.05, sweep_interval_seconds=3600, worker_threads=4)
    settings = demo.settings_for_demo(base, base.data_dir)
    try:
        _, sim = demo.simulate(settings, Params(seed=SEED, days=DAYS, per_day=PER_DAY), start=START)
    finally:
        clock.configure(settings.replace(clock_control=False))
    assert sim.summary.rejected == 0 and sim.summary.registered == sim.summary.routed
    assert not any(t.planned.reflow for t in sim.tracks) and sim.summary.closed == 0  # see the module docstring
    return settings, snapshot(settings), sim


def bulk_fill(settings: Settings) -> dict[str, dict]:
    from bench.fill.core import FillParams, fill

    report = fill(settings, FillParams(seed=SEED, days=DAYS, per_day=PER_DAY, start=START))
    assert report.petitions > 0
    return snapshot(settings)


def check(slow: dict, bulk: dict, sim) -> None:
    lines = differences(slow, bulk)
    assert not lines, f"{len(lines)} differences between the slow path and the bulk fill:\n" + "\n".join(lines[:60])
    # the comparison is not vacuous: every petition, a repeat linked by detection, stages with due dates
    assert len(slow["intake.petitions"]) == sim.summary.registered > 20
    assert any(p["repeat_of"] for p in slow["intake.petitions"].values())
    assert sum(1 for s in slow["assign.case_stages (opened at 交办)"].values() if s.get("due_at")) >= 2 * 20


def test_bulk_fill_matches_the_slow_path_on_sqlite(slow_path, tmp_path):
    settings, slow, sim = slow_path
    bulk_settings = Settings(data_dir=tmp_path / "bulk", secret_key=SECRET, clock_control=True)
    check(slow, bulk_fill(bulk_settings), sim)


def test_bulk_fill_matches_the_slow_path_on_postgres(slow_path, tmp_path, pg_urls):
    settings, slow, sim = slow_path
    bulk_settings = Settings(data_dir=tmp_path / "bulk", secret_key=SECRET, clock_control=True,
                             database_urls=pg_urls)
    check(slow, bulk_fill(bulk_settings), sim)


def test_a_difference_fails_with_a_readable_diff(slow_path):
    _, slow, _ = slow_path
    bulk = {table: {k: (dict(v) if isinstance(v, dict) else v) for k, v in rows.items()} for table, rows in slow.items()}
    key = next(iter(bulk["assign.cases"]))
    bulk["assign.cases"][key]["unit_id"] = "elsewhere"
    del bulk["intake.petitioners"][next(iter(bulk["intake.petitioners"]))]
    lines = differences(slow, bulk)
    assert any(f"assign.cases {key} unit_id:" in line and "bulk='elsewhere'" in line for line in lines)
    assert any("only in the slow path" in line for line in lines)
