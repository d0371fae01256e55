"""Thin views of the native petition API (/intake/api/v1/petitions)."""
from __future__ import annotations

import logging

from flask import current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from intake_svc import idempotency, service
from intake_svc.models import Petition, PetitionChange
from intake_svc.pii import PiiVault, audit_reveal
from intake_svc.schemas import (PETITION_EXAMPLE, ChangeSchema, CountyNoQuerySchema, PetitionInSchema,
                                PetitionOutSchema, PetitionQuerySchema, RevealQuerySchema)
from intake_svc.views import fast_dumper, petition_view
from shared.auth import current_principal, require_jurisdiction, require_roles
from shared.web import check_page, runtime_of

log = logging.getLogger(__name__)

blp = Blueprint("petitions", __name__, url_prefix="/intake/api/v1/petitions",
                description="信访件登记与查询 (petition registration and lookup)")

#: Schema instances are built once: construction is costly, loading and dumping are stateless.
PETITION_IN, PETITION_OUT = PetitionInSchema(), PetitionOutSchema()
#: ``PETITION_OUT.dump`` of a registration's view, without marshmallow's per-field machinery (same output).
DUMP_PETITION = fast_dumper(PETITION_OUT)

REGISTER_ROLES = ("registrar", "county_system")
READ_ROLES = ("registrar", "county_system", "supervisor", "leader", "handler")


def vault() -> PiiVault:
    return current_app.extensions["xinfang_pii"]


def _scope() -> str:
    return current_principal().user_id


def register(data: dict, *, assume_new: bool, key: str | None) -> tuple[dict, int]:
    """Register all or nothing: petition, petitioners, history, outbox, idempotency record.

    The transactional way (SQLite, and a second attempt): with an Idempotency-Key, the stored first
    response is looked up in the same transaction
    (no separate read session) and returned instead; 409 if it was for another body.

    ``assume_new`` on PostgreSQL: ``service.register_direct``, without a transaction block and without
    looking anything up first.  A resend (same county_no) or a used key makes its one writing statement
    fail on the unique constraint with nothing written: ``IntegrityError``, and the caller comes back
    without ``assume_new`` to the transactional way, which finds what was stored first."""
    runtime = runtime_of(current_app)
    request_hash = idempotency.fingerprint(request.data) if key else None
    answer: dict = {}

    def respond(reg: service.Registration) -> list:
        """The response, built before a new registration is written, and with a key its record (written
        with the registration's rows, in the same statement on PostgreSQL)."""
        answer["status"] = status = 200 if reg.existing else 201
        answer["body"] = body = DUMP_PETITION(petition_view(reg.petition, vault(), existing=reg.existing,
                                                                plain=reg.plain))
        if not key:
            return []
        return [(idempotency.TABLE, [idempotency.record_row(scope=_scope(), key=key, request_hash=request_hash,
                                                            status=status, body=body)])]

    if assume_new and runtime.engine.dialect.name == "postgresql":
        service.register_direct(runtime, data=data, principal=current_principal(), vault=vault(), with_rows=respond)
        return answer["body"], answer["status"]
    with runtime.uow() as session:
        if key:
            record = idempotency.find(session, scope=_scope(), key=key)
            if record is not None:
                if record.request_hash != request_hash:
                    abort(409, message="Idempotency-Key already used with a different request body "
                                       "(幂等键已用于不同的请求)")
                return record.body, record.status
        reg = service.register_petition(session, runtime, data=data, principal=current_principal(), vault=vault(),
                                        assume_new=assume_new, with_rows=respond)
        if not answer:  # an existing petition (nothing was written): the response, and with a key its record
            respond(reg)
            if key:
                idempotency.remember(session, scope=_scope(), key=key, request_hash=request_hash,
                                     status=answer["status"], body=answer["body"])
    return answer["body"], answer["status"]


@blp.route("")
class Petitions(MethodView):
    @require_roles(*REGISTER_ROLES)
    @blp.arguments(PETITION_IN, example=PETITION_EXAMPLE)
    @blp.response(201, PETITION_OUT)
    @blp.alt_response(200, schema=PetitionOutSchema,
                      description="already registered (same system and county_no, or a replayed Idempotency-Key)")
    @blp.alt_response(409, description="Idempotency-Key reused with a different body")
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string", "maxLength": 128},
                          "description": "retry safely: the same key and body return the first response"}])
    def post(self, data):
        """Register a petition (登记信访件). With an API key, ``system`` must be the key's own system."""
        require_jurisdiction(data["region_code"])
        principal = current_principal()
        if principal.role == "county_system" and data["system"] != principal.username:
            # (system, county_no) is a county system's own numbering: a key writes only its own
            abort(422, message="system does not match the API key",
                  errors={"json": {"system": [f"must be this API key's system {principal.username!r} "
                                              f"(本 API Key 绑定的登记系统)"]}})
        key = request.headers.get(idempotency.HEADER)
        if key is not None and not (0 < len(key) <= idempotency.MAX_KEY_LENGTH and key.isprintable()):
            abort(400, message=f"Idempotency-Key must be 1 to {idempotency.MAX_KEY_LENGTH} printable characters")
        for attempt in (1, 2):
            try:
                body, status = register(data, assume_new=attempt == 1, key=key)
                return jsonify(body), status
            except IntegrityError:
                # A resend or a concurrent duplicate (same key, or same system + county_no): the
                # second pass looks for what was stored first and returns it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @require_roles(*READ_ROLES)
    @blp.arguments(PetitionQuerySchema, location="query")
    @blp.response(200, PetitionOutSchema(many=True))
    @blp.paginate()
    def get(self, query, pagination_parameters):
        """Petitions in your jurisdiction, newest first, with filters (X-Pagination header)."""
        check_page(pagination_parameters)
        principal = current_principal()
        stmt = service.filtered(query, principal.jurisdiction)
        with runtime_of(current_app).read_sessions() as session:
            pagination_parameters.item_count = session.scalar(select(func.count()).select_from(stmt.subquery()))
            page = session.scalars(stmt.offset(pagination_parameters.first_item)
                                   .limit(pagination_parameters.page_size)).all()
            return [petition_view(p, vault()) for p in page]


def _show(petition: Petition | None, what: str, reveal: bool) -> dict:
    if petition is None:
        abort(404, message=f"petition {what} not found")
    require_jurisdiction(petition.region_code)
    principal = current_principal()
    if reveal:
        if not vault().may_reveal(principal):
            abort(403, message=f"role {principal.role} may not see unmasked personal data")
        with runtime_of(current_app).uow() as session:
            audit_reveal(session, principal=principal, petition=petition, via=request.path)
        log.info("personal data of petition %s revealed to %s", petition.id, principal.username)
    return petition_view(petition, vault(), reveal=reveal)


@blp.route("/<petition_id>")
class PetitionById(MethodView):
    @require_roles(*READ_ROLES)
    @blp.arguments(RevealQuerySchema, location="query")
    @blp.response(200, PetitionOutSchema)
    def get(self, query, petition_id):
        """One petition by its immutable id (``?reveal=pii`` for unmasked personal data, audited)."""
        with runtime_of(current_app).read_sessions() as session:
            return _show(session.get(Petition, petition_id), petition_id, "reveal" in query)


@blp.route("/by-display-no/<display_no>")
class PetitionByDisplayNo(MethodView):
    @require_roles(*READ_ROLES)
    @blp.arguments(RevealQuerySchema, location="query")
    @blp.response(200, PetitionOutSchema)
    def get(self, query, display_no):
        """One petition by its display number (信访件编号)."""
        with runtime_of(current_app).read_sessions() as session:
            petition = session.scalar(select(Petition).where(Petition.display_no == display_no))
            return _show(petition, display_no, "reveal" in query)


@blp.route("/by-county-no")
class PetitionByCountyNo(MethodView):
    @require_roles(*READ_ROLES)
    @blp.arguments(CountyNoQuerySchema, location="query")
    @blp.response(200, PetitionOutSchema)
    def get(self, query):
        """One petition by the registering system and its own number."""
        with runtime_of(current_app).read_sessions() as session:
            petition = service.find_by_county_no(session, query["system"], query["county_no"])
            return _show(petition, f"{query['system']}/{query['county_no']}", False)


@blp.route("/<petition_id>/history")
class PetitionHistory(MethodView):
    @require_roles(*READ_ROLES)
    @blp.response(200, ChangeSchema(many=True))
    def get(self, petition_id):
        """The change history of a petition (变更记录), oldest first."""
        with runtime_of(current_app).read_sessions() as session:
            petition = session.get(Petition, petition_id)
            if petition is None:
                abort(404, message=f"petition {petition_id} not found")
            require_jurisdiction(petition.region_code)
            return list(session.scalars(select(PetitionChange).where(PetitionChange.petition_id == petition_id)
                                        .order_by(PetitionChange.id)))
