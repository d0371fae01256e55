"""交办件 (cases): lists, detail with stages, timeline, handling actions, documents, dossier, 日交办."""
from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from flask import send_file
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from assign_svc import batch, documents, timeline
from assign_svc.api.common import mapped_errors, runtime
from assign_svc.domain.dossier import DOCUMENT_TYPES, missing_documents
from assign_svc.domain.workflow import ACCUSATION_PATH, allowed_actions, path_of
from assign_svc.handling import act
from assign_svc.models import Case, CaseDocument, CaseStage, Person, Unit
from assign_svc.schemas import (ActionSchema, BatchQuerySchema, CaseDetailSchema, CaseQuerySchema, CaseSchema,
                                DossierSchema, DocumentSchema, EventSchema)
from shared import clock
from shared.auth import current_principal, require_jurisdiction
from shared.outbox import emitting_together

cases_blp = Blueprint("cases", __name__, url_prefix="/assign/api/v1/cases", description="交办件 (cases)")


def _case(session, case_id: str) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        abort(404, message=f"case {case_id} not found")
    require_jurisdiction(case.region_code)
    return case


def detail(session, case: Case) -> dict:
    out = {c.key: getattr(case, c.key) for c in Case.__table__.columns}
    out["stages"] = list(session.scalars(select(CaseStage).where(CaseStage.case_id == case.id)
                                         .order_by(CaseStage.started_at, CaseStage.kind)))
    out["allowed_actions"] = allowed_actions(case.status, case.statutory_type)
    out["evaluation_state"] = evaluation_state(case, out["stages"])
    return out


def evaluation_state(case: Case, case_stages: list[CaseStage]) -> str:
    """待评价 / 已评价 / 超期未评价 (window expired; silence is never counted as satisfied) / 未评价, or
    不适用 for an accusation (检举控告类: its finding is not graded, see ``workflow``)."""
    if path_of(case.statutory_type) == ACCUSATION_PATH:
        return "不适用"
    if all(t in (case.evaluations or {}) for t in ("petition_dept", "handling_unit")):
        return "已评价"
    window = next((s for s in case_stages if s.kind == "evaluation" and s.closed_at is None), None)
    if window is None:
        return "未评价"
    return "超期未评价" if window.due_at is not None and clock.now() > window.due_at else "待评价"


@cases_blp.route("")
class Cases(MethodView):
    @cases_blp.arguments(CaseQuerySchema, location="query")
    @cases_blp.response(200, CaseSchema(many=True))
    def get(self, query):
        """Cases in the caller's jurisdiction, newest first (at most 200)."""
        principal = current_principal()
        stmt = select(Case).order_by(Case.assigned_at.desc()).limit(200)
        for key in ("petition_id", "unit_id", "status"):
            if key in query:
                stmt = stmt.where(getattr(Case, key) == query[key])
        with runtime().sessions() as session:
            return [c for c in session.scalars(stmt) if principal.may_see(c.region_code)]


@cases_blp.route("/<case_id>")
class CaseById(MethodView):
    @cases_blp.response(200, CaseDetailSchema)
    def get(self, case_id):
        """One case with its stages (due_at / warn_at) and the actions allowed now."""
        with runtime().sessions() as session:
            return detail(session, _case(session, case_id))


@cases_blp.route("/<case_id>/timeline")
class Timeline(MethodView):
    @cases_blp.response(200, EventSchema(many=True))
    def get(self, case_id):
        """The case's timeline (办理过程), oldest first, each with a readable line in Beijing time."""
        rt = runtime()
        tz = ZoneInfo(rt.settings.timezone)
        with rt.sessions() as session:
            _case(session, case_id)
            out = []
            for e in timeline.events(session, case_id):
                when = e.at.astimezone(tz).strftime("%Y年%m月%d日 %H:%M")
                text = f"{when} {e.actor_name}：{e.label}" + (f"（{e.reason}）" if e.reason else "") + \
                    (f"，{e.from_status} → {e.to_status}" if e.from_status and e.from_status != e.to_status else "")
                out.append({**{k: getattr(e, k) for k in ("seq", "action", "label", "from_status", "to_status",
                                                         "actor_name", "actor_role", "at", "reason", "data")},
                            "text": text})
            return out


@cases_blp.route("/<case_id>/actions/<action>")
class CaseAction(MethodView):
    @cases_blp.arguments(ActionSchema)
    @cases_blp.response(200, CaseDetailSchema)
    @cases_blp.alt_response(409, description="not allowed in the current state (errors.allowed_actions) or changed concurrently")
    def post(self, data, case_id, action):
        """Apply a handling action (sign, object, reroute, assign_leader, accept, reject, refuse_repeat,
        request_extension, approve_extension, refuse_extension, pause, resume, issue_opinion (申诉求决类),
        reply (建议意见类), issue_finding (检举控告类), serve,
        evaluate, submit_closure, sign_off, fulfil_commitment, record_cessation, archive, request_review, decide_review,
        request_recheck, decide_recheck, terminate)."""
        principal = current_principal()
        rt = runtime()
        expected = data.pop("expected_version", None)
        with mapped_errors():
            with rt.uow() as session:
                with emitting_together(session, rt.outbox_model, producer=rt.name):  # one outbox INSERT
                    case = act(session, rt, case_id=case_id, action=action, principal=principal, data=data,
                               expected_version=expected)
                return detail(session, case)


@cases_blp.route("/<case_id>/documents")
class Documents(MethodView):
    @cases_blp.response(200, DossierSchema)
    def get(self, case_id):
        """The dossier (卷宗): documents held and what a closure still lacks."""
        with runtime().sessions() as session:
            _case(session, case_id)
            case = _case(session, case_id)
            docs = documents.listing(session, case_id)
            missing = missing_documents({d.doc_type for d in docs}, path=path_of(case.statutory_type))
            return {"documents": docs, "missing": missing, "missing_titles": [DOCUMENT_TYPES[m] for m in missing]}


@cases_blp.route("/<case_id>/assignment-sheet")
class AssignmentSheet(MethodView):
    @cases_blp.response(200, content_type=documents.DOCX)
    def get(self, case_id):
        """The 交办单 of the case: the one filed in the dossier at the latest 交办 (the same bytes at every
        download), or — for a 转送 / 分流 case, which files none — rendered as the case stands."""
        rt = runtime()
        with rt.uow() as session:
            case = _case(session, case_id)
            filed = session.scalars(select(CaseDocument).where(CaseDocument.case_id == case.id,
                                                               CaseDocument.doc_type == "assignment_sheet")
                                    .order_by(CaseDocument.created_at.desc())).first()
            if filed is not None:
                data = documents.content_of(session, filed)
            else:
                unit = session.get(Unit, case.unit_id)
                leader = session.get(Person, case.leader_id) if case.leader_id else None
                fields = documents.case_fields(case, tz=rt.settings.timezone, unit_name=unit.name if unit else "",
                                               leader_name=leader.name if leader else "")
                data = documents.render_docx("assignment_sheet", fields, issuer="信访工作机构",
                                             issued_on=case.assigned_at.astimezone(ZoneInfo(rt.settings.timezone)).date())
        return send_file(io.BytesIO(data), mimetype=documents.DOCX, as_attachment=True,
                         download_name=f"{case.display_no}-信访事项交办单.docx")


@cases_blp.route("/<case_id>/documents/<doc_id>")
class DocumentFile(MethodView):
    @cases_blp.response(200, DocumentSchema, content_type="application/octet-stream")
    def get(self, case_id, doc_id):
        """Download one document (.docx); one filed for lazy rendering is rendered once, then kept."""
        with runtime().uow() as session:
            _case(session, case_id)
            doc = session.get(CaseDocument, doc_id)
            if doc is None or doc.case_id != case_id:
                abort(404, message=f"document {doc_id} not found")
            data, media_type, name = documents.content_of(session, doc), doc.media_type, doc.filename
        return send_file(io.BytesIO(data), mimetype=media_type, as_attachment=True, download_name=name)


batches_blp = Blueprint("batches", __name__, url_prefix="/assign/api/v1/batches", description="日交办 (daily batches)")


@batches_blp.route("/daily")
class DailyBatch(MethodView):
    @batches_blp.arguments(BatchQuerySchema, location="query")
    @batches_blp.response(200, content_type=batch.XLSX)
    def get(self, query):
        """日交办: the xlsx sheet of every case handed to a unit on one day (the unit's staff or its supervisors)."""
        principal = current_principal()
        rt = runtime()
        with rt.sessions() as session:
            unit = session.get(Unit, query["unit_id"])
            if unit is None:
                abort(404, message=f"unit {query['unit_id']} not found")
            if principal.role not in ("admin",) and principal.unit_id != unit.id and not (
                    principal.role in ("registrar", "supervisor", "leader") and principal.may_see(unit.region_code)):
                abort(403, message="only the unit itself or its petition department may download its batch")
            data, _count = batch.daily_batch_xlsx(session, unit_id=unit.id, day=query["date"], tz=rt.settings.timezone)
        name = f"{unit.id}-{query['date'].isoformat()}-日交办.xlsx"
        return send_file(io.BytesIO(data), mimetype=batch.XLSX, as_attachment=True, download_name=name)


__all__ = ["batches_blp", "cases_blp"]
