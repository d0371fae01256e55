"""Thin views of 约谈 (interviews): list, open, edit, schedule, record, close, rectification items, documents."""
from __future__ import annotations

import io

from flask import send_file
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from shared import clock
from shared.auth import current_principal, require_jurisdiction, require_roles
from shared.regions import subtree_prefix
from supervise_svc import documents, findings, interviews
from supervise_svc.api import _rt, actor_name, mapped_errors
from supervise_svc.models import Finding, Interview, RectificationItem

interviews_blp = Blueprint("interviews", __name__, url_prefix="/supervise/api/v1/interviews",
                           description="约谈 (interviews)")
blueprints = [interviews_blp]


class IntervieweeSchema(Schema):
    id = fields.Integer(dump_only=True)
    person_id = fields.String(allow_none=True)
    name = fields.String()
    post = fields.String(dump_only=True)
    title = fields.String()
    unit_id = fields.String(dump_only=True, allow_none=True)
    unit_name = fields.String(dump_only=True)
    statement = fields.String(dump_only=True)


class ItemSchema(Schema):
    id = fields.Integer(dump_only=True)
    content = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    owner_person_id = fields.String(allow_none=True)
    owner_name = fields.String(load_default="")
    due_at = fields.AwareDateTime(required=True)
    status = fields.String(dump_only=True)
    note = fields.String(dump_only=True)
    verified_by = fields.String(dump_only=True, allow_none=True)
    verified_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class InterviewSchema(Schema):
    id = fields.String(dump_only=True)
    interview_no = fields.String(dump_only=True)
    finding_id = fields.String(dump_only=True, allow_none=True)
    unit_id = fields.String(dump_only=True)
    unit_name = fields.String(dump_only=True)
    region_code = fields.String(dump_only=True)
    trigger = fields.Dict(dump_only=True)
    status = fields.String(dump_only=True)
    scheduled_at = fields.AwareDateTime(allow_none=True)
    place = fields.String(validate=validate.Length(max=128))
    convening_body = fields.String(validate=validate.Length(max=128))
    chair = fields.String(validate=validate.Length(max=64))
    recorder = fields.String(validate=validate.Length(max=64))
    attendees = fields.List(fields.String())
    problems = fields.String(dump_only=True)
    held_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    closed_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    interviewees = fields.List(fields.Nested(IntervieweeSchema))
    items = fields.List(fields.Nested(ItemSchema), dump_only=True)


class InterviewEditSchema(Schema):
    scheduled_at = fields.AwareDateTime(allow_none=True)
    place = fields.String(validate=validate.Length(max=128))
    convening_body = fields.String(validate=validate.Length(max=128))
    chair = fields.String(validate=validate.Length(max=64))
    recorder = fields.String(validate=validate.Length(max=64))
    attendees = fields.List(fields.String())
    interviewees = fields.List(fields.Nested(IntervieweeSchema), metadata={
        "description": "replaces the people called in: person_id from the directory, or name (+ title)"})


class InterviewCreateSchema(Schema):
    finding_id = fields.String(required=True)


class StatementSchema(Schema):
    interviewee_id = fields.Integer(required=True, strict=True)
    statement = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class RecordSchema(Schema):
    problems = fields.String(validate=validate.Length(max=10000))
    recorder = fields.String(validate=validate.Length(max=64))
    attendees = fields.List(fields.String())
    statements = fields.List(fields.Nested(StatementSchema), load_default=list)
    held_at = fields.AwareDateTime()


class ItemActionSchema(Schema):
    note = fields.String(load_default="", validate=validate.Length(max=5000))


def interview_detail(session, interview: Interview) -> dict:
    out = {c.key: getattr(interview, c.key) for c in Interview.__table__.columns}
    out["interviewees"] = interviews.people(session, interview.id)
    out["items"] = interviews.items(session, interview.id)
    return out


def _interview(session, interview_id: str) -> Interview:
    interview = interviews.get(session, interview_id)
    require_jurisdiction(interview.region_code)
    return interview


@interviews_blp.route("")
class Interviews(MethodView):
    @require_roles("supervisor", "leader")
    @interviews_blp.response(200, InterviewSchema(many=True))
    def get(self):
        """Interviews in the caller's jurisdiction, newest first (at most 200)."""
        prefix = subtree_prefix(current_principal().jurisdiction)
        with _rt().read_sessions() as session:
            rows = session.scalars(select(Interview).where(Interview.region_code.startswith(prefix))
                                   .order_by(Interview.created_at.desc()).limit(200))
            return [interview_detail(session, i) for i in rows]

    @require_roles("supervisor")
    @interviews_blp.arguments(InterviewCreateSchema)
    @interviews_blp.response(201, InterviewSchema)
    def post(self, data):
        """A supervisor opens an interview (draft) about a finding; the people to call in are resolved."""
        rt = _rt()
        with mapped_errors():
            with rt.uow() as session:
                finding = findings.get(session, data["finding_id"])
                require_jurisdiction(finding.region_code)
                interview = interviews.create(session, rt, finding=finding, at=clock.now(), by=actor_name())
                return interview_detail(session, interview)


@interviews_blp.route("/<interview_id>")
class InterviewById(MethodView):
    @require_roles("supervisor", "leader")
    @interviews_blp.response(200, InterviewSchema)
    def get(self, interview_id):
        with _rt().read_sessions() as session, mapped_errors():
            return interview_detail(session, _interview(session, interview_id))

    @require_roles("supervisor")
    @interviews_blp.arguments(InterviewEditSchema)
    @interviews_blp.response(200, InterviewSchema)
    def patch(self, data, interview_id):
        """Edit time, place, convening body, chair, recorder, attendees, people called in (draft/scheduled)."""
        with mapped_errors():
            with _rt().uow() as session:
                interview = interviews.edit(session, _interview(session, interview_id), data)
                return interview_detail(session, interview)


def _interview_step(interview_id: str, step):
    with mapped_errors():
        with _rt().uow() as session:
            interview = _interview(session, interview_id)
            step(session, interview)
            return interview_detail(session, interview)


@interviews_blp.route("/<interview_id>/schedule")
class Schedule(MethodView):
    @require_roles("supervisor")
    @interviews_blp.arguments(InterviewEditSchema)
    @interviews_blp.response(200, InterviewSchema)
    def post(self, data, interview_id):
        """Fix time and place; 约谈通知 (notice ``interview``) to each person called in."""
        return _interview_step(interview_id, lambda s, i: interviews.schedule(s, _rt(), i, data, by=actor_name()))


@interviews_blp.route("/<interview_id>/record")
class Record(MethodView):
    @require_roles("supervisor")
    @interviews_blp.arguments(RecordSchema)
    @interviews_blp.response(200, InterviewSchema)
    def post(self, data, interview_id):
        """The 约谈记录: problems, statements of commitment, attendees, recorder (the interview is held)."""
        return _interview_step(interview_id, lambda s, i: interviews.record(s, i, data, by=actor_name()))


@interviews_blp.route("/<interview_id>/close")
class Close(MethodView):
    @require_roles("supervisor")
    @interviews_blp.response(200, InterviewSchema)
    def post(self, interview_id):
        """Close a held interview whose rectification items are all verified."""
        return _interview_step(interview_id, lambda s, i: interviews.close(s, i))


@interviews_blp.route("/<interview_id>/items")
class Items(MethodView):
    @require_roles("supervisor")
    @interviews_blp.arguments(ItemSchema)
    @interviews_blp.response(201, InterviewSchema)
    def post(self, data, interview_id):
        """Add a rectification item (整改事项) with owner and deadline; the owner gets a 整改提醒."""
        return _interview_step(interview_id, lambda s, i: interviews.add_item(s, _rt(), i, data))


@interviews_blp.route("/<interview_id>/items/<int:item_id>/<any(done, verify):action>")
class ItemAction(MethodView):
    @require_roles("supervisor", "handler", "leader")
    @interviews_blp.arguments(ItemActionSchema)
    @interviews_blp.response(200, InterviewSchema)
    def post(self, data, interview_id, item_id, action):
        """done (with a note) or verify (supervisors only)."""
        if action == "verify" and current_principal().role not in ("admin", "supervisor"):
            abort(403, message="只有督查员可以核验整改事项")

        def step(session, interview):
            item = session.get(RectificationItem, item_id)
            if item is None or item.interview_id != interview.id:
                raise findings.NotFound(f"整改事项 {item_id} 不存在")
            interviews.item_action(session, item, action, by=actor_name(), note=data["note"])

        return _interview_step(interview_id, step)


@interviews_blp.route("/<interview_id>/<any(notice, record):doc>.docx")
class InterviewDocument(MethodView):
    @require_roles("supervisor", "leader")
    @interviews_blp.response(200, content_type=documents.DOCX)
    def get(self, interview_id, doc):
        """约谈通知书 (notice.docx) or 约谈记录 (record.docx), rendered now."""
        rt = _rt()
        tz = rt.settings.timezone
        with rt.read_sessions() as session, mapped_errors():
            interview = _interview(session, interview_id)
            people = interviews.people(session, interview.id)
            finding = session.get(Finding, interview.finding_id) if interview.finding_id else None
            if doc == "notice":
                data = documents.interview_notice(interview, people, finding, tz=tz, issued_at=clock.now())
                name = f"{interview.interview_no}-约谈通知书.docx"
            else:
                data = documents.interview_record(interview, people, interviews.items(session, interview.id), finding,
                                                  tz=tz)
                name = f"{interview.interview_no}-约谈记录.docx"
        return send_file(io.BytesIO(data), mimetype=documents.DOCX, as_attachment=True, download_name=name)
