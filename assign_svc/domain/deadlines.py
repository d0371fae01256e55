"""Deadline policies (期限规则) as data, and the clock of one case stage.  Pure Python.

A policy names its step (受理告知, 办理, 交办 …), start event, length, unit (calendar or
working days), whether a last day on a rest day rolls forward, its legal basis, and its
scope (level, statutory type, category, purpose, channel, region prefix, topic keywords).  Statutory
defaults have no scope; a local policy whose scope matches overrides them — the most
specific match wins (longest region prefix, then the most scope fields).

A stage's deadline = the policy's length + an approved extension + the days it spent
paused (待补充材料: the clock stops), counted from the stage's start under Civil Code
rules by ``shared.calendar.WorkCalendar``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from assign_svc.domain.routing import PetitionFacts
from shared.calendar import DeadlineRule, WorkCalendar, local_date

STEPS = ("register_route", "acceptance_notice", "objection", "handling", "assigned", "review_request",
         "review_decision", "recheck_request", "recheck_decision", "evaluation")

#: Shown with a deadline that fell in a year without an official holiday schedule.
PROVISIONAL_NOTE = "（{year}年法定节假日安排尚未录入，暂按周末推算，请核对）"

#: The longest extension (延期) the regulation allows, calendar days (Art. 34).
MAX_EXTENSION_DAYS = 30


@dataclass(frozen=True)
class Policy:
    id: str
    code: str
    version: int
    step: str
    length: int
    unit: str
    basis: str
    roll_forward: bool = True
    start_event: str = ""
    level: str | None = None
    category: str | None = None
    purpose: str | None = None
    channel: str | None = None
    region_prefix: str | None = None
    topic_keywords: tuple[str, ...] = ()
    local: bool = False
    warn_before_days: int | None = None
    warn_fraction: float | None = None
    statutory_type: str | None = None  # 申诉求决类 / 建议意见类 / 检举控告类

    def applies(self, facts: PetitionFacts, level: str | None) -> bool:
        if self.level and self.level != level:
            return False
        if self.statutory_type and self.statutory_type != facts.statutory_type:
            return False
        if self.category and self.category != facts.category:
            return False
        if self.purpose and self.purpose != facts.purpose:
            return False
        if self.channel and self.channel != facts.channel:
            return False
        if self.region_prefix and not facts.region_code.startswith(self.region_prefix):
            return False
        if self.topic_keywords and not any(k in facts.text for k in self.topic_keywords):
            return False
        return True

    @property
    def specificity(self) -> tuple[int, int]:
        fields = (self.level, self.statutory_type, self.category, self.purpose, self.channel,
                  self.topic_keywords or None)
        return len(self.region_prefix or ""), sum(1 for f in fields if f)

    def rule(self, *, extra: int = 0) -> DeadlineRule:
        return DeadlineRule(length=self.length + extra, unit=self.unit, roll_forward=self.roll_forward,
                            basis=self.basis)


class NoPolicy(LookupError):
    pass


def select_policy(policies: Iterable[Policy], step: str, facts: PetitionFacts, *, level: str | None = None) -> Policy:
    """The policy in force for ``step``: the most specific one whose scope matches."""
    candidates = [p for p in policies if p.step == step and p.applies(facts, level)]
    if not candidates:
        raise NoPolicy(f"no deadline policy for step {step}")
    return max(candidates, key=lambda p: (p.specificity, p.local, p.version))


@dataclass(frozen=True)
class StageClock:
    """What a stage's deadline is computed from (kept on the stage, so the policy version sticks)."""

    started_at: datetime
    length: int
    unit: str
    roll_forward: bool
    basis: str
    extension_days: int = 0
    paused_days: int = 0
    warn_before_days: int | None = None
    warn_fraction: float | None = None


@dataclass(frozen=True)
class Deadline:
    due_at: datetime
    warn_at: datetime | None
    basis: str
    provisional: bool


def compute(calendar: WorkCalendar, clock: StageClock, *, tz: str) -> Deadline:
    """The stage's due and warning instants; ``provisional`` when the calendar does not know a year."""
    rule = DeadlineRule(length=clock.length + clock.extension_days + clock.paused_days, unit=clock.unit,
                        roll_forward=clock.roll_forward, basis=clock.basis)
    due_at = calendar.due(rule, clock.started_at, tz=tz)
    warn_at = None
    if clock.warn_before_days is not None:
        warn_at = calendar.warn_at(rule, clock.started_at, due_at, before_days=clock.warn_before_days)
    elif clock.warn_fraction is not None:
        warn_at = calendar.warn_at(rule, clock.started_at, due_at, fraction=clock.warn_fraction)
    known = calendar.known_years()
    years = {local_date(clock.started_at, tz).year, local_date(due_at, tz).year}
    unknown = sorted(y for y in years if y not in known)
    basis = clock.basis + (PROVISIONAL_NOTE.format(year="、".join(map(str, unknown))) if unknown else "")
    return Deadline(due_at=due_at, warn_at=warn_at, basis=basis, provisional=bool(unknown))


def paused_length(calendar: WorkCalendar, unit: str, paused_at: datetime, resumed_at: datetime, *, tz: str) -> int:
    """How many days (in the stage's unit) a pause lasted: whole local days between pause and resume."""
    start, end = local_date(paused_at, tz), local_date(resumed_at, tz)
    if unit == "working_days":
        return calendar.working_days_between(start, end)
    return max(0, (end - start).days)
