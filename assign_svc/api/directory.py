"""组织机构 (the directory): units and people, readable inside the caller's jurisdiction."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import func, select

from assign_svc.api.common import runtime
from assign_svc.models import Person, Unit
from assign_svc.schemas import PeopleQuerySchema, PersonSchema, UnitSchema
from shared.auth import current_principal, require_jurisdiction
from shared.regions import subtree_prefix
from shared.web import check_page

units_blp = Blueprint("units", __name__, url_prefix="/assign/api/v1/units", description="组织机构目录 (units)")
#: People per page of ``GET /assign/api/v1/people``.
PEOPLE_PAGE = 1000
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
    @people_blp.paginate(page_size=PEOPLE_PAGE, max_page_size=PEOPLE_PAGE)
    def get(self, query, pagination_parameters):
        """People of the directory (optionally of one unit, or only leaders) inside the caller's jurisdiction,
        by id, 1,000 a page (X-Pagination header: a city's directory holds more)."""
        check_page(pagination_parameters)
        principal = current_principal()
        stmt = select(Person).join(Unit, Unit.id == Person.unit_id).where(Person.active.is_(True))
        prefix = subtree_prefix(principal.jurisdiction)
        if prefix:
            stmt = stmt.where(Unit.region_code.startswith(prefix))
        if "unit_id" in query:
            stmt = stmt.where(Person.unit_id == query["unit_id"])
        if "leader" in query:
            stmt = stmt.where(Person.leader.is_(query["leader"]))
        with runtime().sessions() as session:
            pagination_parameters.item_count = session.scalar(select(func.count()).select_from(stmt.subquery()))
            return list(session.scalars(stmt.order_by(Person.id).offset(pagination_parameters.first_item)
                                        .limit(pagination_parameters.page_size)))
