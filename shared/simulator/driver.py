"""The simulator (工作量模拟器): plays days of a city's petitions through the running system.

It drives the system only through its public HTTP interfaces — the intake API with county
API keys, the unit workflow API of assign_svc, the follow-up and findings APIs of
supervise_svc — and the settable clock, and after each simulated day runs the scheduler's
sweeps.  Setting up (API keys) is the operator's step, done as ``xinfang apikey create`` does.

Because it knows what it made each unit and petitioner do, it also records the expected
outcome (which case each of the five checks must catch) and ``check()`` compares it with
what supervision reported.
"""
from __future__ import annotations

import importlib
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from shared import clock
from shared.auth import Principal, issue_token
from shared.simulator.workload import (Params, Planned, UnitPlan, Workload, draw_evaluations, draw_opinion,
                                      plan_for, unit_profiles)
from shared.sweeps import run_sweeps

log = logging.getLogger(__name__)
TZ = ZoneInfo("Asia/Shanghai")

#: Stage kinds the overdue check watches (the petitioner's own windows are not the unit's fault).
WATCHED_STAGES = ("register_route", "acceptance_notice", "handling", "assigned", "review_decision",
                  "recheck_decision")


@dataclass
class Response:
    status: int
    body: Any
    headers: dict


class WsgiApi:
    """HTTP requests to the system's WSGI application, in process (no socket)."""

    def __init__(self, wsgi) -> None:
        from werkzeug.test import Client

        self.client = Client(wsgi)

    def request(self, method: str, path: str, *, json_body=None, headers=None, query=None) -> Response:
        r = self.client.open(path, method=method, json=json_body, headers=headers or {}, query_string=query)
        data = r.get_data()
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = data
        return Response(r.status_code, body, dict(r.headers))


@dataclass
class CaseTrack:
    planned: Planned
    petition_id: str
    case_id: str | None = None
    display_no: str = ""
    unit_id: str = ""
    region_code: str = ""
    leader_id: str | None = None
    mode: str = ""
    plan: UnitPlan | None = None
    #: The case's own generator (seeded with the seed and the petition's key; ``plan_for`` draws from it
    #: first, then the unit's answer and the petitioner's grades): a case's draws do not depend on the others.
    rng: random.Random | None = None
    step: str = "sign"
    due_day: int = 0
    closed_day: int | None = None
    reported_day: int | None = None
    perfunctory: bool = False
    dissatisfied: bool = False
    graded_unsatisfied: bool = False
    called_unsatisfied: bool = False
    linked_to: str | None = None  # the earlier petition intake's repeat detection linked this one to
    called_not_carried_out: bool = False
    commitment_due: date | None = None
    commitment_done: bool = False
    failures: list[str] = field(default_factory=list)


@dataclass
class Summary:
    registered: int = 0
    rejected: int = 0
    routed: int = 0
    diverted: int = 0
    closed: int = 0
    closed_on_time: int = 0
    acknowledged: int = 0  # notices the simulated recipients acknowledged (签收)
    ack_refused: int = 0
    actions: int = 0
    action_failures: int = 0
    reflows_registered: int = 0
    followups: int = 0
    findings: dict = field(default_factory=dict)
    escalations: dict = field(default_factory=dict)
    interviews: int = 0
    notices: dict = field(default_factory=dict)
    colours: dict = field(default_factory=dict)


class Simulation:
    """One simulated period on an embedded system (``shared.system.EmbeddedSystem``), started."""

    def __init__(self, system, params: Params, *, start: date | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        if not system.settings.clock_control:
            raise RuntimeError("the simulator sets the clock: enable XINFANG_CLOCK_CONTROL=1 (never in production)")
        self.system, self.params, self.settings = system, params, system.settings
        self.api = WsgiApi(system.wsgi)
        self.start = start or (clock.now().astimezone(TZ).date() - timedelta(days=params.days))
        self.progress = progress
        self.summary = Summary()
        self.tracks: list[CaseTrack] = []
        self.by_key: dict[str, CaseTrack] = {}
        self.by_petition: dict[str, CaseTrack] = {}
        self.keys: dict[str, str] = {}
        self.units: dict[str, dict] = {}
        self.people: dict[str, dict] = {}
        self.profiles: dict[str, str] = {}
        self.seen_findings: dict[str, int] = {}
        self.seen_notices: dict[str, int] = {}
        self.interview_steps: dict[str, int] = {}
        self.cards: dict[str, list[dict]] = {}

    # ------------------------------------------------------------ time and identity

    def at(self, day: int, hour: int = 9) -> datetime:
        return datetime.combine(self.start + timedelta(days=day), time(hour), tzinfo=TZ).astimezone(timezone.utc)

    def set_clock(self, day: int, hour: int) -> None:
        clock.current().set(self.at(day, hour), frozen=True)

    def token(self, *, role: str, jurisdiction: str, unit_id: str | None = None, username: str | None = None,
              user_id: str | None = None) -> dict:
        principal = Principal(user_id=user_id or f"sim-{role}-{unit_id or jurisdiction}",
                              username=username or f"sim-{role}", role=role, jurisdiction=jurisdiction,
                              unit_id=unit_id)
        return {"Authorization": f"Bearer {issue_token(self.settings, principal, ttl_seconds=3 * 86400)}"}

    def admin(self) -> dict:
        return self.token(role="admin", jurisdiction="000000", username="sim-admin")

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        self.set_clock(0, 8)
        r = self.api.request("GET", "/assign/api/v1/units", headers=self.admin())
        if r.status != 200:
            raise RuntimeError(f"cannot read the directory: {r.status} {r.body}")
        self.units = {u["id"]: u for u in r.body}
        self.people = {p["id"]: p for p in self.pages("/assign/api/v1/people", self.admin(), {}, size=1000)}
        self.profiles = unit_profiles(self.params.seed, list(self.units))
        counties = sorted({u["region_code"][:6] for u in self.units.values() if u["level"] == "county"})
        city = min(u["region_code"][:6] for u in self.units.values() if u["level"] == "city")
        keys = importlib.import_module("intake_svc.apikeys")
        with self.system.runtimes["intake"].uow() as session:
            for code in [*counties, city]:
                _, secret = keys.create_key(session, name=f"模拟器 {code}", system=f"sim-{code}", jurisdiction=code,
                                            rate_limit="100000/minute")
                self.keys[code] = secret
        self.city = city

    def places(self) -> list[tuple[str, str, str]]:
        out = []
        for u in sorted(self.units.values(), key=lambda u: u["id"]):
            if u["kind"] == "township":
                out.append((u["region_code"], u["region_code"][:6], u["name"]))
        return out

    # ------------------------------------------------------------ the run

    def run(self) -> Summary:
        self.setup()
        self.workload = Workload(self.params, self.places())
        for day in range(self.params.days):
            self.set_clock(day, 9)
            for item in self.workload.day(day) + self._reflows_due(day):
                self.register(item)
            self.system.settle(timeout=120)
            self._pick_up_new_cases(day)
            self.set_clock(day, 15)
            for track in self.tracks:
                self._advance(track, day)
            self.system.settle(timeout=120)
            self._acknowledge(day)
            self.sweep(day, 23)
            self.set_clock(day, 16)
            self._supervise(day)
            self.system.settle(timeout=120)
            if self.progress:
                self.progress(day + 1, self.params.days)
        self.sweep(self.params.days, 9)
        self.finish()
        return self.summary

    def sweep(self, day: int, hour: int) -> None:
        self.set_clock(day, hour)
        for runtime in self.system.runtimes.values():
            run_sweeps(runtime)
        self.system.settle(timeout=120)

    # ------------------------------------------------------------ intake

    def register(self, item: Planned) -> None:
        petitioner = item.petitioner
        body = {"system": f"sim-{item.county if item.registrar == 'county' else self.city}",
                "county_no": item.key, "channel": item.channel, "purpose": item.purpose,
                "petitioned_at": self.at(item.day, 9).isoformat(), "title": item.title,
                "request_text": item.request_text, "category": item.category, "region_code": item.region_code,
                "people_count": item.people_count, "legal_litigation": item.legal_litigation,
                "anonymous": petitioner is None,
                "petitioners": [] if petitioner is None else [
                    {"name": petitioner.name, "id_number": petitioner.id_number, "phone": petitioner.phone,
                     "address_code": petitioner.county}]}
        key = self.keys[item.county if item.registrar == "county" else self.city]
        r = self.api.request("POST", "/intake/api/v1/petitions", json_body=body,
                             headers={"X-API-Key": key, "Idempotency-Key": item.key})
        if r.status not in (200, 201):
            self.summary.rejected += 1
            log.warning("simulated petition %s refused: %s %s", item.key, r.status, r.body)
            return
        self.summary.registered += 1
        self.summary.reflows_registered += int(item.reflow)
        track = CaseTrack(planned=item, petition_id=r.body["id"], display_no=r.body.get("display_no", ""),
                          linked_to=(r.body.get("detection") or {}).get("repeat_of"))
        self.tracks.append(track)
        self.by_key[item.key] = track
        self.by_petition[track.petition_id] = track

    def _reflows_due(self, day: int) -> list[Planned]:
        out = []
        for track in self.tracks:
            p = track.planned.petitioner
            if (track.closed_day is not None and p is not None and p.returns and track.dissatisfied
                    and not track.planned.reflow and day == track.closed_day + 4):
                out.append(self.workload.repeat(track.planned, day, reflow=True))
        return out

    # ------------------------------------------------------------ the units' handling

    def _pick_up_new_cases(self, day: int) -> None:
        for track in self.tracks:
            if track.case_id is not None or track.mode == "none":
                continue
            r = self.api.request("GET", "/assign/api/v1/cases", headers=self.admin(),
                                 query={"petition_id": track.petition_id})
            if r.status != 200 or not r.body:
                continue
            case = r.body[0]
            track.case_id, track.unit_id, track.region_code = case["id"], case["unit_id"], case["region_code"]
            track.display_no, track.leader_id, track.mode = case["display_no"], case.get("leader_id"), case["mode"]
            self.summary.routed += 1
            if case["mode"] == "divert":
                self.summary.diverted += 1
                track.step = "done"
                continue
            track.rng = random.Random(f"{self.params.seed}-{track.planned.key}")
            track.plan = plan_for(track.rng, self.profiles.get(track.unit_id, "good"))
            track.dissatisfied = bool(track.planned.petitioner and track.planned.petitioner.dissatisfied)
            track.due_day = day + track.plan.sign

    def _unit_headers(self, track: CaseTrack, role: str = "handler") -> dict:
        return self.token(role=role, jurisdiction=track.region_code[:6], unit_id=track.unit_id,
                          username=f"sim-{role}-{track.unit_id}")

    def _dept_headers(self, track: CaseTrack) -> dict:
        county = track.region_code[:6]
        dept = next((u["id"] for u in self.units.values() if u["kind"] == "petition_dept"
                     and u["region_code"] == county), None)
        return self.token(role="registrar", jurisdiction=county, unit_id=dept, username=f"sim-dept-{county}")

    def _owner_headers(self, track: CaseTrack) -> dict:
        leader = self.people.get(track.leader_id or "", {})
        unit = leader.get("unit_id") or track.unit_id
        return self.token(role="leader", jurisdiction=self.units.get(unit, {}).get("region_code", "")[:6] or "000000",
                          unit_id=unit, username=leader.get("username") or f"sim-leader-{unit}")

    def _act(self, track: CaseTrack, action: str, body: dict, headers: dict) -> dict | None:
        r = self.api.request("POST", f"/assign/api/v1/cases/{track.case_id}/actions/{action}", json_body=body,
                             headers=headers)
        self.summary.actions += 1
        if r.status != 200:
            self.summary.action_failures += 1
            track.failures.append(f"{action}: {r.status} {r.body if isinstance(r.body, dict) else ''}")
            log.info("simulated %s on %s refused: %s %s", action, track.display_no, r.status, r.body)
            return None
        return r.body

    def _advance(self, track: CaseTrack, day: int) -> None:
        """Do every step of the case that is due by ``day``, in order."""
        if track.case_id is None or track.plan is None:
            return
        for _ in range(12):
            if track.step == "done" or track.due_day > day:
                return
            if not self._step(track, day):
                track.step = "done"  # the system refused: the unit gives up on this case in the simulation
                return

    def _step(self, track: CaseTrack, day: int) -> bool:
        plan, today = track.plan, (self.start + timedelta(days=day)).isoformat()
        unit = self._unit_headers(track)
        step = track.step
        if step == "sign":
            ok = self._act(track, "sign", {}, unit)
            track.step, track.due_day = "accept", day + plan.accept
        elif step == "accept":
            ok = self._act(track, "accept", {}, unit) and self._act(
                track, "serve", {"method": "邮寄送达", "signed_on": today}, unit)
            track.step = "extend" if plan.extension else "opinion"
            track.due_day = day + (5 if plan.extension else plan.opinion)
        elif step == "extend":
            ok = self._act(track, "request_extension", {"days": 20, "reason": "涉及多个部门，需要会商调查"}, unit) \
                and self._act(track, "approve_extension", {}, self._unit_headers(track, "leader"))
            track.step, track.due_day = "opinion", day + max(1, plan.opinion - 5)
        elif step == "opinion":
            action, body = self._opinion(track, day)
            ok = self._act(track, action, body, unit) and self._act(
                track, "serve", {"method": "直接送达", "signed_on": today}, unit)
            track.step, track.due_day = "evaluate", day + 1
        elif step == "evaluate":
            ok = True
            # An anonymous petitioner cannot be asked; an accuser is told the result but does not grade it.
            if track.planned.petitioner is not None and track.planned.purpose != "检举控告":
                bodies = draw_evaluations(track.rng, track.dissatisfied)
                for body in bodies:
                    ok = ok and bool(self._act(track, "evaluate", body, unit))
                track.graded_unsatisfied = ok and bodies[0]["grade"] == "不满意"
            track.step, track.due_day = "commitment" if track.commitment_due else "closure", day + 1
        elif step == "commitment":
            ok = True
            if not plan.commitment_undone:
                ok = bool(self._act(track, "fulfil_commitment", {"index": 0, "reason": "已按承诺落实到位"}, unit))
                track.commitment_done = ok
            track.step, track.due_day = "closure", day + 1
        elif step == "closure":
            perfunctory = plan.closure_perfunctory
            checklist = {"procedure_correct": not perfunctory, "every_request_answered": True,
                         "reasonableness_judged": True}
            claim = {"resolved": True, "resolution_reason": "信访人诉求已依法依规解决"} if not track.dissatisfied else {}
            body = self._act(track, "submit_closure", {"summary": "已按处理意见办理完毕", "checklist": checklist,
                                                       **claim}, unit)
            ok = body is not None
            # The system judges the checklist (missing documents too): its verdict is what counts.
            track.perfunctory = bool(ok and ((body.get("closure") or {}).get("perfunctory")))
            track.reported_day = day if ok else None
            track.step, track.due_day = ("done" if track.perfunctory else "sign_off"), day + 1
        elif step == "sign_off":
            ok = bool(self._act(track, "sign_off", {"opinion": "同意结案"}, self._unit_headers(track, "leader")))
            if ok and track.leader_id:
                ok = bool(self._act(track, "sign_off", {"opinion": "同意"}, self._owner_headers(track)))
            if ok:
                ok = bool(self._act(track, "sign_off", {"opinion": "审核通过"}, self._dept_headers(track)))
            if ok:
                track.closed_day = day
                self.summary.closed += 1
            track.step = "done"
        else:
            return False
        return bool(ok)

    def _opinion(self, track: CaseTrack, day: int) -> tuple[str, dict]:
        """The unit's answer by statutory type (``workload.draw_opinion``), dates as the API takes them."""
        action, body, due = draw_opinion(track.rng, track.planned.purpose, self.start, day)
        if due is not None:
            body["commitments"] = [{**c, "due_date": due.isoformat()} for c in body["commitments"]]
            track.commitment_due = due
        return action, body

    # ------------------------------------------------------------ notices (签收)

    def unacknowledged(self) -> list[dict]:
        """The 未签收 list of notify, every page."""
        return self.pages("/notify/api/v1/notices", self.admin(), {"unacknowledged": "true"}, size=100)

    def _acknowledge(self, day: int) -> None:
        """签收: recipients acknowledge their notices at 15:00 as their unit's profile says: good units the day
        they arrive, slow ones two days late (past the deadline: notify escalates), sloppy ones about half of
        them and never the rest (a draw per notice, from the seed)."""
        for notice in self.unacknowledged():
            first = self.seen_notices.setdefault(notice["id"], day)
            person = self.people.get(notice["recipient_id"]) if notice["recipient_kind"] == "person" else None
            unit_id = person.get("unit_id", "") if person else notice["recipient_id"]
            profile = self.profiles.get(unit_id, "good")
            if profile == "slow" and day - first < 2:
                continue
            draw = random.Random(f"{self.params.seed}-{notice['notice_type']}-{notice['recipient_id']}-"
                                 f"{notice['title']}").random()
            if profile == "sloppy" and draw < 0.5:
                continue
            region = self.units.get(unit_id, {}).get("region_code", "")[:6] or "000000"
            if person:  # a directory person acts as themself: the token's user id is the person's id
                headers = self.token(role="leader" if person.get("leader") else "handler", jurisdiction=region,
                                     unit_id=unit_id, username=person.get("username") or f"sim-{person['id']}",
                                     user_id=person["id"])
            else:
                headers = self.token(role="handler", jurisdiction=region, unit_id=unit_id,
                                     username=f"sim-handler-{unit_id}")
            r = self.api.request("POST", f"/notify/api/v1/notices/{notice['id']}/ack", headers=headers)
            if r.status == 200:
                self.summary.acknowledged += 1
            else:
                self.summary.ack_refused += 1
                log.info("simulated acknowledgement of %s refused: %s %s", notice["title"], r.status, r.body)
        self.system.settle(timeout=120)

    # ------------------------------------------------------------ supervisors and rectification

    def supervisor(self) -> dict:
        return self.token(role="supervisor", jurisdiction=self.city, unit_id=f"{self.city}-xfj",
                          username="sim-city-supervisor")

    def findings(self, **query) -> list[dict]:
        return self.pages("/supervise/api/v1/findings", self.supervisor(), query)

    def pages(self, path: str, headers: dict, query: dict, size: int = 200) -> list[dict]:
        """Every item of a paginated list (a list body, or a body with ``items``), ``size`` a page."""
        out, page = [], 1
        while True:
            r = self.api.request("GET", path, headers=headers, query={**query, "page": page, "page_size": size})
            if r.status != 200:
                raise RuntimeError(f"GET {path} page {page}: {r.status} {r.body}")
            items = r.body.get("items", []) if isinstance(r.body, dict) else r.body or []
            out.extend(items)
            if len(items) < size:
                return out
            page += 1

    def _finding_act(self, finding: dict, action: str, body: dict, headers: dict) -> bool:
        r = self.api.request("POST", f"/supervise/api/v1/findings/{finding['id']}/actions/{action}",
                             json_body=body, headers=headers)
        self.summary.actions += 1
        if r.status != 200:
            self.summary.action_failures += 1
            log.info("simulated %s on finding %s refused: %s %s", action, finding.get("finding_no"), r.status, r.body)
        return r.status == 200

    def _supervise(self, day: int) -> None:
        """Units rectify findings as their profile says (good: within days; slow and sloppy: never, so the
        ladder climbs); the city supervisor verifies and closes, and schedules, holds and closes interviews."""
        sup = self.supervisor()
        for finding in self.findings():
            first = self.seen_findings.setdefault(finding["id"], day)
            if self.profiles.get(finding["unit_id"], "good") != "good":
                continue
            unit = self.token(role="handler", jurisdiction=finding["region_code"][:6], unit_id=finding["unit_id"],
                              username=f"sim-handler-{finding['unit_id']}")
            age, status = day - first, finding["status"]
            if status in ("open", "reopened") and age >= 1:
                self._finding_act(finding, "start_rectifying", {"reason": "已部署整改"}, unit)
            elif status == "rectifying" and age >= 3:
                self._finding_act(finding, "submit_rectification", {"proof": "已整改到位，附整改报告和信访人确认材料"}, unit)
            elif status == "rectified" and age >= 4:
                self._finding_act(finding, "verify", {"reason": "经电话回访核实，整改到位"}, sup)
            elif status == "verified":
                self._finding_act(finding, "close", {"reason": "销号"}, sup)
        self._interviews(day, sup)
        self._followups(day, sup)

    def _followups(self, day: int, sup: dict) -> None:
        """回访: the supervisor calls the cases on the worklist; the petitioner answers as the workload says."""
        r = self.api.request("GET", "/supervise/api/v1/followups/worklist", headers=sup)
        if r.status != 200:
            return
        by_case = {t.case_id: t for t in self.tracks if t.case_id}
        today = self.start + timedelta(days=day)
        for item in r.body or []:
            track = by_case.get(item.get("case_id"))
            if track is None:
                continue
            person = track.planned.petitioner
            body = {"at": self.at(day, 16).isoformat(), "method": "电话回访", "reached": person is not None}
            if person is not None:
                body["satisfied"] = "不满意" if track.dissatisfied else "满意"
                overdue = bool(track.commitment_due and not track.commitment_done and track.commitment_due < today)
                body["carried_out"] = not overdue
                body["remarks"] = "信访人表示问题仍未解决" if track.dissatisfied else "信访人对办理结果表示认可"
            resp = self.api.request("POST", f"/supervise/api/v1/cases/{track.case_id}/followups", json_body=body,
                                    headers=sup)
            self.summary.actions += 1
            if resp.status != 201:
                self.summary.action_failures += 1
                log.info("simulated follow-up of %s refused: %s %s", track.display_no, resp.status, resp.body)
                continue
            self.summary.followups += 1
            track.called_unsatisfied |= body.get("satisfied") == "不满意"
            track.called_not_carried_out |= body.get("carried_out") is False

    def finish(self) -> None:
        """Compute the scorecard of every month the period touched (the lagging check runs with it)."""
        months = sorted({(self.start + timedelta(days=d)).strftime("%Y-%m") for d in range(self.params.days + 1)})
        sup = self.supervisor()
        for month in months:
            r = self.api.request("POST", f"/supervise/api/v1/scorecards/{month}/compute", headers=sup)
            if r.status != 200:
                log.warning("scorecard %s not computed: %s %s", month, r.status, r.body)
                continue
            card = self.api.request("GET", f"/supervise/api/v1/scorecards/{month}", headers=sup)
            if card.status == 200:
                self.summary.colours[month] = card.body.get("summary", {})
                self.cards[month] = card.body.get("rows", [])
        self.system.settle(timeout=120)

    def linked_same_matter(self, track: CaseTrack) -> CaseTrack | None:
        """The earlier petition intake linked ``track`` to, when it is one of the same petitioner's petitions
        on the same matter (the planned original or a later repeat of it: intake links the latest)."""
        if not track.planned.repeat_of or not track.linked_to or track.planned.petitioner is None:
            return None
        linked = self.by_petition.get(track.linked_to)
        if linked is None or linked.planned.petitioner is None:
            return None
        same = (linked.planned.petitioner.id_number == track.planned.petitioner.id_number
                and linked.planned.matter == track.planned.matter)
        return linked if same else None

    def missed_repeats(self) -> tuple[int, int]:
        planned = [t for t in self.tracks if t.planned.repeat_of in self.by_key]
        linked = [t for t in planned if self.linked_same_matter(t) is not None]
        return len(linked), len(planned)

    def ranking(self) -> tuple[bool | None, str]:
        """Townships whose cases went mostly to slow or sloppy units should rank below those whose did not."""
        share: dict[str, list[int]] = {}
        for t in self.tracks:
            if t.plan is None or len(t.region_code) < 9:
                continue
            bad = share.setdefault(t.region_code[:9], [0, 0])
            bad[0] += t.plan.profile != "good"
            bad[1] += 1
        worse, better = [], []
        for rows in self.cards.values():
            for row in rows:
                if row.get("level") != "township" or not row.get("rank") or not row.get("peer_size"):
                    continue
                bad, total = share.get(str(row.get("region_code", ""))[:9], [0, 0])
                if not total:
                    continue
                position = row["rank"] / row["peer_size"]
                (worse if bad / total >= 0.5 else better if bad == 0 else []).append(position)
        if not worse or not better:
            return None, "ranking          n/a (no township in one of the groups)"
        w, b = sum(worse) / len(worse), sum(better) / len(better)
        ok = w > b
        return ok, (f"ranking          townships served mostly by slow/sloppy units: mean rank position {w:.2f} "
                    f"({len(worse)}), others {b:.2f} ({len(better)})  {'OK' if ok else 'MISMATCH'}")

    def _interviews(self, day: int, sup: dict) -> None:
        r = self.api.request("GET", "/supervise/api/v1/interviews", headers=sup)
        if r.status != 200:
            return
        now = self.at(day, 16)
        for interview in r.body or []:
            iid, status = interview["id"], interview["status"]
            if status == "draft":
                when = self.at(day + 3, 9).isoformat()
                self._interview_post(iid, "schedule", {
                    "scheduled_at": when, "place": "南阳市信访局三楼会议室", "convening_body": "南阳市信访工作联席会议办公室",
                    "chair": "市信访局局长 陈志远（演示）"}, sup)
            elif status == "scheduled" and interview.get("scheduled_at") and \
                    datetime.fromisoformat(interview["scheduled_at"]) <= now:
                people = interview.get("interviewees") or []
                self._interview_post(iid, "record", {
                    "problems": "信访事项办理不及时，群众反映问题未得到实质解决", "recorder": "市信访局督查科 李明（演示）",
                    "attendees": ["市信访局督查科"], "held_at": interview["scheduled_at"],
                    "statements": [{"interviewee_id": p["id"], "statement": "诚恳接受约谈，立即整改，限期办结"}
                                   for p in people if p.get("id") is not None]}, sup)
                owner = people[0] if people else {}
                self._interview_post(iid, "items", {
                    "content": "逐案复查超期件并限期办结", "owner_person_id": owner.get("person_id"),
                    "owner_name": owner.get("name", ""), "due_at": self.at(day + 10, 18).isoformat()}, sup)
                self.interview_steps[iid] = day
            elif status == "held":
                items = interview.get("items") or []
                if items and all(i.get("status") == "verified" for i in items):
                    self._interview_post(iid, "close", {}, sup)
                    continue
                for item in items:
                    if item.get("status") == "open" and day - self.interview_steps.get(iid, day) >= 5:
                        self._interview_post(iid, f"items/{item['id']}/done", {"note": "已完成整改"}, sup)
                    elif item.get("status") == "done":
                        self._interview_post(iid, f"items/{item['id']}/verify", {"note": "核验通过"}, sup)

    def _interview_post(self, interview_id: str, path: str, body: dict, headers: dict) -> bool:
        r = self.api.request("POST", f"/supervise/api/v1/interviews/{interview_id}/{path}", json_body=body,
                             headers=headers)
        self.summary.actions += 1
        if r.status not in (200, 201):
            self.summary.action_failures += 1
            log.info("simulated interview %s %s refused: %s %s", interview_id, path, r.status, r.body)
        return r.status in (200, 201)

    def extra_summary(self) -> list[str]:
        """Escalations by rung, interviews, notices by channel and the month's colours, from the public APIs."""
        lines = []
        on_time = 0
        for track in self.tracks:
            if track.closed_day is None:
                continue
            r = self.api.request("GET", f"/assign/api/v1/cases/{track.case_id}", headers=self.admin())
            stages = (r.body or {}).get("stages", []) if r.status == 200 else []
            on_time += r.status == 200 and not any(
                st["kind"] in WATCHED_STAGES and (st.get("outcome") or "").endswith(":late") for st in stages)
        self.summary.closed_on_time = on_time
        lines.append(f"办结 {self.summary.closed} 件，其中按期办结 {on_time} 件（各环节均未超期）")
        found = self.findings()
        self.summary.findings = dict(Counter(f.get("rule_label") or f["rule"] for f in found))
        lines.append("五必查督查件: " + ("，".join(f"{k} {v}" for k, v in sorted(self.summary.findings.items())) or "无"))
        rungs = dict(Counter(f.get("rung_label") or f.get("rung") or "—" for f in found))
        self.summary.escalations = rungs
        lines.append("督查件当前督办层级: " + ("，".join(f"{k} {v}" for k, v in sorted(rungs.items())) or "无"))
        r = self.api.request("GET", "/supervise/api/v1/interviews", headers=self.supervisor())
        interviews = r.body if r.status == 200 and isinstance(r.body, list) else []
        self.summary.interviews = len(interviews)
        states: dict[str, int] = {}
        for i in interviews:
            states[i["status"]] = states.get(i["status"], 0) + 1
        lines.append(f"约谈 {len(interviews)} 次: " + ("，".join(f"{k} {v}" for k, v in sorted(states.items())) or "无"))
        lines.append(f"回访 {self.summary.followups} 次")
        r = self.api.request("GET", "/notify/api/v1/deliveries/stats", headers=self.admin())
        if r.status == 200:
            stats = r.body
            self.summary.notices = {"inbox": stats["notices"], "acknowledged": stats["acknowledged"],
                                    **{ch: sum(v.values()) for ch, v in stats["by_channel"].items()}}
            channels = "，".join(f"{ch} {sum(v.values())}" for ch, v in sorted(stats["by_channel"].items()))
            lines.append(f"通知 {stats['notices']} 条（已签收 {stats['acknowledged']}）" + (f"，外发: {channels}" if channels
                                                                                    else "，未配置外发渠道"))
        names = {"blue": "蓝", "yellow": "黄", "red": "红"}
        for month, colours in sorted(self.summary.colours.items()):
            lines.append(f"{month} 三率三色: " + "，".join(f"{names.get(k, k)} {v}" for k, v in colours.items()))
        return lines

    # ------------------------------------------------------------ what should have been caught

    def expected(self) -> dict[str, set[str]]:
        """Display numbers each check must catch, from what the simulation did and the system's deadlines."""
        end = self.at(self.params.days, 9)
        out: dict[str, set[str]] = {"overdue": set(), "reflow": set(), "dissatisfied": set(),
                                    "not_carried_out": set()}
        for track in self.tracks:
            if track.case_id is None or track.mode == "divert":
                continue
            r = self.api.request("GET", f"/assign/api/v1/cases/{track.case_id}", headers=self.admin())
            for stage in (r.body or {}).get("stages", []) if r.status == 200 else []:
                if stage["kind"] not in WATCHED_STAGES or not stage.get("due_at") or stage.get("paused_at"):
                    continue
                due = datetime.fromisoformat(stage["due_at"])
                closed = datetime.fromisoformat(stage["closed_at"]) if stage.get("closed_at") else None
                if (closed is not None and closed > due) or (closed is None and due < end):
                    out["overdue"].add(track.display_no)
            if track.graded_unsatisfied or track.called_unsatisfied:
                out["dissatisfied"].add(track.display_no)
            if track.called_not_carried_out:
                out["not_carried_out"].add(track.display_no)
            if track.perfunctory:
                out["not_carried_out"].add(track.display_no)
            if (track.commitment_due and not track.commitment_done
                    and track.commitment_due < self.start + timedelta(days=self.params.days)):
                out["not_carried_out"].add(track.display_no)
            # Supervision can only see a return that intake's repeat detection linked to an earlier petition
            # of the same matter (the latest of them); repeats it missed are counted apart
            # (``missed_repeats``), they are intake's recall.
            earlier = self.linked_same_matter(track)
            if earlier is not None and earlier.reported_day is not None and earlier.reported_day < track.planned.day:
                out["reflow"].add(earlier.display_no)  # came back after the case was reported resolved or closed
        return out

    def reported(self) -> dict[str, set[str]]:
        """Display numbers of the cases each check caught, from supervise's findings API."""
        out: dict[str, set[str]] = {}
        for f in self.findings():
            if f.get("subject_kind") == "case":
                out.setdefault(f["rule"], set()).add(f.get("display_no") or "")
        return out

    def check(self) -> tuple[bool, list[str]]:
        """Compare expected and reported per rule; returns (ok, report lines)."""
        expected, reported = self.expected(), self.reported()
        ok, lines = True, []
        for rule, want in expected.items():
            got = reported.get(rule, set())
            missed, extra = sorted(want - got), sorted(got - want)
            good = not missed and not extra
            ok = ok and good
            lines.append(f"{rule:16s} expected {len(want):4d}  reported {len(got):4d}  "
                         f"{'OK' if good else 'MISMATCH'}"
                         + (f"  missed {missed[:5]}" if missed else "") + (f"  extra {extra[:5]}" if extra else ""))
        missed = self.missed_repeats()
        lines.append(f"repeats          intake linked {missed[0]} of {missed[1]} planned repeats to their earlier petition")
        rank_ok, line = self.ranking()
        lines.append(line)
        return ok, lines
