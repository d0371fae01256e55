"""Unit tests for shared.calendar (工作日历, 调休, 期限计算).

Expected dates were computed by hand from the State Council holiday notices and
checked against chinesecalendar 1.11.0 data:

* 2024 Spring Festival: rest Sat 02-10 .. Sat 02-17; make-up workdays Sun 02-04, Sun 02-18.
* 2024 National Day: rest Tue 10-01 .. Mon 10-07; make-up workdays Sun 09-29, Sat 10-12.
* 2025 National Day + Mid-Autumn: rest Wed 10-01 .. Wed 10-08; make-up Sun 09-28, Sat 10-11.
* 2026 New Year: rest Thu 01-01 .. Sat 01-03; make-up workday Sun 01-04.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import pytest

from shared.calendar import (
    DeadlineRule,
    UnknownCalendarYear,
    WorkCalendar,
    deadline_end,
    local_date,
)

UTC = timezone.utc
LOGGER = "shared.calendar"


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar()


def local_instant(y: int, m: int, d: int, hour: int = 10) -> datetime:
    """An aware UTC instant at ``hour`` o'clock Beijing time (UTC+8) on y-m-d."""
    return datetime(y, m, d, hour, tzinfo=UTC) - timedelta(hours=8)


def end_of_local_day_utc(y: int, m: int, d: int) -> datetime:
    """23:59:59.999999 Beijing time == 15:59:59.999999 UTC of the same date."""
    return datetime(y, m, d, 15, 59, 59, 999999, tzinfo=UTC)


# -- day classification --------------------------------------------------------

@pytest.mark.parametrize("day", [date(2024, 2, 12), date(2024, 2, 14), date(2024, 2, 16)])
def test_spring_festival_holiday_on_weekday_is_restday(cal: WorkCalendar, day: date) -> None:
    # Given a Mon/Wed/Fri inside the 2024 Spring Festival holiday (法定节假日)
    assert day.weekday() < 5
    # When / Then it is a rest day, not a working day
    assert cal.is_restday(day)
    assert not cal.is_workday(day)


@pytest.mark.parametrize("day", [date(2024, 2, 4), date(2024, 2, 18), date(2024, 10, 12)])
def test_makeup_weekend_days_are_workdays(cal: WorkCalendar, day: date) -> None:
    # Given a 调休 make-up day falling on a weekend (2024-02-04 Sun, 2024-02-18 Sun,
    # 2024-10-12 Sat)
    assert day.weekday() >= 5
    # When / Then it counts as a working day
    assert cal.is_workday(day)
    assert not cal.is_restday(day)


def test_ordinary_weekend_is_restday_and_ordinary_weekday_is_workday(cal: WorkCalendar) -> None:
    # Given an ordinary Saturday and an ordinary Tuesday in March 2024
    # When / Then the weekend rests and the weekday works
    assert cal.is_restday(date(2024, 3, 2))
    assert cal.is_workday(date(2024, 3, 5))


def test_override_takes_precedence_over_package_data() -> None:
    # Given overrides that contradict the package for a known year
    cal = WorkCalendar(overrides={date(2024, 10, 1): "workday", date(2024, 3, 5): "restday"})
    # When / Then the overrides win
    assert cal.is_workday(date(2024, 10, 1))
    assert cal.is_restday(date(2024, 3, 5))
    # And non-overridden days still follow the package
    assert cal.is_restday(date(2024, 10, 2))


def test_datetime_is_rejected_where_a_date_is_expected(cal: WorkCalendar) -> None:
    # Given a datetime (whose local date depends on a time zone)
    # When / Then the calendar refuses it instead of guessing the day
    with pytest.raises(TypeError):
        cal.is_workday(datetime(2024, 10, 8, tzinfo=UTC))


# -- calendar days (民法典 第二百零一条/第二百零三条) -----------------------------

def test_add_calendar_days_ending_on_holiday_rolls_to_next_workday(cal: WorkCalendar) -> None:
    # Given 2024-02-01; +10 days = Sun 2024-02-11, inside the Spring Festival holiday
    # When adding 10 calendar days with roll_forward (the default)
    result = cal.add_calendar_days(date(2024, 2, 1), 10)
    # Then the deadline moves to the first working day after the holiday, which is
    # the make-up Sunday 2024-02-18 (not Monday 02-19)
    assert result == date(2024, 2, 18)


def test_add_calendar_days_without_roll_forward_keeps_the_holiday(cal: WorkCalendar) -> None:
    # Given the same start as above
    # When adding 10 calendar days with roll_forward=False
    result = cal.add_calendar_days(date(2024, 2, 1), 10, roll_forward=False)
    # Then the result is the raw date, even though it is a rest day
    assert result == date(2024, 2, 11)


def test_add_calendar_days_ending_on_makeup_saturday_does_not_roll(cal: WorkCalendar) -> None:
    # Given 2024-10-02; +10 days = Sat 2024-10-12, a 调休 make-up working day
    # When adding 10 calendar days
    # Then it stays on that Saturday
    assert cal.add_calendar_days(date(2024, 10, 2), 10) == date(2024, 10, 12)


def test_add_calendar_days_ending_on_plain_weekend_rolls_to_monday(cal: WorkCalendar) -> None:
    # Given Fri 2024-03-01; +1 day = Sat 03-02 (ordinary weekend)
    # When / Then the deadline rolls to Mon 03-04
    assert cal.add_calendar_days(date(2024, 3, 1), 1) == date(2024, 3, 4)


def test_add_calendar_days_zero_and_negative(cal: WorkCalendar) -> None:
    # Given a working-day start, n=0 returns the start; a negative n is refused
    assert cal.add_calendar_days(date(2024, 3, 5), 0) == date(2024, 3, 5)
    with pytest.raises(ValueError):
        cal.add_calendar_days(date(2024, 3, 5), -1)


# -- working days --------------------------------------------------------------

@pytest.mark.parametrize(
    ("n", "expected"),
    [
        # Start Fri 2025-09-26 (excluded). Working days after it:
        # 1 Sun 09-28 (make-up), 2 Mon 09-29, 3 Tue 09-30, [10-01..10-08 holiday],
        # 4 Thu 10-09, 5 Fri 10-10, 6 Sat 10-11 (make-up), [Sun 10-12 rest], 7 Mon 10-13
        (1, date(2025, 9, 28)),
        (3, date(2025, 9, 30)),
        (4, date(2025, 10, 9)),
        (5, date(2025, 10, 10)),
        (6, date(2025, 10, 11)),
        (7, date(2025, 10, 13)),
    ],
)
def test_add_working_days_across_national_day_2025(cal: WorkCalendar, n: int, expected: date) -> None:
    # Given a start just before the 2025 National Day holiday
    # When adding n working days
    # Then holidays are skipped and make-up weekend days count
    assert cal.add_working_days(date(2025, 9, 26), n) == expected


def test_add_working_days_from_a_restday_start(cal: WorkCalendar) -> None:
    # Given a start on Sat 2024-10-05, itself a National Day rest day (excluded anyway).
    # Hand count: 10-06, 10-07 rest; 1 Tue 10-08, 2 Wed 10-09, 3 Thu 10-10,
    # 4 Fri 10-11, 5 Sat 10-12 (调休 make-up workday).
    # (chinese_calendar.find_workday(5, 2024-10-05) returns 2024-10-14: one too many.)
    # When adding 5 working days
    # Then the 5th working day is the make-up Saturday
    assert cal.add_working_days(date(2024, 10, 5), 5) == date(2024, 10, 12)
    # And 1 working day from the last holiday day is the very next day
    assert cal.add_working_days(date(2024, 10, 7), 1) == date(2024, 10, 8)


def test_add_working_days_across_year_boundary(cal: WorkCalendar) -> None:
    # Given Mon 2025-12-29. Hand count: 1 Tue 12-30, 2 Wed 12-31,
    # [Thu 01-01 .. Sat 01-03 New Year holiday], 3 Sun 2026-01-04 (make-up),
    # 4 Mon 01-05, 5 Tue 01-06
    # When adding 5 working days
    # Then the count crosses into 2026 and ends on Tue 2026-01-06
    assert cal.add_working_days(date(2025, 12, 29), 5) == date(2026, 1, 6)


@pytest.mark.parametrize("n", [0, -3])
def test_add_working_days_requires_positive_n(cal: WorkCalendar, n: int) -> None:
    # Given a non-positive number of working days
    # When / Then it is refused
    with pytest.raises(ValueError):
        cal.add_working_days(date(2024, 3, 5), n)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2024, 9, 30), date(2024, 10, 12), 5),  # 10-08..10-12 (12th = make-up Sat)
        (date(2024, 9, 28), date(2024, 9, 30), 2),  # Sun 09-29 (make-up) + Mon 09-30
        (date(2024, 9, 29), date(2024, 9, 29), 0),  # empty interval
        (date(2024, 10, 12), date(2024, 10, 1), 0),  # end before start
        (date(2025, 12, 29), date(2026, 1, 6), 5),  # across the New Year holiday
    ],
)
def test_working_days_between(cal: WorkCalendar, start: date, end: date, expected: int) -> None:
    # Given an interval (start, end] — start excluded, end included
    # When / Then only working days are counted
    assert cal.working_days_between(start, end) == expected


# -- instants ------------------------------------------------------------------

def test_deadline_end_is_local_midnight_minus_one_microsecond_in_utc() -> None:
    # Given a local (Beijing) date
    # When asking for the end of that day
    end = deadline_end(date(2024, 10, 8))
    # Then it is 23:59:59.999999 local == 15:59:59.999999 UTC, aware and in UTC
    assert end == end_of_local_day_utc(2024, 10, 8)
    assert end.utcoffset() == timedelta(0)


def test_local_date_uses_beijing_time_and_requires_aware() -> None:
    # Given 2024-09-30 16:00 UTC, which is already 2024-10-01 00:00 in Beijing
    # When / Then the local date is October 1st
    assert local_date(datetime(2024, 9, 30, 16, 0, tzinfo=UTC)) == date(2024, 10, 1)
    assert local_date(datetime(2024, 9, 30, 15, 59, tzinfo=UTC)) == date(2024, 9, 30)
    with pytest.raises(ValueError):
        local_date(datetime(2024, 9, 30, 16, 0))


# -- DeadlineRule + due ----------------------------------------------------------

OBJECTION_5_WD = DeadlineRule(5, "working_days", basis="异议期 5 个工作日")
ACCEPT_15_D = DeadlineRule(15, "calendar_days", basis="受理告知 15 日")
HANDLE_60_D = DeadlineRule(60, "calendar_days", basis="办理 60 日")


def test_due_five_working_day_window_uses_local_start_date(cal: WorkCalendar) -> None:
    # Given a petition received 2024-09-29 16:30 UTC == Mon 2024-09-30 00:30 Beijing
    start = datetime(2024, 9, 29, 16, 30, tzinfo=UTC)
    # When the 5-working-day window is computed
    due = cal.due(OBJECTION_5_WD, start)
    # Then counting starts after local 09-30: 10-08, 09, 10, 11, 12 (make-up Sat),
    # ending 2024-10-12 23:59:59.999999 Beijing. (Counting from the UTC date 09-29
    # would wrongly give 10-11.)
    assert due == end_of_local_day_utc(2024, 10, 12)


def test_due_fifteen_calendar_days_rolls_over_national_day(cal: WorkCalendar) -> None:
    # Given a start on 2024-09-20 (Beijing); +15 days = Sat 10-05, a holiday
    # When the 15-day rule is applied
    due = cal.due(ACCEPT_15_D, local_instant(2024, 9, 20))
    # Then it ends on the first working day after the holiday, Tue 2024-10-08
    assert due == end_of_local_day_utc(2024, 10, 8)


def test_due_fifteen_calendar_days_without_roll(cal: WorkCalendar) -> None:
    # Given the same start and a rule with roll_forward=False
    rule = DeadlineRule(15, "calendar_days", roll_forward=False)
    # When / Then the deadline stays on the holiday Sat 2024-10-05
    assert cal.due(rule, local_instant(2024, 9, 20)) == end_of_local_day_utc(2024, 10, 5)


def test_due_sixty_calendar_days_lands_on_makeup_sunday(cal: WorkCalendar) -> None:
    # Given a start on 2023-12-06; +60 days = 25 (to 12-31) + 31 (Jan) + 4 = Sun 2024-02-04,
    # a 调休 make-up working day
    # When the 60-day rule is applied
    due = cal.due(HANDLE_60_D, local_instant(2023, 12, 6))
    # Then no roll happens
    assert due == end_of_local_day_utc(2024, 2, 4)


def test_deadline_rule_validation() -> None:
    # Given invalid rules / When constructed / Then they are refused
    with pytest.raises(ValueError):
        DeadlineRule(0, "working_days")
    with pytest.raises(ValueError):
        DeadlineRule(-1, "calendar_days")
    with pytest.raises(ValueError):
        DeadlineRule(5, "weeks")  # type: ignore[arg-type]
    assert DeadlineRule(0, "calendar_days").length == 0


# -- warn_at -----------------------------------------------------------------------

def test_warn_at_before_days(cal: WorkCalendar) -> None:
    # Given a 15-day deadline due 2024-10-08 end of day (Beijing)
    start = local_instant(2024, 9, 20)
    due = cal.due(ACCEPT_15_D, start)
    # When warning 3 calendar days before
    warn = cal.warn_at(ACCEPT_15_D, start, due, before_days=3)
    # Then the warning is exactly 3 days earlier
    assert warn == end_of_local_day_utc(2024, 10, 5)


def test_warn_at_fraction(cal: WorkCalendar) -> None:
    # Given a start and due instant exactly 10 days apart
    start = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    due = datetime(2024, 3, 11, 0, 0, tzinfo=UTC)
    # When warning at 20 % of the span before the deadline
    warn = cal.warn_at(ACCEPT_15_D, start, due, fraction=0.2)
    # Then the warning is 2 days before due
    assert warn == datetime(2024, 3, 9, 0, 0, tzinfo=UTC)


def test_warn_at_is_never_earlier_than_start(cal: WorkCalendar) -> None:
    # Given a short span and a warning lead longer than the span
    start = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    due = datetime(2024, 3, 3, 0, 0, tzinfo=UTC)
    # When / Then the warning is clamped to the start instant
    assert cal.warn_at(ACCEPT_15_D, start, due, before_days=30) == start
    assert cal.warn_at(ACCEPT_15_D, start, due, fraction=1.0) == start


def test_warn_at_requires_exactly_one_mode(cal: WorkCalendar) -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    due = datetime(2024, 3, 11, tzinfo=UTC)
    # Given neither or both of before_days/fraction / When / Then it is refused
    with pytest.raises(ValueError):
        cal.warn_at(ACCEPT_15_D, start, due)
    with pytest.raises(ValueError):
        cal.warn_at(ACCEPT_15_D, start, due, before_days=1, fraction=0.5)


# -- unknown years -------------------------------------------------------------------

def test_unknown_year_raises_with_year_in_message(cal: WorkCalendar) -> None:
    # Given a year chinesecalendar does not know and no overrides
    # When / Then asking about it raises UnknownCalendarYear (a ValueError) naming the year
    with pytest.raises(UnknownCalendarYear, match="2031") as excinfo:
        cal.is_workday(date(2031, 3, 3))
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.year == 2031
    assert "override" in str(excinfo.value)


def test_counting_into_unknown_year_raises(cal: WorkCalendar) -> None:
    # Given a count from Mon 2026-12-28 that runs past the package's last year (2026):
    # 12-29, 12-30, 12-31 are known, 2027-01-01 is not
    # When / Then it fails loudly instead of guessing
    assert cal.add_working_days(date(2026, 12, 28), 3) == date(2026, 12, 31)
    with pytest.raises(UnknownCalendarYear, match="2027"):
        cal.add_working_days(date(2026, 12, 28), 5)


def test_declared_year_with_overrides_works() -> None:
    # Given 2031 declared complete, with a Wednesday holiday and a Saturday make-up day
    cal = WorkCalendar(
        declared_years=[2031],
        overrides={date(2031, 1, 1): "restday", date(2031, 1, 4): "workday"},
    )
    # When / Then overrides apply and other days follow Mon-Fri
    assert cal.is_restday(date(2031, 1, 1))  # Wed, overridden
    assert cal.is_workday(date(2031, 1, 4))  # Sat, overridden
    assert cal.is_restday(date(2031, 1, 5))  # Sun
    assert cal.is_workday(date(2031, 3, 3))  # Mon
    # And counting works from the rest-day start Wed 01-01: Thu 01-02, Fri 01-03, Sat 01-04
    assert cal.add_working_days(date(2031, 1, 1), 3) == date(2031, 1, 4)
    assert 2031 in cal.known_years() and 2024 in cal.known_years()


def test_declaring_a_known_year_keeps_the_package_data() -> None:
    # Given a year the package knows, also declared by the operator
    cal = WorkCalendar(declared_years=[2024])
    # When / Then the package's holidays and make-up days still apply (declaring only
    # supplies a Mon-Fri default for years the package does not know)
    assert cal.is_restday(date(2024, 10, 1))  # Tue, National Day
    assert cal.is_workday(date(2024, 10, 12))  # Sat, make-up day


def test_override_without_declared_year_covers_only_that_day() -> None:
    # Given an override in 2031 but 2031 not declared
    cal = WorkCalendar(overrides={date(2031, 1, 1): "restday"})
    # When / Then the overridden day answers, any other 2031 day still raises
    assert cal.is_restday(date(2031, 1, 1))
    with pytest.raises(UnknownCalendarYear):
        cal.is_workday(date(2031, 1, 2))


def test_unknown_year_weekends_mode_warns_once_per_year(caplog: pytest.LogCaptureFixture) -> None:
    # Given a calendar that falls back to Mon-Fri for unknown years
    cal = WorkCalendar(unknown_year="weekends")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # When asking about many 2031 days
    assert cal.is_workday(date(2031, 3, 3))  # Mon
    assert cal.is_restday(date(2031, 3, 8))  # Sat
    assert cal.add_working_days(date(2031, 3, 7), 1) == date(2031, 3, 10)  # Fri -> Mon
    # Then exactly one WARNING names the year, with %-style args
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].args == (2031,)
    assert "2031" in records[0].getMessage()
    # And a different unknown year warns once more
    cal.is_workday(date(2032, 3, 3))
    cal.is_workday(date(2032, 3, 4))
    assert [r.args for r in caplog.records if r.name == LOGGER] == [(2031,), (2032,)]


def test_weekends_mode_does_not_warn_for_known_or_declared_years(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given weekends mode with 2031 declared
    cal = WorkCalendar(unknown_year="weekends", declared_years=[2031])
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # When asking about a known and a declared year
    assert cal.is_restday(date(2024, 10, 1))
    assert cal.is_workday(date(2031, 3, 3))
    # Then nothing is logged
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_invalid_override_kind_in_constructor() -> None:
    # Given an override with an unknown kind / When / Then ValueError names the date
    with pytest.raises(ValueError, match="2031-01-01"):
        WorkCalendar(overrides={date(2031, 1, 1): "holiday"})


# -- from_file -------------------------------------------------------------------------

def test_from_file_round_trip(tmp_path) -> None:
    # Given a YAML override file for 2027 (unknown to chinesecalendar 1.11)
    path = tmp_path / "calendar.yaml"
    path.write_text(
        "declared_years: [2027]\n"
        "days:\n"
        "  2027-01-01: restday\n"
        "  2027-02-06: workday\n"
        "  '2027-02-08': restday\n",
        encoding="utf-8",
    )
    # When loading it
    cal = WorkCalendar.from_file(path)
    # Then the overrides and the declared year apply
    assert 2027 in cal.known_years()
    assert cal.is_restday(date(2027, 1, 1))  # Fri, overridden
    assert cal.is_workday(date(2027, 2, 6))  # Sat, overridden
    assert cal.is_restday(date(2027, 2, 8))  # Mon, overridden (quoted key)
    assert cal.is_restday(date(2027, 2, 7))  # Sun, declared year weekend
    assert cal.is_workday(date(2027, 1, 4))  # Mon, declared year weekday


def test_from_file_bad_kind_names_the_date(tmp_path) -> None:
    # Given a YAML file with an unknown day kind
    path = tmp_path / "calendar.yaml"
    path.write_text("declared_years: [2027]\ndays:\n  2027-10-01: holiday\n", encoding="utf-8")
    # When / Then loading fails with a ValueError naming the offending date
    with pytest.raises(ValueError, match="2027-10-01"):
        WorkCalendar.from_file(path)


def test_from_file_bad_date_key(tmp_path) -> None:
    # Given a YAML file whose day key is not a date
    path = tmp_path / "calendar.yaml"
    path.write_text("days:\n  2027-13-01: restday\n", encoding="utf-8")
    # When / Then loading fails with a ValueError naming the key
    with pytest.raises(ValueError, match="2027-13-01"):
        WorkCalendar.from_file(path)
