"""Working-day calendar (工作日历) and statutory deadline arithmetic (期限计算).

Rules implemented here:

* 工作日 follow the Chinese statutory calendar with make-up working days (调休):
  a make-up Saturday/Sunday is a working day, a 法定节假日 on a weekday is a
  rest day.  The data comes from ``chinesecalendar`` (years 2004-2026 in 1.11).
* An override table (date -> "workday" | "restday") takes precedence over the
  package for any date.  Years the package does not know can be "declared"
  complete by the operator; their non-overridden days are judged Mon-Fri.
  Any other unknown year raises :class:`UnknownCalendarYear`, unless the
  calendar was built with ``unknown_year="weekends"`` (Mon-Fri + a WARNING).
* Counting follows Civil Code Arts. 201/203 (民法典): the start day is not
  counted; a period in calendar days whose last day is a rest day ends on the
  next working day.  A period in working days ends on the n-th working day
  strictly after the start day.
* A deadline expires at the end (23:59:59.999999) of its last local day; all
  instants handed in or out are timezone-aware, returned in UTC.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from os import PathLike
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

log = logging.getLogger(__name__)

DEFAULT_TZ = "Asia/Shanghai"
WORKDAY = "workday"
RESTDAY = "restday"
DayKind = Literal["workday", "restday"]
Unit = Literal["calendar_days", "working_days"]
_ONE_DAY = timedelta(days=1)


class UnknownCalendarYear(ValueError):
    """The holiday/调休 arrangement of a year is unknown to the calendar."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"No statutory holiday data (法定节假日/调休) for year {year}: add the "
            f"year's holidays and make-up working days to the calendar override "
            f"table and declare the year, or upgrade chinesecalendar."
        )


@dataclass(frozen=True)
class DeadlineRule:
    """A statutory time limit, e.g. 15 days / 5 working days (办理期限)."""

    length: int
    unit: Unit
    roll_forward: bool = True
    basis: str = ""  # legal basis, e.g. "《信访工作条例》第二十三条"

    def __post_init__(self) -> None:
        if self.unit not in ("calendar_days", "working_days"):
            raise ValueError(f"unknown deadline unit {self.unit!r}")
        minimum = 1 if self.unit == "working_days" else 0
        if self.length < minimum:
            raise ValueError(f"{self.unit} rule needs length >= {minimum}, got {self.length}")


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {instant!r}")


def _require_date(d: date) -> None:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a datetime.date, got {type(d).__name__}; use local_date()")


def deadline_end(day: date, tz: str = DEFAULT_TZ) -> datetime:
    """The aware UTC instant at which local ``day`` ends (next midnight - 1 µs)."""
    _require_date(day)
    next_midnight = datetime.combine(day + _ONE_DAY, time(0), tzinfo=ZoneInfo(tz))
    return next_midnight.astimezone(timezone.utc) - timedelta(microseconds=1)


def local_date(instant: datetime, tz: str = DEFAULT_TZ) -> date:
    """The local calendar date (in ``tz``) of an aware instant."""
    _require_aware(instant)
    return instant.astimezone(ZoneInfo(tz)).date()


@functools.cache
def _package_years() -> frozenset[int]:
    from chinese_calendar import constants

    return frozenset(d.year for d in (*constants.holidays, *constants.workdays))


def _parse_kind(d: date, kind: object) -> DayKind:
    if kind not in (WORKDAY, RESTDAY):
        raise ValueError(f"calendar override for {d.isoformat()}: unknown kind {kind!r} "
                         f"(expected {WORKDAY!r} or {RESTDAY!r})")
    return kind  # type: ignore[return-value]


class _DatesAsText(yaml.SafeLoader):
    """Safe loader keeping YAML timestamps as text, so a bad date names its key."""


_DatesAsText.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)


class WorkCalendar:
    """Statutory working-day calendar (工作日历) with an operator override table."""

    def __init__(
        self,
        *,
        overrides: Mapping[date, str] | None = None,
        declared_years: Iterable[int] = (),
        unknown_year: Literal["error", "weekends"] = "error",
    ) -> None:
        if unknown_year not in ("error", "weekends"):
            raise ValueError(f"unknown_year must be 'error' or 'weekends', got {unknown_year!r}")
        self._overrides: dict[date, DayKind] = {}
        for d, kind in (overrides or {}).items():
            _require_date(d)
            self._overrides[d] = _parse_kind(d, kind)
        self._declared: frozenset[int] = frozenset(int(y) for y in declared_years)
        self._unknown_year = unknown_year
        self._warned_years: set[int] = set()

    @classmethod
    def from_file(
        cls, path: str | PathLike[str], *, unknown_year: Literal["error", "weekends"] = "error"
    ) -> WorkCalendar:
        """Load ``declared_years: [...]`` and ``days: {YYYY-MM-DD: workday|restday}``."""
        with open(path, encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=_DatesAsText) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping with 'declared_years' and 'days'")
        years = raw.get("declared_years") or []
        if not isinstance(years, list) or not all(type(y) is int for y in years):
            raise ValueError(f"{path}: 'declared_years' must be a list of integers, got {years!r}")
        days = raw.get("days") or {}
        if not isinstance(days, dict):
            raise ValueError(f"{path}: 'days' must be a mapping of date -> workday|restday")
        overrides: dict[date, str] = {}
        for key, kind in days.items():
            try:
                d = date.fromisoformat(str(key))
            except ValueError:
                raise ValueError(f"{path}: day key {key!r} is not a YYYY-MM-DD date") from None
            try:
                overrides[d] = _parse_kind(d, kind)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        return cls(overrides=overrides, declared_years=years, unknown_year=unknown_year)

    def known_years(self) -> frozenset[int]:
        """Years with a complete arrangement: the package's plus the declared ones."""
        return _package_years() | self._declared

    # -- day classification ------------------------------------------------
    def is_workday(self, d: date) -> bool:
        """True for a 工作日 (including a make-up 调休 weekend day)."""
        _require_date(d)
        kind = self._overrides.get(d)
        if kind is not None:
            return kind == WORKDAY
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:
            pass
        if d.year not in self._declared:
            if self._unknown_year == "error":
                raise UnknownCalendarYear(d.year)
            if d.year not in self._warned_years:
                self._warned_years.add(d.year)
                log.warning(
                    "No holiday data for year %d; treating Monday-Friday as working days. "
                    "Add the year's holidays to the calendar override table or upgrade "
                    "chinesecalendar.", d.year,
                )
        return d.weekday() < 5

    def is_restday(self, d: date) -> bool:
        """True for a weekend day or 法定节假日 that is not a make-up working day."""
        return not self.is_workday(d)

    # -- counting (民法典 第二百零一条/第二百零三条) -------------------------
    def add_calendar_days(self, start: date, n: int, *, roll_forward: bool = True) -> date:
        """``start + n`` days; a rest-day result moves to the next working day."""
        _require_date(start)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        result = start + timedelta(days=n)
        while roll_forward and not self.is_workday(result):
            result += _ONE_DAY
        return result

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th 工作日 strictly after ``start`` (``start`` itself never counts)."""
        _require_date(start)
        if n < 1:
            raise ValueError(f"n must be >= 1 working day, got {n}")
        d, counted = start, 0
        while counted < n:
            d += _ONE_DAY
            if self.is_workday(d):
                counted += 1
        return d

    def working_days_between(self, start: date, end: date) -> int:
        """Number of working days in ``(start, end]``; 0 if ``end <= start``."""
        _require_date(start)
        _require_date(end)
        count, d = 0, start + _ONE_DAY
        while d <= end:
            count += self.is_workday(d)
            d += _ONE_DAY
        return count

    # -- deadlines -----------------------------------------------------------
    def due(self, rule: DeadlineRule, start_instant: datetime, *, tz: str = DEFAULT_TZ) -> datetime:
        """The aware UTC instant a period under ``rule`` expires, from ``start_instant``."""
        start = local_date(start_instant, tz)
        if rule.unit == "working_days":
            last = self.add_working_days(start, rule.length)
        else:
            last = self.add_calendar_days(start, rule.length, roll_forward=rule.roll_forward)
        return deadline_end(last, tz)

    def warn_at(
        self,
        rule: DeadlineRule,
        start_instant: datetime,
        due_at: datetime,
        *,
        before_days: int | None = None,
        fraction: float | None = None,
    ) -> datetime:
        """When to raise a deadline warning (预警): ``before_days`` calendar days, or
        ``fraction`` of the start..due span, before ``due_at``; never before the start.

        Exactly one of ``before_days``/``fraction`` must be given.  ``rule`` is the rule
        that produced ``due_at`` (kept for a uniform call shape; not used in the arithmetic).
        """
        _require_aware(start_instant)
        _require_aware(due_at)
        if (before_days is None) == (fraction is None):
            raise ValueError("give exactly one of before_days or fraction")
        if before_days is not None:
            if before_days < 0:
                raise ValueError(f"before_days must be >= 0, got {before_days}")
            warn = due_at - timedelta(days=before_days)
        else:
            assert fraction is not None
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"fraction must be within [0, 1], got {fraction}")
            warn = due_at - (due_at - start_instant) * fraction
        return max(warn, start_instant).astimezone(timezone.utc)
