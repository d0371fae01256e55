"""管理 (admin): edit the directory, routing rules and deadline policies — each change a new version."""
from __future__ import annotations

import tempfile
from pathlib import Path

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import select

from assign_svc import directory, recompute, rules, versions
from assign_svc.api.common import mapped_errors, runtime
from assign_svc.models import DeadlinePolicyRow, Person, RoutingRuleRow, Unit
from assign_svc.schemas import (PersonInSchema, PersonSchema, PolicySchema, RecomputeSchema, RoutingRuleSchema,
                                UnitInSchema, UnitSchema, VersionSchema)
from shared.auth import current_principal, require_roles

admin_blp = Blueprint("admin", __name__, url_prefix="/assign/api/v1/admin",
                      description="目录、分办规则、期限规则的维护 (admin; every change is versioned)")


class ChangeSchema(Schema):
    version = fields.Integer()
    units = fields.Integer()
    people = fields.Integer()


class RecomputeResultSchema(Schema):
    open_stages = fields.Integer()
    changed = fields.Integer()
    repicked = fields.Integer()


def _who() -> str:
    return current_principal().username


@admin_blp.route("/units/<unit_id>")
class AdminUnit(MethodView):
    @require_roles("admin")
    @admin_blp.arguments(UnitInSchema)
    @admin_blp.response(200, UnitSchema)
    def put(self, data, unit_id):
        """Create or replace a unit (a new directory version, broadcast to supervise and notify)."""
        rt = runtime()
        with mapped_errors(), rt.uow() as session:
            directory.upsert(session, rt, units=[{**data, "id": unit_id}], people=[], changed_by=_who(),
                             summary=f"维护单位 {data['name']}")
            return session.get(Unit, unit_id)

    @require_roles("admin")
    @admin_blp.response(200, ChangeSchema)
    def delete(self, unit_id):
        """Retire a unit (kept for history, no longer routed to)."""
        rt = runtime()
        try:
            with rt.uow() as session:
                return {"version": directory.deactivate(session, rt, unit_id=unit_id, changed_by=_who()), "units": 1}
        except LookupError as exc:
            abort(404, message=str(exc))


@admin_blp.route("/people/<person_id>")
class AdminPerson(MethodView):
    @require_roles("admin")
    @admin_blp.arguments(PersonInSchema)
    @admin_blp.response(200, PersonSchema)
    def put(self, data, person_id):
        """Create or replace a person (post, leader, contact channels)."""
        rt = runtime()
        with mapped_errors(), rt.uow() as session:
            directory.upsert(session, rt, units=[], people=[{**data, "id": person_id}], changed_by=_who(),
                             summary=f"维护人员 {data['name']}")
            return session.get(Person, person_id)

    @require_roles("admin")
    @admin_blp.response(200, ChangeSchema)
    def delete(self, person_id):
        """Retire a person."""
        rt = runtime()
        try:
            with rt.uow() as session:
                return {"version": directory.deactivate(session, rt, person_id=person_id, changed_by=_who()),
                        "people": 1}
        except LookupError as exc:
            abort(404, message=str(exc))


@admin_blp.route("/directory/import")
class DirectoryImport(MethodView):
    @require_roles("admin")
    @admin_blp.response(200, ChangeSchema)
    def post(self):
        """Load a directory file (multipart field ``file``: .yaml or .xlsx with sheets units / people)."""
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            abort(422, message="send the directory as multipart field 'file' (.yaml or .xlsx)")
        suffix = Path(upload.filename).suffix.lower()
        if suffix not in (".yaml", ".yml", ".xlsx"):
            abort(422, message="the directory file must be .yaml or .xlsx")
        rt = runtime()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"directory{suffix}"
            upload.save(path)
            with mapped_errors(), rt.uow() as session:
                data = directory.read_file(path)
                version = directory.upsert(session, rt, units=data["units"], people=data["people"],
                                           changed_by=_who(), summary=f"导入目录文件 {upload.filename}", full=False)
                return {"version": version, "units": len(data["units"]), "people": len(data["people"])}


@admin_blp.route("/versions/<kind>")
class Versions(MethodView):
    @require_roles("admin", "supervisor")
    @admin_blp.response(200, VersionSchema(many=True))
    def get(self, kind):
        """The change history of ``directory``, ``routing`` or ``deadlines`` (newest first)."""
        if kind not in versions.KINDS:
            abort(404, message=f"unknown kind {kind}; one of {', '.join(versions.KINDS)}")
        with runtime().sessions() as session:
            return versions.history(session, kind)


@admin_blp.route("/routing-rules")
class RoutingRules(MethodView):
    @require_roles("admin", "registrar", "supervisor")
    @admin_blp.response(200, RoutingRuleSchema(many=True))
    def get(self):
        """Routing rules in priority order."""
        with runtime().sessions() as session:
            return list(session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.priority, RoutingRuleRow.id)))


@admin_blp.route("/routing-rules/<rule_id>")
class RoutingRuleById(MethodView):
    @require_roles("admin")
    @admin_blp.arguments(RoutingRuleSchema)
    @admin_blp.response(200, RoutingRuleSchema)
    def put(self, data, rule_id):
        """Create or replace a routing rule (a new routing version; new petitions route by it)."""
        rt = runtime()
        with mapped_errors(), rt.uow() as session:
            rules.upsert_routing_rule(session, {**data, "id": rule_id}, changed_by=_who())
            return session.get(RoutingRuleRow, rule_id)


@admin_blp.route("/deadline-policies")
class Policies(MethodView):
    @require_roles("admin", "registrar", "supervisor")
    @admin_blp.response(200, PolicySchema(many=True))
    def get(self):
        """Deadline policies in force (the newest version of each)."""
        with runtime().sessions() as session:
            return list(session.scalars(select(DeadlinePolicyRow).where(DeadlinePolicyRow.active.is_(True))
                                        .order_by(DeadlinePolicyRow.step, DeadlinePolicyRow.code)))


@admin_blp.route("/deadline-policies/<code>")
class PolicyByCode(MethodView):
    @require_roles("admin")
    @admin_blp.arguments(PolicySchema)
    @admin_blp.response(200, PolicySchema)
    def put(self, data, code):
        """Add a new version of a policy; it applies to stages started from now on."""
        rt = runtime()
        with mapped_errors(), rt.uow() as session:
            return rules.put_policy(session, {**data, "code": code}, changed_by=_who())


@admin_blp.route("/deadlines/recompute")
class Recompute(MethodView):
    @require_roles("admin")
    @admin_blp.arguments(RecomputeSchema)
    @admin_blp.response(200, RecomputeResultSchema)
    def post(self, data):
        """Recompute due_at / warn_at of open stages (calendar change); ``repick`` applies current policies."""
        rt = runtime()
        with rt.uow() as session:
            return recompute.recompute_open_stages(session, rt, repick=data["repick"])
