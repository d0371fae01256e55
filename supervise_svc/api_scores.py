"""Thin views of the scorecards (三率三色), reports and follow-up calls (回访)."""
from __future__ import annotations

import io
import re

from flask import current_app, send_file
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from shared import clock
from shared.auth import current_principal, require_jurisdiction, require_roles
from shared.regions import subtree_prefix
from shared.web import runtime_of
from supervise_svc import scoring
from supervise_svc.scores import compute, domain, followups, reports, settings_of

scores_blp = Blueprint("scorecards", __name__, url_prefix="/supervise/api/v1",
                       description="三率三色 (scorecards), 月通报 / 季排队 / 年总评, 回访 (follow-up calls)")
READERS = ("supervisor", "leader")
QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")


def _month(text: str) -> str:
    try:
        domain.parse_month(text)
    except ValueError:
        abort(422, message="月份格式应为 YYYY-MM", errors={"month": [f"不是有效月份：{text}"]})
    return text


def _prefix() -> str:
    return subtree_prefix(current_principal().jurisdiction)


def _xlsx(data: bytes, name: str):
    return send_file(io.BytesIO(data), mimetype=reports.XLSX, as_attachment=True, download_name=name)


class ComputedSchema(Schema):
    month = fields.String()
    computed_at = fields.AwareDateTime()
    as_of = fields.AwareDateTime()
    settings_version = fields.String()
    computations = fields.Integer()
    findings_opened = fields.Integer()


class MonthlySchema(Schema):
    month = fields.String()
    computed_at = fields.AwareDateTime()
    as_of = fields.AwareDateTime()
    settings_version = fields.String()
    summary = fields.Dict()
    rows = fields.List(fields.Dict())


class PeriodSchema(Schema):
    period = fields.String()
    months = fields.List(fields.String())
    method = fields.String()
    rows = fields.List(fields.Dict())


@scores_blp.route("/scorecards/<month>/compute")
class ComputeMonth(MethodView):
    @require_roles("supervisor")
    @scores_blp.response(200, ComputedSchema)
    def post(self, month):
        """(Re)compute a month's scorecard (replaces its rows) and run the lagging check (工作被动落后)."""
        try:
            return scoring.compute_by_hand(runtime_of(current_app), month=_month(month),
                                           user=current_principal().username)
        except compute.MonthNotStarted:
            abort(409, message=f"{month} 尚未开始，不能排名")


def _monthly(month: str) -> dict:
    with runtime_of(current_app).read_sessions() as session:
        try:
            return reports.monthly(session, month=_month(month), prefix=_prefix())
        except reports.NoScorecard as exc:
            abort(404, message=str(exc))


@scores_blp.route("/scorecards/<month>.xlsx")
class MonthXlsx(MethodView):
    @require_roles(*READERS)
    @scores_blp.response(200, content_type=reports.XLSX)
    def get(self, month):
        """月通报 as an xlsx sheet (the caller's jurisdiction only)."""
        data = reports.monthly_xlsx(_monthly(month), runtime_of(current_app).settings.timezone)
        return _xlsx(data, f"{month}-三率三色月通报.xlsx")


@scores_blp.route("/scorecards/<month>")
class Month(MethodView):
    @require_roles(*READERS)
    @scores_blp.response(200, MonthlySchema)
    def get(self, month):
        """月通报: every unit's card of the month inside the caller's jurisdiction, in ranked order."""
        return _monthly(month)


def _quarterly(quarter: str) -> dict:
    match = QUARTER_RE.match(quarter)
    if not match:
        abort(422, message="季度格式应为 YYYYQn", errors={"quarter": [f"不是有效季度：{quarter}"]})
    with runtime_of(current_app).read_sessions() as session:
        try:
            return reports.quarterly(session, year=int(match[1]), quarter=int(match[2]), prefix=_prefix())
        except reports.NoScorecard as exc:
            abort(404, message=str(exc))


def _annual(year: str) -> dict:
    if not (len(year) == 4 and year.isdigit()):
        abort(422, message="年份格式应为 YYYY", errors={"year": [f"不是有效年份：{year}"]})
    with runtime_of(current_app).read_sessions() as session:
        try:
            return reports.annual(session, year=int(year), prefix=_prefix())
        except reports.NoScorecard as exc:
            abort(404, message=str(exc))


@scores_blp.route("/reports/quarterly/<quarter>.xlsx")
class QuarterXlsx(MethodView):
    @require_roles(*READERS)
    @scores_blp.response(200, content_type=reports.XLSX)
    def get(self, quarter):
        """季排队 as an xlsx sheet."""
        return _xlsx(reports.period_xlsx(_quarterly(quarter), "季排队"), f"{quarter}-三率三色季排队.xlsx")


@scores_blp.route("/reports/quarterly/<quarter>")
class Quarter(MethodView):
    @require_roles(*READERS)
    @scores_blp.response(200, PeriodSchema)
    def get(self, quarter):
        """季排队: the quarter's average monthly score per unit, ranked within each peer group."""
        return _quarterly(quarter)


@scores_blp.route("/reports/annual/<year>.xlsx")
class YearXlsx(MethodView):
    @require_roles(*READERS)
    @scores_blp.response(200, content_type=reports.XLSX)
    def get(self, year):
        """年总评 as an xlsx sheet."""
        return _xlsx(reports.period_xlsx(_annual(year), "年总评"), f"{year}-三率三色年总评.xlsx")


@scores_blp.route("/reports/annual/<year>")
class Year(MethodView):
    @require_roles(*READERS)
    @scores_blp.response(200, PeriodSchema)
    def get(self, year):
        """年总评: the year's average monthly score per unit, ranked within each peer group."""
        return _annual(year)


# -- follow-up calls (回访)

class FollowUpInSchema(Schema):
    at = fields.AwareDateTime(required=True, metadata={"description": "回访时间"})
    method = fields.String(required=True, validate=validate.OneOf(followups.METHODS))
    reached = fields.Boolean(required=True, metadata={"description": "是否联系上信访人"})
    satisfied = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(followups.GRADES))
    carried_out = fields.Boolean(load_default=None, allow_none=True, metadata={"description": "处理意见是否落实"})
    remarks = fields.String(load_default="", validate=validate.Length(max=2000))


class FollowUpSchema(Schema):
    id = fields.String()
    case_id = fields.String()
    petition_id = fields.String()
    cycle = fields.Integer()
    at = fields.AwareDateTime()
    method = fields.String()
    reached = fields.Boolean()
    satisfied = fields.String(allow_none=True)
    carried_out = fields.Boolean(allow_none=True)
    remarks = fields.String()
    caller = fields.String()
    recorded_at = fields.AwareDateTime()
    findings = fields.List(fields.String())


class WorkItemSchema(Schema):
    case_id = fields.String(attribute="view.case_id")
    petition_id = fields.String(attribute="view.petition_id")
    display_no = fields.String(attribute="view.display_no")
    region_code = fields.String(attribute="view.region_code")
    unit_id = fields.String(attribute="view.unit_id", allow_none=True)
    unit_name = fields.String(attribute="view.unit_name", allow_none=True)
    category = fields.String(attribute="view.category")
    statutory_type = fields.String(attribute="view.statutory_type", allow_none=True)
    closed_at = fields.AwareDateTime(attribute="view.closed_at")
    cycle = fields.Integer(attribute="view.cycle")
    attempts = fields.Integer()
    last_at = fields.AwareDateTime(allow_none=True)
    due_since = fields.AwareDateTime()
    reason = fields.String()


@scores_blp.route("/followups/worklist")
class Worklist(MethodView):
    @require_roles(*READERS)
    @scores_blp.response(200, WorkItemSchema(many=True))
    def get(self):
        """回访 worklist: closed cases in the caller's jurisdiction due for a call (at most 500)."""
        runtime = runtime_of(current_app)
        with runtime.read_sessions() as session:
            return followups.worklist(session, rule=settings_of(runtime).followup, prefix=_prefix(), now=clock.now())


@scores_blp.route("/cases/<case_id>/followups")
class CaseFollowUps(MethodView):
    @require_roles(*READERS)
    @scores_blp.response(200, FollowUpSchema(many=True))
    def get(self, case_id):
        """The follow-up calls of a case, oldest first."""
        with runtime_of(current_app).read_sessions() as session:
            try:
                require_jurisdiction(followups.case_by_case_id(session, case_id).region_code)
                return followups.followups_of(session, case_id)
            except followups.NotFound as exc:
                abort(404, message=str(exc))

    @require_roles("supervisor")
    @scores_blp.arguments(FollowUpInSchema)
    @scores_blp.response(201, FollowUpSchema)
    def post(self, body, case_id):
        """Record a follow-up call (回访); 不满意 or 未落实 opens a finding (督查件)."""
        runtime = runtime_of(current_app)
        with runtime.uow() as session:
            try:
                require_jurisdiction(followups.case_by_case_id(session, case_id).region_code)
                return followups.record_followup(session, runtime, case_id=case_id, caller=current_principal().username,
                                                 now=clock.now(), **body)
            except followups.NotFound as exc:
                abort(404, message=str(exc))
            except followups.BadInput as exc:
                abort(422, message=str(exc), errors=exc.errors)


#: Blueprints this module contributes to the supervise app.
blueprints: list = [scores_blp]
