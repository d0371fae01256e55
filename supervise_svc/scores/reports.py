"""Reports of the scorecards: 月通报 (monthly bulletin), 季排队 (quarterly ranking), 年总评 (annual).

Quarterly and annual standings are the **average of the stored monthly scores** of the period
(months where the unit had no score are left out of its average; a unit with no scored month is
unranked), ranked within the same peer groups as the months (average descending, ties by unit id).
Averaging the published months keeps the quarter consistent with what units were told each month
and needs no second pass over the read model.  Ranks are computed over the whole peer group before
the caller's jurisdiction filters the rows, so a county sees its townships' true ranks.
"""
from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise_svc.scores import domain
from supervise_svc.scoring_models import ScorecardRow, ScorecardRun

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LEVEL_LABELS = {"county": "县（市、区）", "township": "乡镇（街道）"}
COUNT_LABELS = {"acceptance_due": "受理期限到期", "accepted_on_time": "按期受理", "handling_due": "办理期限到期",
                "closed_on_time": "按期办结", "closed_late": "超期办结", "open_overdue": "超期未结",
                "evaluated": "已评价", "satisfied": "满意及基本满意", "evaluation_expired": "超期未评价",
                "petitions": "信访件次", "repeats": "重复信访", "closed": "办结", "resolved": "化解",
                "visits": "来访", "cross_level_visits": "越级来访", "truth_judged": "认定属实与否",
                "substantiated": "属实及部分属实"}


class NoScorecard(LookupError):
    pass


def _order(row) -> tuple:
    return (0 if row["level"] == "county" else 1, row["peer_group"], row["rank"] is None, row["rank"] or 0,
            row["unit_id"])


def row_dict(row: ScorecardRow) -> dict:
    return {"unit_id": row.unit_id, "unit_name": row.unit_name, "level": row.level, "region_code": row.region_code,
            "peer_group": row.peer_group, "peer_group_name": row.peer_group_name, "peer_size": row.peer_size,
            "population": row.population, "counts": row.counts, "rates": row.rates, "score": row.score,
            "rank": row.rank, "near_bottom": row.near_bottom, "streak": row.streak, "colour": row.colour,
            "colour_label": domain.COLOUR_LABELS[row.colour], "failed_thresholds": row.failed_thresholds}


def monthly(session: Session, *, month: str, prefix: str) -> dict:
    """月通报: the month's run and the rows inside ``prefix`` (ranked order)."""
    run = session.get(ScorecardRun, month)
    if run is None:
        raise NoScorecard(f"{month} 的三率三色排名尚未生成")
    rows = [row_dict(r) for r in session.scalars(select(ScorecardRow).where(
        ScorecardRow.month == month, ScorecardRow.region_code.startswith(prefix)))]
    rows.sort(key=_order)
    summary = {c: sum(1 for r in rows if r["colour"] == c) for c in ("blue", "yellow", "red")}
    return {"month": month, "computed_at": run.computed_at, "as_of": run.as_of,
            "settings_version": run.settings_version, "summary": summary, "rows": rows}


def period(session: Session, *, months: list[str], prefix: str, label: str) -> dict:
    """Average of the monthly scores over ``months``, ranked within each peer group."""
    computed = list(session.scalars(select(ScorecardRun.month).where(ScorecardRun.month.in_(months))
                                    .order_by(ScorecardRun.month)))
    if not computed:
        raise NoScorecard(f"{label} 没有已生成的月度排名")
    units: dict[str, dict] = {}
    stmt = select(ScorecardRow).where(ScorecardRow.month.in_(computed)).order_by(ScorecardRow.month)
    for row in session.scalars(stmt):
        unit = units.setdefault(row.unit_id, {
            "unit_id": row.unit_id, "unit_name": row.unit_name, "level": row.level, "region_code": row.region_code,
            "peer_group": row.peer_group, "peer_group_name": row.peer_group_name, "months": {},
            "blue_months": 0, "yellow_months": 0, "red_months": 0})
        unit["unit_name"], unit["peer_group"] = row.unit_name, row.peer_group  # the latest month's naming
        unit["months"][row.month] = {"score": row.score, "rank": row.rank, "colour": row.colour}
        if row.colour:
            unit[f"{row.colour}_months"] += 1
    for unit in units.values():
        scores = [m["score"] for m in unit["months"].values() if m["score"] is not None]
        unit["scored_months"] = len(scores)
        unit["average_score"] = round(sum(scores) / len(scores), 4) if scores else None
    groups: dict[tuple[str, str], list[dict]] = {}
    for unit in units.values():
        groups.setdefault((unit["level"], unit["peer_group"]), []).append(unit)
    for members in groups.values():
        ranks = domain.rank({u["unit_id"]: u["average_score"] for u in members})
        size = sum(1 for v in ranks.values() if v is not None)
        for unit in members:
            unit["rank"], unit["peer_size"] = ranks[unit["unit_id"]], size
    rows = sorted((u for u in units.values() if u["region_code"].startswith(prefix)), key=_order)
    return {"period": label, "months": computed, "method": "average of monthly scores", "rows": rows}


def quarterly(session: Session, *, year: int, quarter: int, prefix: str) -> dict:
    return period(session, months=domain.quarter_months(year, quarter), prefix=prefix, label=f"{year}Q{quarter}")


def annual(session: Session, *, year: int, prefix: str) -> dict:
    return period(session, months=[domain.month_key(year, m) for m in range(1, 13)], prefix=prefix, label=f"{year}")


# -- xlsx

def _pct(value: float | None) -> str:
    return "不适用" if value is None else f"{value * 100:.2f}%"


def _book(title: str, heading: str, header: list[str], body: list[list]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append([heading])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(header)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for line in body:
        sheet.append(line)
    sheet.column_dimensions["B"].width = 28
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def monthly_xlsx(report: dict, tz: str) -> bytes:
    header = ["序号", "单位", "层级", "排名组", "排名", "组内单位数", "综合得分", "颜色", "连续落后月数",
              *domain.LABELS.values(), *COUNT_LABELS.values(), "常住人口"]
    body = []
    for i, r in enumerate(report["rows"], start=1):
        body.append([i, r["unit_name"], LEVEL_LABELS[r["level"]], r["peer_group_name"] or r["peer_group"], r["rank"],
                     r["peer_size"], r["score"], r["colour_label"], r["streak"],
                     *(_pct(r["rates"][m]) if m != "per_10k" else
                       ("不适用" if r["rates"][m] is None else round(r["rates"][m], 4)) for m in domain.LABELS),
                     *(r["counts"][k] for k in COUNT_LABELS), r["population"]])
    computed: datetime = report["computed_at"]
    heading = (f"{report['month']} 三率三色月通报（生成于 {computed.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}，"
               f"规则版本 {report['settings_version']}）")
    return _book("月通报", heading, header, body)


def period_xlsx(report: dict, title: str) -> bytes:
    months = report["months"]
    header = ["序号", "单位", "层级", "排名组", "排名", "组内单位数", "平均得分", "参与排名月数",
              "蓝色月数", "黄色月数", "红色月数", *(f"{m} 得分" for m in months)]
    body = []
    for i, r in enumerate(report["rows"], start=1):
        body.append([i, r["unit_name"], LEVEL_LABELS[r["level"]], r["peer_group_name"] or r["peer_group"], r["rank"],
                     r["peer_size"], r["average_score"], r["scored_months"], r["blue_months"], r["yellow_months"],
                     r["red_months"], *(r["months"].get(m, {}).get("score") for m in months)])
    return _book(title, f"{report['period']} 三率三色{title}（按月度得分平均）", header, body)
