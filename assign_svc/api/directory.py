"""组织机构 (the directory): units and people, readable inside the caller's jurisdiction."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from assign_svc.api.common import runtime
from assign_svc.models import Person, Unit
from assign_svc.schemas import PeopleQuerySchema, PersonSchema, UnitSchema
from shared.auth import current_principal, require_jurisdiction

units_blp = Blueprint("units", __name__, url_prefix="/assign/api/v1/units", description="组织机构目录 (units)")
people_blp = Blueprint("people", __name__, url_prefix="/assign/api/v1/people", description="人员与包案领导 (people)")


@units_blp.route("")
class Units(MethodView):
    @units_blp.response(200, UnitSchema(many=True))
    def get(self):
        """Active units of the directory inside the caller's jurisdiction."""
        principal = current_principal()
        with runtime().sessions() as session:
            return [u for u in session.scalars(select(Unit).where(Unit.active.is_(True)).order_by(Unit.id))
                    if principal.may_see(u.region_code)]


@units_blp.route("/<unit_id>")
class UnitById(MethodView):
    @units_blp.response(200, UnitSchema)
    def get(self, unit_id):
        """One unit."""
        with runtime().sessions() as session:
            unit = session.get(Unit, unit_id)
            if unit is None:
                abort(404, message=f"unit {unit_id} not found")
            require_jurisdiction(unit.region_code)
            return unit


@people_blp.route("")
class People(MethodView):
    @people_blp.arguments(PeopleQuerySchema, location="query")
    @people_blp.response(200, PersonSchema(many=True))
    def get(self, query):
        """People of the directory (optionally of one unit, or only leaders) inside the caller's jurisdiction."""
        principal = current_principal()
        stmt = select(Person, Unit.region_code).join(Unit, Unit.id == Person.unit_id).where(Person.active.is_(True))
        if "unit_id" in query:
            stmt = stmt.where(Person.unit_id == query["unit_id"])
        if "leader" in query:
            stmt = stmt.where(Person.leader.is_(query["leader"]))
        with runtime().sessions() as session:
            return [p for p, region in session.execute(stmt.order_by(Person.id).limit(1000)) if principal.may_see(region)]
