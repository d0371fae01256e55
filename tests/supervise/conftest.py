"""Fixtures of supervise_svc's core tests: the service on each backend with a frozen clock, a small
directory of 宛城区 (411302), and helpers that feed events through the service functions."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from shared import clock
from shared.contracts import (CaseActionRecorded, CaseAssigned, DirectoryChanged, PetitionRegistered,
                              PetitionRegisteredSchema)
from shared.sweeps import run_sweeps
from tests.helpers import auth

#: Monday 2026-03-02 10:00 Beijing time.
START = datetime(2026, 3, 2, 2, tzinfo=timezone.utc)

UNITS = [
    {"id": "411302-gov", "name": "宛城区人民政府", "kind": "government", "level": "county", "region_code": "411302"},
    {"id": "411302-xfj", "name": "宛城区信访局", "kind": "petition_dept", "level": "county", "region_code": "411302"},
    {"id": "411302-jw", "name": "宛城区纪委监委", "kind": "discipline", "level": "county", "region_code": "411302"},
    {"id": "411302-zjj", "name": "宛城区住房和城乡建设局", "kind": "bureau", "level": "county",
     "region_code": "411302", "population": 1000000},
    {"id": "411302001000", "name": "东关街道", "kind": "township", "level": "township",
     "region_code": "411302001000", "population": 52000},
    {"id": "411303-xfj", "name": "卧龙区信访局", "kind": "petition_dept", "level": "county", "region_code": "411303"},
]
PEOPLE = [
    {"id": "411302-gov-p1", "unit_id": "411302-gov", "name": "姚峰", "post": "party_secretary", "title": "区委书记"},
    {"id": "411302-gov-p2", "unit_id": "411302-gov", "name": "薛亮", "post": "head", "title": "区长"},
    {"id": "411302-gov-p3", "unit_id": "411302-gov", "name": "何淑珍", "post": "deputy", "title": "分管信访工作副区长"},
    {"id": "411302-xfj-p2", "unit_id": "411302-xfj", "name": "韩海燕", "post": "head", "title": "主要负责人"},
    {"id": "411302-xfj-p4", "unit_id": "411302-xfj", "name": "郭超", "post": "office_director", "title": "办公室主任"},
    {"id": "411302-zjj-p1", "unit_id": "411302-zjj", "name": "李明", "post": "party_secretary", "title": "党组书记"},
    {"id": "411302-zjj-p2", "unit_id": "411302-zjj", "name": "张伟", "post": "head", "title": "局长"},
    {"id": "411302001000-p1", "unit_id": "411302001000", "name": "王霞", "post": "party_secretary",
     "title": "党委（党工委）书记"},
    {"id": "411302001000-p2", "unit_id": "411302001000", "name": "金建国", "post": "head", "title": "街道办事处主任"},
    {"id": "411302001000-p3", "unit_id": "411302001000", "name": "田振华", "post": "deputy", "title": "分管信访副职"},
]


def freeze(instant: datetime) -> None:
    clock.current().set(instant, frozen=True)


def advance(**delta) -> datetime:
    return clock.current().advance(timedelta(**delta))


def stage(kind: str, due: datetime | None, *, paused: bool = False, warn: datetime | None = None) -> dict:
    return {"kind": kind, "due_at": due.isoformat() if due else None, "warn_at": warn.isoformat() if warn else None,
            "basis": "《信访工作条例》第三十四条", "paused": paused, "policy": "handling@1"}


class Supervise:
    """supervise_svc under test: runtime, Flask client, event feeders."""

    def __init__(self, runtime, app) -> None:
        self.runtime, self.app, self.client = runtime, app, app.test_client()
        self.settings = runtime.settings
        self.cases: dict[str, dict] = {}

    # -- events
    def directory(self, version: int = 1) -> None:
        from supervise_svc import service

        with self.runtime.uow() as s:
            service.project_directory_changed(s, DirectoryChanged(version=version, changed_at=clock.now(), full=True,
                                                                  units=UNITS, people=PEOPLE))

    def register(self, *, petition_id: str | None = None, flags: dict | None = None, region_code="411302001000",
                 display_no: str | None = None) -> str:
        from supervise_svc import service

        pid = petition_id or uuid.uuid4().hex
        event = PetitionRegistered(petition_id=pid, display_no=display_no or f"41130220260302{len(self.cases):04d}",
                                   system="wancheng-xf", county_no=None, region_code=region_code, category="城乡建设",
                                   channel="网上信访", request_text="小区外墙脱落", petitioner_name="张三",
                                   registered_at=clock.now(), flags=flags or {}, purpose="求决",
                                   statutory_type="申诉求决类")
        schema = PetitionRegisteredSchema()
        event = schema.load(schema.dump(event))  # as the actor receives it (flags normalised)
        with self.runtime.uow() as s:
            service.project_petition_registered(s, event, runtime=self.runtime)
        self.cases.setdefault(pid, {"petition_id": pid, "display_no": event.display_no, "region_code": region_code})
        return pid

    def assign(self, petition_id: str, *, unit_id="411302001000", unit_name="东关街道",
               leader_id="411302001000-p3", due: datetime | None = None) -> str:
        from supervise_svc import service

        case = self.cases[petition_id]
        case.update(case_id="c" + petition_id[:30], unit_id=unit_id, leader_id=leader_id)
        event = CaseAssigned(case_id=case["case_id"], petition_id=petition_id, display_no=case["display_no"],
                             unit_id=unit_id, unit_name=unit_name, region_code=case["region_code"], category="城乡建设",
                             assigned_at=clock.now(), due_at=due or clock.now() + timedelta(days=60),
                             deadline_basis="第三十四条", leader_id=leader_id, leader_name="田振华")
        with self.runtime.uow() as s:
            service.project_case_assigned(s, event)
        return case["case_id"]

    def act(self, petition_id: str, action: str, *, status: str = "办理中", stages: list | None = None,
            data: dict | None = None, at: datetime | None = None, event_id: str | None = None) -> str:
        from supervise_svc import service

        case = self.cases[petition_id]
        eid = event_id or uuid.uuid4().hex
        event = CaseActionRecorded(case_id=case["case_id"], petition_id=petition_id, display_no=case["display_no"],
                                   unit_id=case["unit_id"], region_code=case["region_code"], action=action,
                                   label=action, status=status, previous_status="", at=at or clock.now(),
                                   actor="承办人", actor_role="handler", data=data or {}, stages=stages or [],
                                   leader_id=case.get("leader_id"))
        with self.runtime.uow() as s:
            service.project_case_action(s, event, eid, runtime=self.runtime, tz=self.settings.timezone)
        return eid

    def new_case(self, **assign) -> tuple[str, str]:
        pid = self.register()
        return pid, self.assign(pid, **assign)

    def sweep(self, *names: str) -> dict:
        from supervise_svc import checks, interviews, ladder

        jobs = {"overdue": checks.overdue_sweep, "commitments": checks.commitment_sweep,
                "reflow": checks.reflow_sweep, "ladder": ladder.ladder_sweep, "items": interviews.item_sweep}
        if not names:
            return run_sweeps(self.runtime)
        return {n: jobs[n](self.runtime) for n in names}

    # -- reading
    def findings(self, **where) -> list:
        from supervise_svc.models import Finding

        with self.runtime.sessions() as s:
            stmt = select(Finding).order_by(Finding.detected_at, Finding.finding_no)
            for k, v in where.items():
                stmt = stmt.where(getattr(Finding, k) == v)
            return list(s.scalars(stmt))

    def outbox(self, message_type: str | None = None) -> list[dict]:
        model = self.runtime.outbox_model
        with self.runtime.sessions() as s:
            stmt = select(model).order_by(model.created_at)
            if message_type:
                stmt = stmt.where(model.message_type == message_type)
            return [json.loads(r.body) for r in s.scalars(stmt)]

    def notices(self, finding_id: str | None = None) -> list[dict]:
        out = [m["payload"] for m in self.outbox("notice.requested")]
        return [n for n in out if finding_id is None or n["subject_id"] == finding_id]

    def headers(self, role="supervisor", jurisdiction="411302", **kw) -> dict:
        return auth(self.settings, role=role, jurisdiction=jurisdiction, **kw)


def build(settings) -> Supervise:
    from supervise_svc.app import build_runtime, create_app

    runtime = build_runtime(settings, broker=StubBroker())
    runtime.create_schema()
    freeze(START)
    svc = Supervise(runtime, create_app(settings, runtime=runtime))
    svc.directory()
    return svc


@pytest.fixture
def sv(settings):
    """supervise_svc on SQLite, clock frozen on Monday 2026-03-02 10:00 Beijing time."""
    svc = build(settings)
    yield svc
    svc.runtime.close()


@pytest.fixture
def sv_on(backend_settings):
    """supervise_svc on each backend (SQLite, PostgreSQL)."""
    svc = build(backend_settings)
    yield svc
    svc.runtime.close()
