"""Thin views of supervise_svc: the case read model."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import select

from shared.auth import current_principal, require_jurisdiction, require_roles
from shared.regions import subtree_prefix
from shared.web import runtime_of
from supervise_svc.models import CaseView

blp = Blueprint("cases", __name__, url_prefix="/supervise/api/v1/cases", description="案件视图 (supervised cases)")


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
    assigned_at = fields.AwareDateTime(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    deadline_basis = fields.String(allow_none=True)
    status = fields.String()


@blp.route("")
class Cases(MethodView):
    @require_roles("supervisor", "leader")
    @blp.response(200, CaseViewSchema(many=True))
    def get(self):
        """Cases in the caller's jurisdiction, newest first (at most 200)."""
        prefix = subtree_prefix(current_principal().jurisdiction)
        runtime = runtime_of(current_app)
        with runtime.read_sessions() as session:
            stmt = (select(CaseView).where(CaseView.region_code.startswith(prefix))
                    .order_by(CaseView.registered_at.desc()).limit(200))
            return list(session.scalars(stmt))


@blp.route("/<petition_id>")
class CaseByPetition(MethodView):
    @require_roles("supervisor", "leader")
    @blp.response(200, CaseViewSchema)
    def get(self, petition_id):
        """One case, by petition id."""
        runtime = runtime_of(current_app)
        with runtime.read_sessions() as session:
            view = session.get(CaseView, petition_id)
            if view is None:
                abort(404, message=f"no case for petition {petition_id}")
            require_jurisdiction(view.region_code)
            return view
