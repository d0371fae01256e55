"""登录 (staff login)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from assign_svc import users
from assign_svc.api.common import runtime
from shared.auth import issue_token

auth_blp = Blueprint("auth", __name__, url_prefix="/assign/api/v1/auth", description="登录 (staff login)")

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


@auth_blp.route("/login")
class Login(MethodView):
    @auth_blp.arguments(LoginSchema)
    @auth_blp.response(200, TokenSchema)
    @auth_blp.doc(security=[])
    def post(self, data):
        """Sign in with username and password; returns a bearer token."""
        rt = runtime()
        with rt.sessions() as session:
            principal = users.authenticate(session, **data)
        if principal is None:
            abort(401, message="wrong username or password")
        ttl = rt.settings.token_ttl_seconds
        return {"access_token": issue_token(rt.settings, principal), "token_type": "Bearer",
                "expires_in": ttl, "role": principal.role, "jurisdiction": principal.jurisdiction}
