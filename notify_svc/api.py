"""Thin views of notify_svc: the inbox, acknowledgement (签收), the operators' delivery view."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from notify_svc import delivery as delivery_mod
from notify_svc import service
from notify_svc.models import Delivery, Notice
from shared.auth import Principal, current_principal, require_roles
from shared.web import check_page, runtime_of

blp = Blueprint("inbox", __name__, url_prefix="/notify/api/v1", description="收件箱与签收 (inbox and acknowledgement)")
ops_blp = Blueprint("deliveries", __name__, url_prefix="/notify/api/v1/deliveries",
                    description="投递运维 (failed and given-up deliveries; admin)")


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
    status = fields.String(metadata={"description": "ok | error"})
    error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    ack_due_at = fields.AwareDateTime(allow_none=True)
    read_at = fields.AwareDateTime(allow_none=True)
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    ack_via = fields.String(allow_none=True)


class InboxQuerySchema(Schema):
    recipient_kind = fields.String(load_default="unit", validate=validate.OneOf(["unit", "person"]))
    recipient_id = fields.String(required=True, validate=validate.Length(1, 64))
    unacknowledged = fields.Boolean(load_default=False)
    notice_type = fields.String(load_default=None, validate=validate.Length(1, 32))


class DeliverySchema(Schema):
    id = fields.String()
    notice_id = fields.String()
    channel = fields.String()
    address = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)


class DeliveryQuerySchema(Schema):
    status = fields.List(fields.String(validate=validate.OneOf(
        ["pending", "sending", "sent", "failed", "gave_up", "deferred"])), load_default=lambda: ["failed", "gave_up"])
    channel = fields.String(load_default=None, validate=validate.OneOf(["email", "sms", "webhook"]))


def _may_read(session, principal: Principal, notice: Notice) -> bool:
    """Its recipient (unit staff, the person); supervisors and admins inside their jurisdiction."""
    if service.may_act_for(session, principal, notice):
        return True
    return principal.role in ("admin", "supervisor") and (not notice.region_code
                                                          or principal.may_see(notice.region_code))


def _own_inbox(session, principal: Principal, query: dict) -> bool:
    if query["recipient_kind"] == "unit":
        return bool(principal.unit_id) and principal.unit_id == query["recipient_id"]
    return query["recipient_id"] in service.person_ids(session, principal)


@blp.route("/inbox")
class Inbox(MethodView):
    @blp.arguments(InboxQuerySchema, location="query")
    @blp.response(200, NoticeSchema(many=True))
    def get(self, query):
        """A recipient's inbox, newest first (at most 200)."""
        principal = current_principal()
        runtime = runtime_of(current_app)
        with runtime.read_sessions() as session:
            if principal.role not in ("admin", "supervisor") and not _own_inbox(session, principal, query):
                abort(403, message="只能查看本人或本单位的收件箱")
            stmt = (select(Notice).where(Notice.recipient_kind == query["recipient_kind"],
                                         Notice.recipient_id == query["recipient_id"])
                    .order_by(Notice.created_at.desc()).limit(200))
            if query["unacknowledged"]:
                stmt = stmt.where(Notice.acknowledged_at.is_(None))
            if query["notice_type"]:
                stmt = stmt.where(Notice.notice_type == query["notice_type"])
            return [n for n in session.scalars(stmt) if _may_read(session, principal, n)]


class NoticeListQuerySchema(Schema):
    unacknowledged = fields.Boolean(load_default=False, metadata={"description": "only notices not yet 签收"})
    overdue = fields.Boolean(load_default=False,
                             metadata={"description": "only unacknowledged notices past their 签收 deadline"})
    notice_type = fields.String(load_default=None, validate=validate.Length(1, 32))
    recipient_kind = fields.String(load_default=None, validate=validate.OneOf(["unit", "person"]))
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}(\d{6})?$"),
                           metadata={"description": "region subtree of the notices' subject"})


@blp.route("/notices")
class Notices(MethodView):
    @require_roles("supervisor")
    @blp.arguments(NoticeListQuerySchema, location="query")
    @blp.response(200, NoticeSchema(many=True))
    @blp.paginate()
    def get(self, query, pagination_parameters):
        """Notices in your jurisdiction, oldest first; ``unacknowledged`` gives the 未签收 list a supervisor
        chases, ``overdue`` those already past their deadline (X-Pagination header)."""
        check_page(pagination_parameters)
        stmt = service.notices_in(current_principal().jurisdiction, **query)
        with runtime_of(current_app).read_sessions() as session:
            pagination_parameters.item_count = session.scalar(select(func.count()).select_from(stmt.subquery()))
            return session.scalars(stmt.offset(pagination_parameters.first_item)
                                   .limit(pagination_parameters.page_size)).all()


@blp.route("/notices/<notice_id>")
class NoticeView(MethodView):
    @blp.response(200, NoticeSchema)
    def get(self, notice_id):
        """One notice (its recipient, or a supervisor/admin of its region)."""
        principal = current_principal()
        with runtime_of(current_app).read_sessions() as session:
            notice = session.get(Notice, notice_id)
            if notice is None:
                abort(404, message=f"通知 {notice_id} 不存在")
            if not _may_read(session, principal, notice):
                abort(403, message="无权查看他人的通知")
            return notice


@blp.route("/notices/<notice_id>/ack")
class Acknowledge(MethodView):
    @blp.response(200, NoticeSchema)
    def post(self, notice_id):
        """Acknowledge (签收) a notice; only its recipient may; repeating it keeps the first time."""
        principal = current_principal()
        runtime = runtime_of(current_app)
        with runtime.uow() as session:
            notice = session.get(Notice, notice_id)
            if notice is None:
                abort(404, message=f"通知 {notice_id} 不存在")
            if not service.may_act_for(session, principal, notice):
                abort(403, message="只能签收发给本人或本单位的通知")
            return service.acknowledge(session, runtime, notice, via="api")


@ops_blp.route("")
class Deliveries(MethodView):
    @require_roles("admin")
    @ops_blp.arguments(DeliveryQuerySchema, location="query")
    @ops_blp.response(200, DeliverySchema(many=True))
    def get(self, query):
        """Deliveries by status (default: failed and given up), newest first (at most 500)."""
        with runtime_of(current_app).read_sessions() as session:
            stmt = select(Delivery).where(Delivery.status.in_(query["status"]))
            if query["channel"]:
                stmt = stmt.where(Delivery.channel == query["channel"])
            return list(session.scalars(stmt.order_by(Delivery.created_at.desc()).limit(500)))


class DeliveryStatsSchema(Schema):
    notices = fields.Integer(metadata={"description": "notices in inboxes (every notice has one)"})
    acknowledged = fields.Integer()
    by_type = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_channel = fields.Dict(keys=fields.String(), values=fields.Dict(),
                             metadata={"description": "channel -> status -> deliveries"})


@ops_blp.route("/stats")
class DeliveryStats(MethodView):
    @require_roles("admin")
    @ops_blp.response(200, DeliveryStatsSchema)
    def get(self):
        """Operator overview: notices, acknowledgements, notices by type, deliveries by channel and status."""
        with runtime_of(current_app).read_sessions() as session:
            by_channel: dict[str, dict[str, int]] = {}
            for channel, status, count in session.execute(
                    select(Delivery.channel, Delivery.status, func.count()).group_by(Delivery.channel, Delivery.status)):
                by_channel.setdefault(channel, {})[status] = count
            by_type = dict(session.execute(select(Notice.notice_type, func.count()).group_by(Notice.notice_type)).all())
            return {"notices": session.scalar(select(func.count()).select_from(Notice)),
                    "acknowledged": session.scalar(select(func.count()).select_from(Notice)
                                                   .where(Notice.acknowledged_at.is_not(None))),
                    "by_type": by_type, "by_channel": by_channel}


@ops_blp.route("/<delivery_id>/retry")
class RetryDelivery(MethodView):
    @require_roles("admin")
    @ops_blp.response(200, DeliverySchema)
    def post(self, delivery_id):
        """Send a failed or given-up delivery again (attempts counted afresh)."""
        runtime = runtime_of(current_app)
        with runtime.uow() as session:
            row = session.get(Delivery, delivery_id)
            if row is None:
                abort(404, message=f"投递记录 {delivery_id} 不存在")
            if row.status not in ("failed", "gave_up", "deferred"):
                abort(409, message=f"投递状态为 {row.status}，不能重试")
            delivery_mod.retry(session, row)
            notice_id = row.notice_id
        actor = runtime.extras.get("deliver_actor")
        if actor is not None:
            actor.send(notice_id)
        return row
