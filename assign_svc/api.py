"""Thin views of assign_svc: login, cases, the directory."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import select

from assign_svc import users
from assign_svc.models import Case, Unit
from shared.auth import current_principal, issue_token, require_jurisdiction
from shared.web import runtime_of

auth_blp = Blueprint("auth", __name__, url_prefix="/assign/api/v1/auth", description="登录 (staff login)")
cases_blp = Blueprint("cases", __name__, url_prefix="/assign/api/v1/cases", description="交办件 (cases)")
units_blp = Blueprint("units", __name__, url_prefix="/assign/api/v1/units", description="组织机构 (directory)")

LOGIN_PATH = "/assign/api/v1/auth/login"


class LoginSchema(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True, load_only=True)


class TokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    role = fields.String()
    jurisdiction = fields.String()


class CaseSchema(Schema):
    id = fields.String()
    petition_id = fields.String()
    display_no = fields.String()
    unit_id = fields.String()
    region_code = fields.String()
    category = fields.String()
    status = fields.String()
    assigned_at = fields.AwareDateTime()
    due_at = fields.AwareDateTime()
    deadline_basis = fields.String()


class CaseQuerySchema(Schema):
    petition_id = fields.String()


class UnitSchema(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    level = fields.String()
    region_code = fields.String()
    parent_id = fields.String(allow_none=True)
    categories = fields.List(fields.String())


@auth_blp.route("/login")
class Login(MethodView):
    @auth_blp.arguments(LoginSchema)
    @auth_blp.response(200, TokenSchema)
    @auth_blp.doc(security=[])
    def post(self, data):
        """Sign in with username and password; returns a bearer token."""
        runtime = runtime_of(current_app)
        with runtime.sessions() as session:
            principal = users.authenticate(session, **data)
        if principal is None:
            abort(401, message="wrong username or password")
        ttl = runtime.settings.token_ttl_seconds
        return {"access_token": issue_token(runtime.settings, principal), "token_type": "Bearer",
                "expires_in": ttl, "role": principal.role, "jurisdiction": principal.jurisdiction}


@cases_blp.route("")
class Cases(MethodView):
    @cases_blp.arguments(CaseQuerySchema, location="query")
    @cases_blp.response(200, CaseSchema(many=True))
    def get(self, query):
        """Cases in the caller's jurisdiction (optionally of one petition)."""
        principal = current_principal()
        runtime = runtime_of(current_app)
        stmt = select(Case).order_by(Case.assigned_at.desc()).limit(200)
        if "petition_id" in query:
            stmt = stmt.where(Case.petition_id == query["petition_id"])
        with runtime.sessions() as session:
            return [c for c in session.scalars(stmt) if principal.may_see(c.region_code)]


@cases_blp.route("/<case_id>")
class CaseById(MethodView):
    @cases_blp.response(200, CaseSchema)
    def get(self, case_id):
        """One case."""
        runtime = runtime_of(current_app)
        with runtime.sessions() as session:
            case = session.get(Case, case_id)
            if case is None:
                abort(404, message=f"case {case_id} not found")
            require_jurisdiction(case.region_code)
            return case


@units_blp.route("")
class Units(MethodView):
    @units_blp.response(200, UnitSchema(many=True))
    def get(self):
        """Units of the directory inside the caller's jurisdiction."""
        principal = current_principal()
        runtime = runtime_of(current_app)
        with runtime.sessions() as session:
            return [u for u in session.scalars(select(Unit).order_by(Unit.id)) if principal.may_see(u.region_code)]
