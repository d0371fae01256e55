"""Thin admin views of supervise_svc: rebuild the case projection, the ladder policy (督办阶梯规则) versions."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from shared.auth import require_roles
from supervise_svc import ladder, service
from supervise_svc.api import _rt, actor_name, mapped_errors

admin_blp = Blueprint("supervise_admin", __name__, url_prefix="/supervise/api/v1/admin",
                      description="管理：重建视图、督办阶梯规则")
blueprints = [admin_blp]


class RebuildSchema(Schema):
    petitions = fields.Integer(metadata={"description": "petition.registered replayed"})
    assignments = fields.Integer(metadata={"description": "case.assigned replayed"})
    actions = fields.Integer(metadata={"description": "case.action_recorded replayed"})



class PolicySchema(Schema):
    version = fields.Integer(dump_only=True)
    policy = fields.Dict(required=True)
    note = fields.String(load_default="")
    created_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    created_by = fields.String(dump_only=True)


@admin_blp.route("/rebuild")
class Rebuild(MethodView):
    @require_roles("admin")
    @admin_blp.response(200, RebuildSchema)
    def post(self):
        """Truncate the case projection and replay the stored registrations, assignments and actions."""
        rt = _rt()
        with rt.uow() as session:
            counts = service.rebuild(session, rt)
        return {"petitions": counts["petition.registered"], "assignments": counts["case.assigned"],
                "actions": counts["case.action_recorded"]}


@admin_blp.route("/ladder-policy")
class LadderPolicyView(MethodView):
    @require_roles("supervisor")
    @admin_blp.response(200, PolicySchema)
    def get(self):
        """The ladder policy in force (version 0 = the shipped default)."""
        with _rt().read_sessions() as session:
            row = ladder.current_policy_row(session)
            if row is None:
                return {"version": 0, "policy": ladder.default_policy(), "created_by": "default", "created_at": None}
            return row

    @require_roles("admin")
    @admin_blp.arguments(PolicySchema)
    @admin_blp.response(200, PolicySchema)
    def put(self, data):
        """Store an edited ladder policy as a new version (422 naming each bad field)."""
        with mapped_errors():
            with _rt().uow() as session:
                return ladder.store_policy(session, data["policy"], by=actor_name(), note=data["note"])
