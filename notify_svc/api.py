"""Thin views of notify_svc: the inbox and acknowledgement (签收)."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from notify_svc.models import Notice
from shared import clock
from shared.auth import Principal, current_principal
from shared.web import runtime_of

blp = Blueprint("inbox", __name__, url_prefix="/notify/api/v1", description="收件箱与签收 (inbox and acknowledgement)")


class NoticeSchema(Schema):
    id = fields.String()
    notice_type = fields.String()
    recipient_kind = fields.String()
    recipient_id = fields.String()
    recipient_name = fields.String()
    subject_id = fields.String()
    urgency = fields.String()
    title = fields.String()
    body = fields.String()
    created_at = fields.AwareDateTime()
    read_at = fields.AwareDateTime(allow_none=True)
    acknowledged_at = fields.AwareDateTime(allow_none=True)


class InboxQuerySchema(Schema):
    recipient_kind = fields.String(load_default="unit", validate=validate.OneOf(["unit", "person"]))
    recipient_id = fields.String(required=True, validate=validate.Length(1, 64))
    unacknowledged = fields.Boolean(load_default=False)


def _may_read(principal: Principal, notice_or_query) -> bool:
    """A unit's own staff read its inbox; supervisors and admins read inside their jurisdiction."""
    if principal.role in ("admin", "supervisor"):
        region = getattr(notice_or_query, "region_code", None)
        return region is None or principal.may_see(region)
    recipient = getattr(notice_or_query, "recipient_id", None) or notice_or_query.get("recipient_id")
    return recipient in (principal.unit_id, principal.user_id)


@blp.route("/inbox")
class Inbox(MethodView):
    @blp.arguments(InboxQuerySchema, location="query")
    @blp.response(200, NoticeSchema(many=True))
    def get(self, query):
        """A recipient's inbox, newest first (at most 200)."""
        principal = current_principal()
        if principal.role not in ("admin", "supervisor") and not _may_read(principal, query):
            abort(403, message="you may read only your own or your unit's inbox")
        runtime = runtime_of(current_app)
        with runtime.read_sessions() as session:
            stmt = (select(Notice).where(Notice.recipient_kind == query["recipient_kind"],
                                         Notice.recipient_id == query["recipient_id"])
                    .order_by(Notice.created_at.desc()).limit(200))
            if query["unacknowledged"]:
                stmt = stmt.where(Notice.acknowledged_at.is_(None))
            return [n for n in session.scalars(stmt) if _may_read(principal, n)]


@blp.route("/notices/<notice_id>/ack")
class Acknowledge(MethodView):
    @blp.response(200, NoticeSchema)
    def post(self, notice_id):
        """Acknowledge (签收) a notice; repeating it keeps the first time."""
        principal = current_principal()
        runtime = runtime_of(current_app)
        with runtime.uow() as session:
            notice = session.get(Notice, notice_id)
            if notice is None:
                abort(404, message=f"notice {notice_id} not found")
            if notice.recipient_id not in (principal.unit_id, principal.user_id) and principal.role != "admin":
                abort(403, message="only the recipient may acknowledge this notice")
            now = clock.now()
            notice.read_at = notice.read_at or now
            notice.acknowledged_at = notice.acknowledged_at or now
            return notice
