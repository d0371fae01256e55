"""The Open311 GeoReport v2 views under /intake/open311/v2 (see the package docstring for the mapping)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from intake_svc import service
from intake_svc.api import READ_ROLES, REGISTER_ROLES, vault
from intake_svc.models import Petition
from intake_svc.open311 import mapping
from intake_svc.open311.render import fail, field_errors, respond
from intake_svc.schemas import PetitionInSchema, regions
from shared import clock
from shared.auth import current_principal, require_roles
from shared.regions import in_jurisdiction, subtree_prefix
from shared.web import runtime_of

PREFIX = "/intake/open311/v2"
FMT = "<any(json, xml):fmt>"

#: How Open311 operations answer, for the OpenAPI document: JSON or XML by the path's extension,
#: errors as Open311's list of {code, description}.
_XML = {"text/xml": {"schema": {"type": "string"}}}
_ERRORS = {"type": "array", "items": {"type": "object", "required": ["code", "description"],
                                       "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}}}
_OK = {"description": "the result (JSON, or XML when the path ends in .xml)",
       "content": {"application/json": {"schema": {}}, **_XML}}
DOC = {"responses": {
    "200": _OK, "201": _OK,
    "default": {"description": "Open311 error list", "content": {"application/json": {"schema": _ERRORS}, **_XML}},
}}
#: GET requests: the default window and the widest allowed, and the most results returned.
WINDOW = timedelta(days=90)
MAX_RESULTS = 1000

blp = Blueprint("open311", __name__, url_prefix=PREFIX,
                description="Open311 GeoReport v2 facade (Open311 接口): services = content categories, "
                            "requests = petitions; .json or .xml; errors as [{code, description}]")


def open_paths() -> tuple[str | re.Pattern, ...]:
    """Discovery, the service list and every service definition: public in Open311, no api_key.

    Definitions are opened by pattern, so an unknown code gets 404 (not 401)."""
    exact = tuple(f"{PREFIX}/{name}.{fmt}" for name in ("discovery", "services") for fmt in ("json", "xml"))
    return exact + (re.compile(rf"{re.escape(PREFIX)}/services/[^/]+\.(json|xml)"),)


def _tz() -> str:
    return runtime_of(current_app).settings.timezone


def _jurisdiction(values, *, check_key: bool) -> str:
    """``jurisdiction_id``: required, a known region code, and (``check_key``) inside the caller's jurisdiction."""
    jid = (values.get("jurisdiction_id") or "").strip()
    if not jid:
        raise fail(400, "jurisdiction_id: required (a region code, 行政区划代码)")
    if not regions().is_valid(jid):
        raise fail(400, f"jurisdiction_id: {jid} not found (行政区划代码不存在)")
    if check_key:
        principal = current_principal()
        if not principal.may_see(jid):
            raise fail(403, f"jurisdiction_id {jid} is outside this api_key's jurisdiction {principal.jurisdiction}")
    return jid


@blp.route(f"/discovery.{FMT}")
@blp.doc(security=[])
@blp.doc(**DOC)
def discovery(fmt):
    """Service discovery: the endpoint, its specification and formats."""
    url = request.host_url.rstrip("/") + PREFIX
    contact = "信访工作机构 (petition bureau) operators; county systems get an api_key from them"
    body = {"changeset": mapping.CHANGESET, "contact": contact, "key_service": contact,
            "endpoints": [{"specification": mapping.SPECIFICATION, "url": url, "changeset": mapping.CHANGESET,
                           "type": "production", "formats": ["text/xml", "application/json"]}]}
    return respond(body, fmt, root="discovery")


@blp.route(f"/services.{FMT}")
@blp.doc(security=[])
@blp.doc(**DOC)
def service_list(fmt):
    """Services: every content category (内容分类), first and second level (jurisdiction_id required)."""
    _jurisdiction(request.args, check_key=False)
    return respond(mapping.services(), fmt, root="services")


@blp.route(f"/services/<service_code>.{FMT}")
@blp.doc(security=[])
@blp.doc(**DOC)
def service_definition(service_code, fmt):
    """A service definition: the attributes a petition of this category takes."""
    _jurisdiction(request.args, check_key=False)
    found = mapping.definition(service_code)
    if found is None:
        raise fail(404, f"service_code {service_code} not found")
    return respond(found, fmt, root="service_definition")


@blp.route(f"/requests.{FMT}", methods=["GET", "POST"])
@blp.doc(**DOC)
def requests_(fmt):
    """POST: file a petition (form-encoded, api_key). GET: service requests in jurisdiction_id (api_key)."""
    return _post(fmt) if request.method == "POST" else _list(fmt)


@require_roles(*REGISTER_ROLES)
def _post(fmt):
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise fail(400, "send the request form-encoded (application/x-www-form-urlencoded)")
    form = request.form
    jid = _jurisdiction(form, check_key=True)
    data, errors = mapping.petition_data(form, system=current_principal().username, jurisdiction_id=jid)
    loaded = None
    try:
        loaded = PetitionInSchema().load(data)
    except ValidationError as exc:
        for field, reasons in mapping.schema_errors(exc.messages).items():
            errors.setdefault(field, reasons)
    if errors or loaded is None:
        raise field_errors(errors)
    if not in_jurisdiction(loaded["region_code"], jid):
        raise fail(403, f"attribute[region_code] {loaded['region_code']} is outside jurisdiction_id {jid}")
    registration, notice = _register(loaded)
    body = [{"service_request_id": registration.petition.display_no, "token": registration.petition.id,
             "service_notice": notice, "account_id": None}]
    return respond(body, fmt, root="service_requests", status=200 if registration.existing else 201)


def _register(data: dict):
    runtime = runtime_of(current_app)
    for attempt in (1, 2):
        try:
            with runtime.uow() as session:
                reg = service.register_petition(session, runtime, data=data, principal=current_principal(),
                                                vault=vault())
                notice = (f"已登记过 (already registered): 信访件编号 {reg.petition.display_no}" if reg.existing
                          else f"已登记 (registered): 信访件编号 {reg.petition.display_no}")
            return reg, notice
        except IntegrityError:
            # A concurrent resend with the same county_no committed first: the second pass finds it.
            if attempt == 2 or not data.get("county_no"):
                raise
    raise AssertionError("unreachable")


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _w3(args, name: str, errors: dict[str, list[str]]) -> datetime | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    raw = re.sub(r" (\d\d:?\d\d)$", r"+\1", raw)  # an unencoded "+" in the offset arrives as a space
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        errors.setdefault(name, []).append("must be a w3 datetime with a timezone, e.g. 2026-11-20T00:00:00+08:00")
        return None
    return value


def _window(args, errors: dict[str, list[str]]) -> tuple[datetime, datetime]:
    start, end = _w3(args, "start_date", errors), _w3(args, "end_date", errors)
    if start is None and end is None:
        end = clock.now()
    if start is None:
        start = end - WINDOW
    elif end is None:
        end = start + WINDOW
    if end < start:
        errors.setdefault("end_date", []).append("must not be before start_date")
    elif end - start > WINDOW:
        errors.setdefault("end_date", []).append("the range may not span more than 90 days")
    return start, end


@require_roles(*READ_ROLES)
def _list(fmt):
    jid = _jurisdiction(request.args, check_key=True)
    stmt = select(Petition).where(Petition.region_code.startswith(subtree_prefix(jid)))
    errors: dict[str, list[str]] = {}
    ids = _csv(request.args.get("service_request_id"))
    if ids:  # overrides every other filter (spec)
        stmt = stmt.where(Petition.display_no.in_(ids[:MAX_RESULTS]))
    else:
        if codes := _csv(request.args.get("service_code")):
            stmt = stmt.where(Petition.category_code.in_(codes))
        statuses = set(_csv(request.args.get("status")))
        if statuses - {"open", "closed"}:
            errors.setdefault("status", []).append("must be open, closed, or both comma-separated")
        elif statuses == {"open"}:
            stmt = stmt.where(Petition.case_status.not_in(mapping.CLOSED_STATUSES))
        elif statuses == {"closed"}:
            stmt = stmt.where(Petition.case_status.in_(mapping.CLOSED_STATUSES))
        start, end = _window(request.args, errors)
        stmt = stmt.where(Petition.registered_at >= start, Petition.registered_at <= end)
    if errors:
        raise field_errors(errors)
    stmt = stmt.order_by(Petition.registered_at.desc(), Petition.id).limit(MAX_RESULTS)
    with runtime_of(current_app).read_sessions() as session:
        found = [mapping.request_view(p, _tz()) for p in session.scalars(stmt)]
    return respond(found, fmt, root="service_requests")


@blp.route(f"/requests/<service_request_id>.{FMT}")
@blp.doc(**DOC)
@require_roles(*READ_ROLES)
def request_one(service_request_id, fmt):
    """One service request by its service_request_id (信访件编号), in jurisdiction_id (api_key)."""
    jid = _jurisdiction(request.args, check_key=True)
    with runtime_of(current_app).read_sessions() as session:
        petition = session.scalar(select(Petition).where(Petition.display_no == service_request_id))
        if petition is None or not in_jurisdiction(petition.region_code, jid):
            raise fail(404, f"service_request_id {service_request_id} not found in jurisdiction {jid}")
        return respond([mapping.request_view(petition, _tz())], fmt, root="service_requests")


@blp.route(f"/tokens/<token>.{FMT}")
@blp.doc(**DOC)
@require_roles(*READ_ROLES)
def token(token, fmt):
    """The service_request_id of a token (registration is synchronous: known at once), in jurisdiction_id."""
    jid = _jurisdiction(request.args, check_key=True)
    with runtime_of(current_app).read_sessions() as session:
        petition = session.get(Petition, token)
        if petition is None or not in_jurisdiction(petition.region_code, jid):
            raise fail(404, f"token {token} not found in jurisdiction {jid}")
        return respond([{"service_request_id": petition.display_no, "token": petition.id}], fmt,
                       root="service_requests")
