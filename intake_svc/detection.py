"""Repeat, reflow, cross-level and no-longer-accepted detection at registration.

The same petitioner is found through the blind index of the identity number
(indexed on ``(id_blind, registered_at)``, so the cost does not grow with the
table), falling back to the phone's; the same matter is judged by
``MatterMatcher`` (problem location, content category, request text).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta, timezone
from functools import lru_cache

from psycopg.rows import namedtuple_row
from sqlalchemy import bindparam, literal_column, select
from sqlalchemy.orm import Session

from intake_svc import pgwrite
from intake_svc.domain.rules import LEVEL_RANK, is_above
from intake_svc.domain.similarity import Matter, MatterMatcher, rules_out
from intake_svc.models import Petition, Petitioner
from shared import clock

#: Case states after which the matter counts as closed or resolved (办结/化解).
CLOSED_STATES = frozenset({"已办结", "已存档", "终结", "复核已完成", "不再受理"})
#: How many earlier petitions of one person are compared at most.
MAX_CANDIDATES = 50


@dataclass
class Detection:
    repeat_of: str | None = None
    repeat_of_display_no: str | None = None
    repeat_score: float | None = None
    repeat_reasons: list[str] = field(default_factory=list)
    reflow: bool = False
    cross_level: bool = False
    no_longer_accepted: bool = False

    def as_dict(self) -> dict:
        """``dataclasses.asdict(self)`` (the reasons list copied), without its recursion into every value."""
        return {"repeat_of": self.repeat_of, "repeat_of_display_no": self.repeat_of_display_no,
                "repeat_score": self.repeat_score, "repeat_reasons": list(self.repeat_reasons),
                "reflow": self.reflow, "cross_level": self.cross_level, "no_longer_accepted": self.no_longer_accepted}


@lru_cache(maxsize=1)
def matcher() -> MatterMatcher:
    return MatterMatcher()


def warm_up() -> None:
    """Load the tokenizer now (about a second, once per process) rather than in the first request."""
    probe = Matter(region_code="411302", category_code="03", classic_code="03", text="房产证办理")
    matcher().compare(probe, probe)


def matter_of(petition: Petition | dict) -> Matter:
    get = petition.get if isinstance(petition, dict) else lambda k: getattr(petition, k)
    text = "\n".join(x for x in (get("title"), get("request_text"), get("facts")) if x)
    return Matter(region_code=get("region_code"), category_code=get("category_code"),
                  classic_code=get("classic_code"), text=text, respondent=get("complained_party") or "")


_P, _PP = Petition.__table__.c, Petitioner.__table__.c

#: What detection reads of an earlier petition (not the whole row: no ORM objects, no petitioners).
CANDIDATE_COLUMNS = (_P.id, _P.display_no, _P.title, _P.request_text, _P.facts, _P.region_code, _P.category_code,
                     _P.classic_code, _P.complained_party, _P.case_status, _P.case_resolved, _P.case_final,
                     _P.registrar_level)


def _prepared_candidates(column):
    """The same person's earlier petitions in the window, newest first, at most ``MAX_CANDIDATES``:
    parameters ``blinds`` (a list) and ``since``.  A Core statement built once (building one costs
    more than running it); run on the session's connection, it skips the ORM execution layer."""
    ids = select(_PP.petition_id).where(column.in_(bindparam("blinds", expanding=True)),
                                        _PP.registered_at >= bindparam("since"))
    return (select(*CANDIDATE_COLUMNS).where(_P.id.in_(ids))
            .order_by(_P.registered_at.desc()).limit(MAX_CANDIDATES))


_CANDIDATES = {"id_blind": _prepared_candidates(_PP.id_blind), "phone_blind": _prepared_candidates(_PP.phone_blind)}


def candidates_stmt(column, blinds: list[str], since):
    """The candidate query with its parameters bound (for EXPLAIN in bench/intake/run.py)."""
    return _CANDIDATES[column.key].params(blinds=list(blinds), since=since)


def candidates_select(column: str, count: int, *extra):
    """The candidate query for ``count`` blinds in ``column`` (parameters ``blind_0`` … and ``since``; the limit
    a constant), with the ``extra`` columns of ``petitions`` after ``CANDIDATE_COLUMNS``."""
    ids = select(_PP.petition_id).where(_PP[column].in_([bindparam(f"blind_{i}") for i in range(count)]),
                                        _PP.registered_at >= bindparam("since"))
    return (select(*CANDIDATE_COLUMNS, *extra).where(_P.id.in_(ids)).order_by(_P.registered_at.desc())
            .limit(literal_column(str(MAX_CANDIDATES))))


@lru_cache(maxsize=128)
def _driver_candidates(column: str, count: int) -> tuple[bytes, tuple[str, ...]]:
    """PostgreSQL: the candidate query for ``count`` blinds compiled once with PostgreSQL's placeholders
    (``IN ($1, $2 …)``, as the expanding ``IN`` renders the list) and the order of its parameters; the limit is
    a constant.  Run on a psycopg ``RawCursor`` it skips the expansion of the ``IN`` list, the parameter
    processing and the result set-up of SQLAlchemy's execution per call."""
    sql, order, _constants = pgwrite.compile_raw(candidates_select(column, count))
    return sql, order


def _candidates(session: Session, column: str, blinds: list[str], since) -> list:
    if not blinds:
        return []
    conn = session.connection()
    # (the bulk fill's stand-in session, bench/fill, answers ``execute`` only: no dialect)
    if getattr(getattr(conn, "dialect", None), "name", None) != "postgresql":
        return conn.execute(_CANDIDATES[column], {"blinds": blinds, "since": since}).all()
    return _run_candidates(conn, column, blinds, since)


def _run_candidates(conn, column: str, blinds: list[str], since) -> list:
    """PostgreSQL: the candidate query on a psycopg ``RawCursor`` of ``conn`` (``pgwrite.run_raw``)."""
    sql, order = _driver_candidates(column, len(blinds))
    values = {f"blind_{i}": blind for i, blind in enumerate(blinds)}
    values["since"] = since.astimezone(timezone.utc)  # as UTCDateTime binds it
    return pgwrite.run_raw(conn, sql, [values[name] for name in order], row_factory=namedtuple_row)


def detect(session: Session, *, fields: dict, id_blinds: list[str], phone_blinds: list[str],
           registrar_level: str, window_days: int) -> Detection:
    """Compare a petition about to be registered with the same person's earlier ones."""
    column, blinds = person_key(id_blinds, phone_blinds)
    candidates = _candidates(session, column, blinds, clock.now() - timedelta(days=window_days))
    return judge(candidates, fields=fields, registrar_level=registrar_level)


def person_key(id_blinds: list[str], phone_blinds: list[str]) -> tuple[str, list[str]]:
    """Who the petitioner is, as (blind-index column, blinds): the identity number decides; the phone only
    when no number was given (a call, an anonymous letter with a call-back number)."""
    return ("id_blind", id_blinds) if id_blinds else ("phone_blind", phone_blinds)


def judge(candidates: list, *, fields: dict, registrar_level: str) -> Detection:
    """What the earlier petitions ``candidates`` (rows of ``CANDIDATE_COLUMNS``, newest first) make of the
    new one (``fields``): the best match of the same matter and the flags it sets."""
    if not candidates:
        return Detection()
    by_id = {p.id: p for p in candidates}
    new = matter_of(fields)
    # Earlier petitions that cannot be the same matter whatever their text (another county, another
    # named respondent) are left out before any text is analysed; best_match would reject them too.
    best = matcher().best_match(new, [(p.id, matter_of(p)) for p in candidates
                                      if not rules_out(new, p.region_code, p.complained_party or "")])
    if best is None:
        return Detection()
    earlier_id, result = best
    earlier = by_id[earlier_id]
    closed = earlier.case_resolved or earlier.case_status in CLOSED_STATES
    open_below = (not closed and LEVEL_RANK.get(earlier.registrar_level, 3) >= LEVEL_RANK["county"])
    return Detection(
        repeat_of=earlier.id, repeat_of_display_no=earlier.display_no, repeat_score=round(result.score, 4),
        repeat_reasons=list(result.reasons), reflow=closed and not earlier.case_final,
        cross_level=is_above(registrar_level, "county") and open_below,
        no_longer_accepted=earlier.case_final)
