"""Thin views of supervise_svc: cases (案件视图) and findings (督查件); the shared error mapping.

Scoped by the caller's jurisdiction; supervisors (and admins) act, leaders read.  Interviews (约谈) are in
``api_interviews``, rebuild and the ladder policy in ``api_admin``, the scorecards in ``api_scores``.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shared.auth import current_principal, require_jurisdiction, require_roles
from shared.contracts import FINDING_RULES, FINDING_STATES, LADDER_RUNGS
from shared.regions import is_region_code, subtree_prefix
from shared.web import runtime_of
from supervise_svc import findings, interviews, ladder
from supervise_svc.domain.lifecycle import LADDER_ACTIONS, TRANSITIONS, IllegalTransition, allowed_actions
from supervise_svc.models import CaseView, Escalation, Finding, FindingEvent, FindingNotice, Interview

blp = Blueprint("cases", __name__, url_prefix="/supervise/api/v1/cases", description="案件视图 (supervised cases)")
findings_blp = Blueprint("findings", __name__, url_prefix="/supervise/api/v1/findings", description="督查件 (findings)")
blueprints = [blp, findings_blp]

UNIT_ACTIONS = ("start_rectifying", "submit_rectification")


def _rt():
    return runtime_of(current_app)


def actor_name() -> str:
    """The acting user's name as recorded in histories."""
    p = current_principal()
    return p.username or p.user_id


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """Use-case errors (raised after the transaction rolled back) as HTTP errors."""
    try:
        yield
    except findings.NotFound as exc:
        abort(404, message=str(exc))
    except IllegalTransition as exc:
        abort(409, message=str(exc), errors={"allowed_actions": exc.allowed})
    except interviews.InterviewConflict as exc:
        abort(409, message=str(exc), errors={"allowed_actions": exc.allowed})
    except findings.BadInput as exc:
        abort(422, message=str(exc), errors={"json": exc.errors})
    except IntegrityError as exc:
        abort(409, message=f"并发修改冲突，请刷新后重试（{type(exc).__name__}）")


# ---------------------------------------------------------------- schemas


def _attr(obj, key):
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


class CaseViewSchema(Schema):
    petition_id = fields.String()
    display_no = fields.String()
    region_code = fields.String()
    category = fields.String()
    registered_at = fields.AwareDateTime(allow_none=True)
    flags = fields.Dict()
    case_id = fields.String(allow_none=True)
    unit_id = fields.String(allow_none=True)
    unit_name = fields.String(allow_none=True)
    leader_id = fields.String(allow_none=True)
    assigned_at = fields.AwareDateTime(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    deadline_basis = fields.String(allow_none=True)
    status = fields.String()
    case_state = fields.String(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    resolution = fields.String(allow_none=True)
    evaluation_grade = fields.String(allow_none=True)
    cycle = fields.Integer()


class FindingSchema(Schema):
    id = fields.String(dump_only=True)
    finding_no = fields.String()
    rule = fields.String()
    rule_label = fields.Function(lambda f: FINDING_RULES.get(_attr(f, "rule"), ""))
    subject_kind = fields.String()
    subject_id = fields.String()
    cycle = fields.String()
    case_id = fields.String(allow_none=True)
    petition_id = fields.String(allow_none=True)
    display_no = fields.String(allow_none=True)
    unit_id = fields.String()
    unit_name = fields.String()
    region_code = fields.String()
    leader_id = fields.String(allow_none=True)
    evidence = fields.Dict()
    detected_at = fields.AwareDateTime()
    status = fields.String()
    rung = fields.String(allow_none=True)
    rung_label = fields.Function(lambda f: LADDER_RUNGS.get(_attr(f, "rung") or "", ""))
    rectify_due_at = fields.AwareDateTime(allow_none=True)
    next_review_at = fields.AwareDateTime(allow_none=True)
    held = fields.Boolean()
    hold_reason = fields.String()
    proof = fields.String()
    cycle_no = fields.Integer()


class FindingEventSchema(Schema):
    at = fields.AwareDateTime()
    actor = fields.String()
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    rung = fields.String(allow_none=True)
    reason = fields.String()
    data = fields.Dict()


class EscalationSchema(Schema):
    rung = fields.String()
    cycle_no = fields.Integer()
    decided_by = fields.String()
    at = fields.AwareDateTime()
    reason = fields.String()


class NoticeSchema(Schema):
    dedupe_key = fields.String()
    notice_type = fields.String()
    rung = fields.String(allow_none=True)
    recipient_kind = fields.String()
    recipient_id = fields.String()
    recipient_name = fields.String()
    unit_id = fields.String(allow_none=True)
    requested_at = fields.AwareDateTime(allow_none=True)
    acknowledged = fields.Function(lambda n: _attr(n, "acknowledged_at") is not None)
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    via = fields.String(allow_none=True)
    escalations = fields.Integer()
    last_escalation = fields.Dict(allow_none=True)


class FindingDetailSchema(FindingSchema):
    history = fields.List(fields.Nested(FindingEventSchema))
    escalations = fields.List(fields.Nested(EscalationSchema))
    notices = fields.List(fields.Nested(NoticeSchema))
    allowed_actions = fields.List(fields.String())
    interview_ids = fields.List(fields.String())


class FindingPageSchema(Schema):
    items = fields.List(fields.Nested(FindingSchema))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


class FindingQuerySchema(Schema):
    rule = fields.String(validate=validate.OneOf(list(FINDING_RULES)))
    status = fields.String(validate=validate.OneOf(FINDING_STATES))
    rung = fields.String(validate=validate.OneOf(list(LADDER_RUNGS)))
    unit_id = fields.String()
    region = fields.String(validate=lambda v: is_region_code(v) or v == "000000",
                           metadata={"description": "区划代码：本区划及下级"})
    detected_from = fields.AwareDateTime()
    detected_to = fields.AwareDateTime()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class UnansweredSchema(Schema):
    unit_id = fields.String()
    unanswered = fields.Integer()


class RebuildSchema(Schema):
    petitions = fields.Integer(metadata={"description": "petition.registered replayed"})
    assignments = fields.Integer(metadata={"description": "case.assigned replayed"})
    actions = fields.Integer(metadata={"description": "case.action_recorded replayed"})


class FindingActionSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=2000))
    proof = fields.String(load_default="", validate=validate.Length(max=10000))
    rung = fields.String(validate=validate.OneOf(list(LADDER_RUNGS)))


# ---------------------------------------------------------------- cases


@blp.route("")
class Cases(MethodView):
    @require_roles("supervisor", "leader")
    @blp.response(200, CaseViewSchema(many=True))
    def get(self):
        """Cases in the caller's jurisdiction, newest first (at most 200)."""
        prefix = subtree_prefix(current_principal().jurisdiction)
        with _rt().read_sessions() as session:
            stmt = (select(CaseView).where(CaseView.region_code.startswith(prefix))
                    .order_by(CaseView.registered_at.desc()).limit(200))
            return list(session.scalars(stmt))


@blp.route("/<petition_id>")
class CaseByPetition(MethodView):
    @require_roles("supervisor", "leader")
    @blp.response(200, CaseViewSchema)
    def get(self, petition_id):
        """One case, by petition id."""
        with _rt().read_sessions() as session:
            view = session.get(CaseView, petition_id)
            if view is None:
                abort(404, message=f"no case for petition {petition_id}")
            require_jurisdiction(view.region_code)
            return view


# ---------------------------------------------------------------- findings


def finding_detail(session, finding: Finding) -> dict:
    out = {c.key: getattr(finding, c.key) for c in Finding.__table__.columns}
    out["history"] = list(session.scalars(select(FindingEvent).where(FindingEvent.finding_id == finding.id)
                                          .order_by(FindingEvent.id)))
    out["escalations"] = list(session.scalars(select(Escalation).where(Escalation.finding_id == finding.id)
                                              .order_by(Escalation.id)))
    out["notices"] = list(session.scalars(select(FindingNotice).where(FindingNotice.finding_id == finding.id)
                                          .order_by(FindingNotice.requested_at, FindingNotice.dedupe_key)))
    out["allowed_actions"] = allowed_actions(finding.status)
    out["interview_ids"] = list(session.scalars(select(Interview.id).where(Interview.finding_id == finding.id)))
    return out


@findings_blp.route("")
class Findings(MethodView):
    @require_roles("supervisor", "leader")
    @findings_blp.arguments(FindingQuerySchema, location="query")
    @findings_blp.response(200, FindingPageSchema)
    def get(self, query):
        """督查件 in the caller's jurisdiction, newest first; filters: rule, status, rung, unit, region subtree,
        detection date range; paginated."""
        principal = current_principal()
        region = query.get("region")
        if region and not principal.may_see(region):
            require_jurisdiction(region)
        prefix = subtree_prefix(region) if region else subtree_prefix(principal.jurisdiction)
        stmt = select(Finding).where(Finding.region_code.startswith(prefix))
        for key in ("rule", "status", "rung", "unit_id"):
            if key in query:
                stmt = stmt.where(getattr(Finding, key) == query[key])
        if "detected_from" in query:
            stmt = stmt.where(Finding.detected_at >= query["detected_from"])
        if "detected_to" in query:
            stmt = stmt.where(Finding.detected_at < query["detected_to"])
        page, size = query["page"], query["page_size"]
        with _rt().read_sessions() as session:
            total = session.scalar(select(func.count()).select_from(stmt.subquery()))
            items = list(session.scalars(stmt.order_by(Finding.detected_at.desc(), Finding.finding_no.desc())
                                         .offset((page - 1) * size).limit(size)))
        return {"items": items, "total": total, "page": page, "page_size": size}


@findings_blp.route("/unanswered")
class Unanswered(MethodView):
    @require_roles("supervisor", "leader")
    @findings_blp.response(200, UnansweredSchema(many=True))
    def get(self):
        """Notices about findings not yet acknowledged (未签收), counted per recipient unit."""
        with _rt().read_sessions() as session:
            counts = ladder.unanswered_by_unit(session, region_prefix=subtree_prefix(current_principal().jurisdiction))
        return [{"unit_id": unit, "unanswered": n} for unit, n in sorted(counts.items())]


@findings_blp.route("/<finding_id>")
class FindingById(MethodView):
    @require_roles("supervisor", "leader")
    @findings_blp.response(200, FindingDetailSchema)
    def get(self, finding_id):
        """One finding with its evidence, history, escalations and the acknowledgement of each notice."""
        with _rt().read_sessions() as session, mapped_errors():
            finding = findings.get(session, finding_id)
            require_jurisdiction(finding.region_code)
            return finding_detail(session, finding)


@findings_blp.route("/<finding_id>/actions/<action>")
class FindingAction(MethodView):
    @findings_blp.arguments(FindingActionSchema)
    @findings_blp.response(200, FindingDetailSchema)
    @findings_blp.alt_response(409, description="not allowed in the current state (errors.allowed_actions)")
    def post(self, data, finding_id, action):
        """start_rectifying, submit_rectification (proof), verify, close, reopen (reason), climb (reason,
        optional rung), hold (reason), release.  Supervisors act; the unit's own staff may start and submit
        rectification."""
        principal = current_principal()
        if action not in TRANSITIONS and action not in LADDER_ACTIONS:
            abort(404, message=f"unknown action {action}")
        rt = _rt()
        with mapped_errors():
            with rt.uow() as session:
                finding = findings.get(session, finding_id)
                require_jurisdiction(finding.region_code)
                own_unit = principal.unit_id is not None and principal.unit_id == finding.unit_id
                if principal.role not in ("admin", "supervisor") and not (action in UNIT_ACTIONS and own_unit):
                    abort(403, message=f"角色 {principal.role} 不能对督查件执行 {action}")
                finding = findings.act(session, rt, finding_id=finding_id, action=action,
                                       actor=principal.username or principal.user_id, data=data)
                return finding_detail(session, finding)
