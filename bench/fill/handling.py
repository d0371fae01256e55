"""The units' handling after 交办, replayed as the slow path drives it (办理过程回放).

``shared.simulator.driver.Simulation`` plays, at 15:00 of every simulated day and for every case in the
order the cases were registered, the steps of the case's ``UnitPlan`` that are due (``_advance`` /
``_step``): 签收, 受理 + 送达受理告知书, 申请延期 + 批准, the written result (处理意见书 / 答复意见 / 核查结论,
drawn from the case's own generator ``CaseTrack.rng``, seeded with the seed and the petition's key, which
drew the plan first; so are the grades) + 送达, 满意度评价 (two targets), 承诺落实, 结案报告, 逐级审签.  As no
draw depends on another case, the fill plays each shard's cases apart (``bench.fill.core``).  ``Handling`` does the same steps on the case held in memory and computes what the
system writes for each action with assign's and supervise's own functions:

* the state machine: ``assign_svc.domain.workflow.transition`` (an action the system would refuse ends
  the case's handling, as the slow path gives up on it);
* stages and deadlines: ``assign_svc.stages.open_stage`` (policy selection and the working-day calendar)
  and ``assign_svc.stages.extend`` / ``refresh``; a stage closed by an action gets ``closed_at`` and the
  outcome with ``:late`` when past due (``stages.close_stages`` without its query);
* the closure report's checklist: ``assign_svc.domain.dossier.checklist`` on the documents the actions
  filed; the resolution (化解 / 办结) as ``handling.closure._close_with`` decides it;
* the read model: ``supervise_svc.service._fold_particulars`` on the case view, its stage rows opened and
  closed at the action's instant, the deadline slots by ``deadline_columns`` (``deadline_rows`` copied to
  the scored stage rows);
* intake: ``case.status_changed`` applied as ``intake_svc.service.apply_case_status`` does (petition
  columns + one ``petition_changes`` row per status change); the detection candidate of the petition sees
  the new status, so a later return is linked as 回流 as it is on the slow path.

Not replayed (the slow path does them; the fill does not write their tables): documents (``case_documents``),
notices, the outbox, supervise's raw events / ``case_actions``, sweeps (``warned_at`` stays NULL; overdue
markers: ``core.mark_found_before``), findings and their rectification, 回访, interviews, scorecards.
``row_version`` is 1 + the number of actions (the ORM's own count depends on its flushes).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from shared.auth import Principal
from shared.simulator.workload import Planned, UnitPlan, draw_evaluations, draw_opinion, plan_for


@dataclass
class Track:
    """One case as the fill holds it until its handling ends (then its rows are written)."""

    item: Planned
    petition: dict
    candidate: SimpleNamespace | None  # intake's detection candidate for this petition (follows the status)
    case: SimpleNamespace
    stages: list  # SimpleNamespace per assign stage row, in opening order
    view: dict
    rows: list = field(default_factory=list)  # (service, table key, row) appended while handling
    plan: UnitPlan | None = None
    rng: random.Random | None = None  # the case's own generator (CaseTrack.rng): plan, answer, grades
    step: str = "sign"
    due_day: int = 0
    dissatisfied: bool = False
    commitment_due: date | None = None
    commitment_done: bool = False
    closed_day: int | None = None
    seq: int = 1
    documents: set = field(default_factory=set)
    done: bool = False
    facts: tuple | None = None  # (PetitionFacts, unit level) of the case, for the stages it opens


#: Values ``assign_svc.timeline._jsonable`` leaves as they are (with string keys, a dict of them is copied unchanged).
_PLAIN = frozenset({str, int, bool, float, type(None)})


class _Attrs:
    """A dict seen as an object (``obj.__dict__ = the dict``): supervise's folding sets attributes of the view."""


class Refused(Exception):
    """The system would refuse the action (409/422): the slow path's unit gives up on the case."""


class Handling:
    """Replays the handling of tracks day by day; ``fill`` is the BulkFill (snapshot, runtimes, tables)."""

    def __init__(self, fill, seed: int, start: date, profiles: dict[str, str], people: dict[str, tuple],
                 all_people: dict[str, tuple]) -> None:
        """``people``: the simulator's view of the directory's people (its listing request), ``all_people``
        every person (username, unit): who the system takes for the owning leader."""
        from assign_svc import stages as assign_stages
        from assign_svc.domain import dossier, workflow
        from assign_svc.handling.closure import TARGET_LABELS
        from assign_svc.handling.processing import RESULT_TITLES
        from assign_svc.timeline import RESOLVED, _jsonable
        from supervise_svc import service as supervise_service

        self.fill, self.seed, self.start = fill, seed, start
        self.profiles, self.people, self.all_people = profiles, people, all_people
        self.stages, self.dossier, self.workflow = assign_stages, dossier, workflow
        self.target_labels, self.result_titles, self.resolved_states = TARGET_LABELS, RESULT_TITLES, RESOLVED
        self.jsonable = _jsonable
        self.sv = supervise_service
        self.runtime = fill.runtimes["assign"]
        self.tz = self.runtime.settings.timezone
        self.zone = ZoneInfo(self.tz)
        self.depts = {u.region_code: u.id for u in fill.snap.units if u.kind == "petition_dept"}
        self.actions = 0
        from assign_svc.domain.deadlines import select_policy
        from assign_svc.stages import facts_of

        from bench.fill.core import _Collect

        self.facts_of, self.select_policy, self.collect = facts_of, select_policy, _Collect
        self.policy_memo: dict = {}
        self.stage_memo: dict = {}
        self.actors: dict[tuple[str, str], tuple] = {}  # (unit, role) -> the simulator's token for it
        self.event = SimpleNamespace()  # the case.action_recorded _project folds (one object, refilled per action)
        self.view_attrs = _Attrs()  # the view being folded, seen through attributes
        self.handlers = {name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_do_")}

    # ------------------------------------------------------------------ set-up of a new case

    def pick_up(self, track: Track, day: int) -> None:
        """``Simulation._pick_up_new_cases``: the plan of a routed (not diverted) case."""
        if track.case.mode == "divert":
            track.done = True
            return
        track.rng = random.Random(f"{self.seed}-{track.item.key}")
        track.plan = plan_for(track.rng, self.profiles.get(track.case.unit_id, "good"))
        track.dissatisfied = bool(track.item.petitioner and track.item.petitioner.dissatisfied)
        track.due_day = day + track.plan.sign
        if track.case.mode == "assign":
            track.documents.add("assignment_sheet")

    # ------------------------------------------------------------------ the day's steps

    def advance(self, track: Track, day: int, at: datetime) -> None:
        """``Simulation._advance``: every step of the case due by ``day``, in order, at ``at`` (15:00)."""
        if track.plan is None or track.done:
            return
        for _ in range(12):
            if track.step == "done" or track.due_day > day:
                break
            try:
                self._step(track, day, at)
            except Refused:
                track.step = "done"
                break
        if track.step == "done":
            track.done = True

    def _step(self, track: Track, day: int, at: datetime) -> None:
        plan, today = track.plan, self.start + timedelta(days=day)
        case, unit = track.case, self._unit(track, "handler")
        step = track.step
        if step == "sign":
            self._act(track, "sign", {}, unit, at)
            track.step, track.due_day = "accept", day + plan.accept
        elif step == "accept":
            self._act(track, "accept", {}, unit, at)
            self._act(track, "serve", {"method": "邮寄送达", "signed_on": today}, unit, at)
            track.step = "extend" if plan.extension else "opinion"
            track.due_day = day + (5 if plan.extension else plan.opinion)
        elif step == "extend":
            self._act(track, "request_extension", {"days": 20, "reason": "涉及多个部门，需要会商调查"}, unit, at)
            self._act(track, "approve_extension", {}, self._unit(track, "leader"), at)
            track.step, track.due_day = "opinion", day + max(1, plan.opinion - 5)
        elif step == "opinion":
            action, body = self._opinion(track, day)
            self._act(track, action, body, unit, at)
            self._act(track, "serve", {"method": "直接送达", "signed_on": today}, unit, at)
            track.step, track.due_day = "evaluate", day + 1
        elif step == "evaluate":
            if track.item.petitioner is not None and track.item.purpose != "检举控告":
                for body in draw_evaluations(track.rng, track.dissatisfied):
                    self._act(track, "evaluate", body, unit, at)
            track.step, track.due_day = "commitment" if track.commitment_due else "closure", day + 1
        elif step == "commitment":
            if not plan.commitment_undone:
                self._act(track, "fulfil_commitment", {"index": 0, "reason": "已按承诺落实到位"}, unit, at)
                track.commitment_done = True
            track.step, track.due_day = "closure", day + 1
        elif step == "closure":
            checklist = {"procedure_correct": not plan.closure_perfunctory, "every_request_answered": True,
                         "reasonableness_judged": True}
            claim = {"resolved": True, "resolution_reason": "信访人诉求已依法依规解决"} if not track.dissatisfied else {}
            self._act(track, "submit_closure", {"summary": "已按处理意见办理完毕", "checklist": checklist, **claim},
                      unit, at)
            track.step, track.due_day = ("done" if case.closure["perfunctory"] else "sign_off"), day + 1
        elif step == "sign_off":
            self._act(track, "sign_off", {"opinion": "同意结案"}, self._unit(track, "leader"), at)
            if case.leader_id:
                self._act(track, "sign_off", {"opinion": "同意"}, self._owner(track), at)
            self._act(track, "sign_off", {"opinion": "审核通过"}, self._dept(track), at)
            track.closed_day = day
            track.step = "done"

    def _opinion(self, track: Track, day: int) -> tuple[str, dict]:
        """``Simulation._opinion`` (the same draws from the same generator)."""
        action, body, due = draw_opinion(track.rng, track.item.purpose, self.start, day)
        if due is not None:
            track.commitment_due = due
        return action, body

    # ------------------------------------------------------------------ who acts (Simulation's tokens)

    def _unit(self, track: Track, role: str) -> tuple:
        key = (track.case.unit_id, role)
        actor = self.actors.get(key)
        if actor is None:
            name = f"sim-{role}-{key[0]}"
            actor = self.actors[key] = (name, name, role)
        return actor

    def _owner(self, track: Track) -> tuple:
        """``Simulation._owner_headers``: the owning leader, whose token's jurisdiction is their unit's county
        (a leader outside the case's county may not act on it: 403, the slow path gives up)."""
        username, unit_id = self.people.get(track.case.leader_id or "", (None, None))
        unit = unit_id or track.case.unit_id
        info = self.fill.snap.units_by_id.get(unit)
        jurisdiction = (info.region_code[:6] if info else "") or "000000"
        return (f"sim-leader-{unit}", username or f"sim-leader-{unit}", "leader", jurisdiction, unit)

    def _dept(self, track: Track) -> tuple:
        county = track.case.region_code[:6]
        dept = self.depts.get(county)
        return (f"sim-registrar-{dept or county}", f"sim-dept-{county}", "registrar")

    # ------------------------------------------------------------------ one action

    def _open(self, track: Track, kinds) -> list:
        return [s for s in track.stages if s.closed_at is None and (kinds is None or s.kind in kinds)]

    def _close(self, track: Track, kinds, at: datetime, outcome: str) -> None:
        for s in self._open(track, kinds):
            s.closed_at = at
            s.outcome = f"{outcome}:late" if s.due_at is not None and at > s.due_at else outcome

    def _open_stage(self, track: Track, kind: str, started_at: datetime, at: datetime) -> None:
        """``stages.open_stage`` for the case; memoised on what the stage depends on: the policy
        ``select_policy`` picks for the case's facts and unit level, and the start instant."""
        case = track.case
        if track.facts is None:  # what the policies select on: fixed while the case is handled (no reroute)
            unit = self.fill.snap.units_by_id.get(case.unit_id)
            track.facts = (self.facts_of(case), unit.level if unit else None)
        facts, level = track.facts
        pkey = (kind, facts, level)
        policy = self.policy_memo.get(pkey)
        if policy is None:
            policy = self.policy_memo[pkey] = self.select_policy(self.fill.snap.policies, kind, pkey[1], level=level).id
        skey = (kind, policy, level, started_at)
        template = self.stage_memo.get(skey)
        if template is None:
            stage = self.stages.open_stage(self.collect(), self.runtime, self.fill.snap, case, kind, started_at=started_at)
            template = {c: getattr(stage, c) for c in self.fill.stage_columns}
            template.update(id=None, warned_at=None, closed_at=None, outcome=None)
            if len(self.stage_memo) > 200_000:
                self.stage_memo.clear()
            self.stage_memo[skey] = template
        row = SimpleNamespace(**template)
        row.case_id, row.unit_id = case.id, case.unit_id
        row.opened_event_at = at  # when supervise first sees it (the action's instant)
        track.stages.append(row)

    def _headline(self, track: Track, stages: list) -> None:
        case = track.case
        wanted = "assigned" if case.mode == "assign" else "handling"
        for s in stages:
            if s.kind == wanted and s.due_at is not None:
                case.due_at, case.deadline_basis = s.due_at, s.basis[:128]

    def _act(self, track: Track, action: str, body: dict, actor: tuple, at: datetime) -> None:
        """``assign_svc.handling.core.act`` for the slow path's bodies, on the case in memory."""
        wf, case = self.workflow, track.case
        try:
            target = wf.transition(case.status, action, previous=case.previous_status,
                                   statutory_type=case.statutory_type)
        except wf.IllegalTransition:
            raise Refused(action) from None
        if len(actor) > 3 and not Principal(user_id=actor[0], username=actor[1], role=actor[2],
                                            jurisdiction=actor[3]).may_see(case.region_code):
            raise Refused(action)  # authorize(): outside the caller's jurisdiction (403)
        previous = case.status
        extra: dict = {}
        reason = self.handlers[action](track, body, at, extra)
        if action == "sign_off" and extra.pop("_closed", False):
            target = wf.CLOSED
        case.status, case.updated_at = target, at
        case.row_version += 1
        self.actions += 1
        track.seq += 1
        data = {**body, **extra}
        if not all(type(v) in _PLAIN for v in data.values()):  # most bodies are flat: _jsonable copies them as they are
            data = self.jsonable(data)
        label = wf.ACTIONS[action].label
        user_id, username, role = actor[:3]
        fill = self.fill
        track.rows.append(("assign", fill.tables.event, {
            "case_id": case.id, "seq": track.seq, "action": action, "label": label, "from_status": previous or None,
            "to_status": case.status, "actor_id": user_id, "actor_name": username, "actor_role": role, "at": at,
            "reason": reason or "", "data": data}))
        if previous != case.status:  # case.status_changed, as intake applies it
            petition = track.petition
            before = petition["case_status"]
            petition["case_status"], petition["case_updated_at"], petition["case_seq"] = case.status, at, track.seq
            petition["case_resolved"] = case.status in self.resolved_states or petition["case_resolved"]
            petition["case_final"] = (case.status in wf.FINAL or case.status == wf.TERMINATED) or petition["case_final"]
            if track.candidate is not None:
                track.candidate.case_status = petition["case_status"]
                track.candidate.case_resolved = petition["case_resolved"]
                track.candidate.case_final = petition["case_final"]
            track.rows.append(("intake", fill.tables.change, {
                "petition_id": petition["id"], "at": at, "actor": username, "action": "case_status",
                "changes": {"from": before, "to": case.status, "reason": reason or label}}))
        self._project(track, action, case.status, at, data)

    # ------------------------------------------------------------------ the handlers (what each one writes)

    def _do_sign(self, track, body, at, extra) -> str:
        return ""

    def _do_accept(self, track, body, at, extra) -> str:
        self._close(track, ("acceptance_notice", "objection"), at, "accepted")
        if track.case.in_clock:
            self._open_stage(track, "handling", at, at)
            if track.case.mode != "assign":
                stage = track.stages[-1]
                track.case.due_at, track.case.deadline_basis = stage.due_at, stage.basis[:128]
        track.documents.add("acceptance_notice")
        return ""

    def _do_serve(self, track, body, at, extra) -> str:
        case, wf = track.case, self.workflow
        opinion_phase = case.status != "已受理待送达"
        signed_on, method = body["signed_on"], body["method"]
        path = wf.path_of(case.statutory_type)
        title = self.result_titles[path] if opinion_phase else "信访事项受理告知书"
        record = {"document": title, "method": method, "signed_on": signed_on.isoformat(), "refused": False,
                  "witness": "", "served_by": self._unit(track, "handler")[1]}
        case.service = {**(case.service or {}), ("opinion" if opinion_phase else "acceptance"): record}
        track.documents.add("service_receipt")
        if opinion_phase:
            served_at = datetime.combine(signed_on, time(12), tzinfo=self.zone)
            if path == wf.FULL:
                self._open_stage(track, "review_request", served_at, at)
            if path != wf.ACCUSATION_PATH:
                self._open_stage(track, "evaluation", served_at, at)
        return f"{title}送达（{method}）"

    def _do_request_extension(self, track, body, at, extra) -> str:
        handling = self._open(track, ("handling",))
        if handling and handling[0].due_at is not None and at > handling[0].due_at:
            raise Refused("request_extension")
        track.case.extension = {"requested_days": body["days"], "reason": body["reason"],
                                "requested_at": at.isoformat(), "requested_by": self._unit(track, "handler")[1]}
        return body["reason"]

    def _do_approve_extension(self, track, body, at, extra) -> str:
        ext = dict(track.case.extension or {})
        days = int(ext.get("requested_days") or 0)
        extended = self._open(track, ("handling", "assigned"))
        for s in extended:
            self.stages.extend(self.runtime, s, days)
        self._headline(track, extended)
        ext.update({"approved_days": days, "approved_at": at.isoformat(), "approved_by": self._unit(track, "leader")[1]})
        track.case.extension = ext
        track.documents.add("extension_notice")
        extra["due_at"] = track.case.due_at
        return f"批准延期{days}日"

    def _issue(self, track, body, at, extra, doc_type: str, record: dict) -> None:
        commitments = [{"content": c["content"], "due_date": c["due_date"].isoformat(), "done": False}
                       for c in body.get("commitments") or []]
        self._close(track, ("handling", "assigned"), at, "opinion_issued")
        track.case.opinion = {**record, "facts": body["facts"], "basis": body["basis"],
                              "conclusion": str(body.get("conclusion") or ""), "commitments": commitments,
                              "issued_at": at.isoformat(), "issued_by": self._unit(track, "handler")[1],
                              "kind": doc_type}
        track.documents.add(doc_type)
        extra.update(record)

    def _do_issue_opinion(self, track, body, at, extra) -> str:
        self._issue(track, body, at, extra, "opinion", {"outcome": body["outcome"], "truth": body["truth"]})
        return f"处理意见：{body['outcome']}（反映问题{body['truth']}）"

    def _do_reply(self, track, body, at, extra) -> str:
        self._issue(track, body, at, extra, "reply", {"adoption": body["adoption"]})
        return f"答复意见：{body['adoption']}"

    def _do_issue_finding(self, track, body, at, extra) -> str:
        self._issue(track, body, at, extra, "finding", {"truth": body["truth"]})
        return f"核查结论：{body['truth']}"

    def _do_evaluate(self, track, body, at, extra) -> str:
        target, grade, reason = body["target"], body["grade"], str(body.get("reason") or "")
        evaluations = dict(track.case.evaluations or {})
        evaluations[target] = {"grade": grade, "reason": reason, "at": at.isoformat(),
                               "by": self._unit(track, "handler")[1]}
        track.case.evaluations = evaluations
        if all(t in evaluations for t in self.workflow.EVALUATION_TARGETS):
            self._close(track, ("evaluation",), at, "evaluated")
            track.documents.add("evaluation_form")
        return f"{self.target_labels[target]}{grade}{('：' + reason) if reason else ''}"

    def _do_fulfil_commitment(self, track, body, at, extra) -> str:
        opinion = dict(track.case.opinion or {})
        commitments = [dict(c) for c in opinion.get("commitments", [])]
        index = body["index"]
        if not 0 <= index < len(commitments):
            raise Refused("fulfil_commitment")
        commitments[index].update(done=True, done_at=at.isoformat(), note=body["reason"],
                                  by=self._unit(track, "handler")[1])
        opinion["commitments"] = commitments
        track.case.opinion = opinion
        return f"{commitments[index]['content']}：{body['reason']}"

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def _do_submit_closure(self, track, body, at, extra) -> str:
        dossier, case = self.dossier, track.case
        opinion = case.opinion or {}
        service = (case.service or {}).get("opinion")
        facts = dossier.ClosureFacts(
            documents=frozenset(track.documents), opinion=opinion,
            served_on=date.fromisoformat(service["signed_on"]) if service else None,
            handling_due_at=max((s.due_at for s in track.stages
                                 if s.kind in ("handling", "assigned") and s.due_at is not None), default=None),
            opinion_issued_at=datetime.fromisoformat(opinion["issued_at"]) if opinion.get("issued_at") else None,
            today=self._local_day(at), path=self.workflow.path_of(case.statutory_type))
        items = dossier.checklist(facts, dict(body.get("checklist") or {}))
        perfunctory = not all(i.passed for i in items)
        resolved, how = bool(body.get("resolved")), str(body.get("resolution_reason") or "").strip()
        signers = [{"level": 1, "role": "unit_head", "label": "责任单位主要负责人"}]
        if case.leader_id:
            signers.append({"level": 2, "role": "owning_leader", "label": "包案领导", "person_id": case.leader_id})
        signers.append({"level": len(signers) + 1, "role": "petition_dept", "label": "信访部门审核"})
        case.closure = {"summary": body["summary"], "checklist": [i.__dict__ for i in items], "perfunctory": perfunctory,
                        "submitted_at": at.isoformat(), "submitted_by": self._unit(track, "handler")[1],
                        "signers": signers, "signoffs": [], "resolved": resolved, "resolution_reason": how}
        track.documents.add("closure_report")
        extra.update({"perfunctory": perfunctory, "resolved": resolved, "failed": [i.key for i in items if not i.passed]})
        return ("结案报告已报送（申报" + ("已化解" if resolved else "已办结，未化解") + "）"
                + ("（审核清单未通过，敷衍上报）" if perfunctory else ""))

    def _do_sign_off(self, track, body, at, extra) -> str:
        case = track.case
        closure = dict(case.closure or {})
        if not closure or closure.get("perfunctory"):
            raise Refused("sign_off")
        done = list(closure.get("signoffs") or [])
        step = closure["signers"][len(done)]
        actor = {"unit_head": self._unit(track, "leader"), "owning_leader": self._owner(track),
                 "petition_dept": self._dept(track)}[step["role"]]
        if step["role"] == "owning_leader":  # handling.closure._is_owner on the directory's person
            username, unit_id = self.all_people.get(case.leader_id or "", (None, None))
            if not (username == actor[1] or unit_id == actor[4]):
                raise Refused("sign_off")  # 403: not the owning leader
        by = actor[1]
        done.append({"level": step["level"], "role": step["role"], "by": by, "at": at.isoformat(),
                     "opinion": str(body.get("opinion") or "同意")})
        closure["signoffs"] = done
        case.closure = closure
        if len(done) < len(closure["signers"]):
            return f"第{step['level']}级审签（{step['label']}）：{done[-1]['opinion']}"
        extra["_closed"] = True
        case.closed_at, case.reviewed_by = at, by
        blockers = [f"信访人评价不满意（{self.target_labels[t]}）" for t, e in (case.evaluations or {}).items()
                    if e.get("grade") == "不满意"]
        today = self._local_day(at)
        overdue = [c.get("content", "") for c in (case.opinion or {}).get("commitments", [])
                   if not c.get("done") and date.fromisoformat(str(c["due_date"])) < today]
        if overdue:
            blockers.append("承诺事项逾期未落实：" + "；".join(overdue))
        declared, how = bool(closure.get("resolved")), closure.get("resolution_reason", "")
        resolution = "resolved" if declared and not blockers else "replied"
        case.resolution = resolution
        extra["resolution"] = resolution
        if declared and blockers:
            extra["resolution_blocked"] = blockers
        if how and resolution == "resolved":
            extra["resolution_reason"] = how
        closure["resolution"] = resolution
        closure["resolution_blocked"] = extra.get("resolution_blocked", [])
        case.closure = dict(closure)
        return (f"第{step['level']}级审签（{step['label']}）：{done[-1]['opinion']}；"
                + ("确认化解" if resolution == "resolved" else "办结（未化解）"))

    # ------------------------------------------------------------------ supervise's read model

    def _project(self, track: Track, action: str, status: str, at: datetime, data: dict) -> None:
        """``project_case_action`` on the case view held in memory (its stage rows derive from the
        assign stages when written: ``stage_views``)."""
        sv, view, event, ns = self.sv, track.view, self.event, self.view_attrs
        event.action, event.at, event.unit_id, event.leader_id, event.status = \
            action, at, track.case.unit_id, track.case.leader_id, status
        ns.__dict__ = view  # the view dict itself, seen through attributes (no copy in, no copy back)
        sv._fold_particulars(None, ns, event, data, self.tz)
        if view["last_event_at"] is None or at >= view["last_event_at"]:
            view["case_state"] = status
            if status in sv.CLOSED_STATES:
                view["status"] = "closed"
                if view["closed_at"] is None:
                    view["closed_at"] = at
                    view["resolution"] = data.get("resolution") or view["resolution"] or "replied"
            for s in track.stages:
                if s.kind == "evaluation" and s.closed_at == at and view["evaluated_at"] is None \
                        and s.due_at is not None and at > s.due_at:
                    view["evaluation_expired"] = True
                if s.closed_at is None and s.kind in sv.HEADLINE_KINDS and s.paused_at is None and s.due_at is not None:
                    view["due_at"], view["deadline_basis"] = s.due_at, s.basis or view["deadline_basis"]
            view["last_event_at"], view["last_event_seq"] = at, track.seq

    def finish_view(self, track: Track) -> None:
        """The deadline slot columns of the view from its stages (``deadline_columns``)."""
        view = track.view
        view.update(self.sv.deadline_columns((s.kind, None if s.paused_at is not None else s.due_at, s.closed_at)
                                             for s in track.stages))

    def stage_views(self, track: Track) -> list[dict]:
        """supervise_case_stages of the case: one row per assign stage, opened and closed at the instants of
        the actions that opened and closed it."""
        sv, view, case = self.sv, track.view, track.case
        flagged = bool(view.get("deadline_rows"))
        out = []
        for s in track.stages:
            due = None if s.paused_at is not None else s.due_at
            out.append({"case_id": case.id, "petition_id": case.petition_id, "unit_id": case.unit_id,
                        "region_code": case.region_code, "kind": s.kind, "opened_at": s.opened_event_at,
                        "due_at": due, "warn_at": s.warn_at, "paused": s.paused_at is not None,
                        "basis": s.basis or "", "policy": f"{s.policy_code}@{s.policy_version}",
                        "closed_at": s.closed_at, "overdue_found_at": None,
                        "deadline_rows": flagged and s.kind in sv.SCORED_SLOTS})
        return out
