"""Fixtures of the scorecard tests: supervise_svc on each backend with a frozen clock, a small
directory (one city, 3 counties, 12 townships) and helpers inserting read-model rows directly."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from shared import clock
from supervise_svc.service import SCORED_SLOTS, deadline_columns
from supervise_svc.models import CaseStageView, CaseView, DirectoryPerson, DirectoryUnit
from tests.helpers import auth

COUNTIES = {"411302": "宛城区", "411303": "卧龙区", "411321": "南召县"}
_ids = itertools.count(1)


def bj(y: int, m: int, d: int, hour: int = 10, minute: int = 0) -> datetime:
    """A Beijing wall-clock time as an aware UTC instant."""
    return datetime(y, m, d, hour, minute, tzinfo=timezone.utc) - timedelta(hours=8)


def freeze(instant: datetime) -> None:
    clock.current().set(instant, frozen=True)


class Supervise:
    def __init__(self, runtime, app) -> None:
        self.runtime, self.app, self.client = runtime, app, app.test_client()
        self.settings = runtime.settings

    def headers(self, role: str = "supervisor", jurisdiction: str = "411300", **kw) -> dict:
        return auth(self.settings, role=role, jurisdiction=jurisdiction, **kw)

    def directory(self, *, townships_per_county: int = 4, populations: dict | None = None) -> None:
        """One city, 3 county governments, ``townships_per_county`` townships each (population 20,000 unless given)."""
        populations = populations or {}
        with self.runtime.uow() as s:
            s.add(DirectoryUnit(id="411300-gov", name="南阳市人民政府", kind="government", level="city",
                                region_code="411300", peer_group="市级", population=9_700_000))
            for code, name in COUNTIES.items():
                gid = f"{code}-gov"
                s.add(DirectoryUnit(id=gid, name=f"{name}人民政府", kind="government", level="county",
                                    region_code=code, parent_id="411300-gov", peer_group="县市区",
                                    population=populations.get(gid, 100_000)))
                s.add(DirectoryPerson(id=f"{gid}-head", unit_id=gid, name=f"{name}分管领导", post="deputy", leader=True))
                s.add(DirectoryUnit(id=f"{code}-xfj", name=f"{name}信访局", kind="petition_dept", level="county",
                                    region_code=code, parent_id=gid, peer_group="县信访局"))
                s.add(DirectoryPerson(id=f"{code}-xfj-dir", unit_id=f"{code}-xfj", name=f"{name}信访局主任",
                                      post="office_director"))
                for i in range(1, townships_per_county + 1):
                    tid = f"{code}{i:03d}000"
                    s.add(DirectoryUnit(id=tid, name=f"{name}第{i}镇", kind="township", level="township",
                                        region_code=tid, parent_id=gid, peer_group=f"{name}乡镇（街道）",
                                        population=populations.get(tid, 20_000)))
                    s.add(DirectoryPerson(id=f"{tid}-sec", unit_id=tid, name=f"{name}第{i}镇党委书记",
                                          post="party_secretary"))

    def case(self, region_code: str, *, stages: list[tuple] = (), **fields) -> str:
        """A read-model case; ``stages``: (kind, opened_at, due_at, closed_at) tuples, copied into the
        case's deadline slots as the projection does. Returns the case id."""
        n = next(_ids)
        case_id = fields.pop("case_id", f"case{n:06d}")
        values = dict(petition_id=f"pet{n:06d}", display_no=f"{region_code[:6]}2026{n:06d}", region_code=region_code,
                      category="城乡建设", channel="网上信访", status="assigned", case_id=case_id,
                      unit_id=region_code if len(region_code) == 12 else f"{region_code}-gov",
                      statutory_type="申诉求决类", flags={})
        values.update(fields)
        values.update(deadline_columns((kind, due, closed) for kind, _, due, closed in stages))
        with self.runtime.uow() as s:
            s.add(CaseView(**values))
            for kind, opened, due, closed in stages:
                s.add(CaseStageView(case_id=case_id, petition_id=values["petition_id"], unit_id=values["unit_id"],
                                    region_code=region_code, kind=kind, opened_at=opened, due_at=due,
                                    closed_at=closed,
                                    deadline_rows=values["deadline_rows"] and kind in SCORED_SLOTS))
        return case_id

    def compute(self, month: str, **who):
        return self.client.post(f"/supervise/api/v1/scorecards/{month}/compute", headers=self.headers(**who))

    def rows(self, month: str) -> dict[str, object]:
        from supervise_svc.scoring_models import ScorecardRow

        with self.runtime.sessions() as s:
            return {r.unit_id: r for r in s.scalars(select(ScorecardRow).where(ScorecardRow.month == month))}

    def findings(self, rule: str | None = None) -> list:
        from supervise_svc.models import Finding

        with self.runtime.sessions() as s:
            stmt = select(Finding).order_by(Finding.unit_id, Finding.cycle)
            if rule:
                stmt = stmt.where(Finding.rule == rule)
            return list(s.scalars(stmt))


def build(settings) -> Supervise:
    from supervise_svc.app import build_runtime, create_app

    runtime = build_runtime(settings, broker=StubBroker())
    runtime.create_schema()
    return Supervise(runtime, create_app(settings, runtime=runtime))


@pytest.fixture
def sup_on(backend_settings):
    """supervise_svc on each backend (SQLite, PostgreSQL); clock frozen on 2026-11-02 10:00 Beijing."""
    svc = build(backend_settings)
    freeze(bj(2026, 11, 2))
    yield svc
    svc.runtime.close()


@pytest.fixture
def sup(settings):
    """supervise_svc on SQLite; clock frozen on 2026-11-02 10:00 Beijing."""
    svc = build(settings)
    freeze(bj(2026, 11, 2))
    yield svc
    svc.runtime.close()
