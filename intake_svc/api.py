"""Thin views of the native petition API (/intake/api/v1)."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy.exc import IntegrityError

from intake_svc import service
from intake_svc.schemas import PetitionInSchema, PetitionOutSchema
from shared.auth import current_principal, require_jurisdiction, require_roles
from shared.web import runtime_of

blp = Blueprint("petitions", __name__, url_prefix="/intake/api/v1/petitions",
                description="信访件登记与查询 (petition registration and lookup)")


def _dump(reg: service.Registration) -> dict:
    """The petition's columns plus whether it already existed (dumped by the response schema)."""
    petition = reg.petition
    out = {column.key: getattr(petition, column.key) for column in petition.__table__.columns}
    out["existing"] = reg.existing
    return out


@blp.route("")
class Petitions(MethodView):
    @require_roles("registrar")
    @blp.arguments(PetitionInSchema)
    @blp.response(201, PetitionOutSchema)
    @blp.alt_response(200, schema=PetitionOutSchema, description="already registered: the existing petition")
    def post(self, data):
        """Register a petition (登记信访件)."""
        require_jurisdiction(data["region_code"])
        runtime = runtime_of(current_app)
        principal = current_principal()
        for attempt in (1, 2):
            try:
                with runtime.uow() as session:
                    reg = service.register_petition(session, runtime, data=data, registered_by=principal.username)
                    body = _dump(reg)
                return body, (200 if reg.existing else 201)
            except IntegrityError:
                # A concurrent resend of the same (system, county_no) won the race: return it.
                if attempt == 2 or not data.get("county_no"):
                    raise
        raise AssertionError("unreachable")


@blp.route("/<petition_id>")
class PetitionById(MethodView):
    @blp.response(200, PetitionOutSchema)
    def get(self, petition_id):
        """Read one petition by its immutable id."""
        runtime = runtime_of(current_app)
        with runtime.sessions() as session:
            petition = service.get_petition(session, petition_id)
            if petition is None:
                abort(404, message=f"petition {petition_id} not found")
            require_jurisdiction(petition.region_code)
            return _dump(service.Registration(petition, existing=False))
