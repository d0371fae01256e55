"""Routing (分办): 属地 (the unit whose jurisdiction holds the problem location) plus
归口 (the department competent for the content category), as ordered rules.  Pure Python.

A rule is data (``RoutingRule``): conditions on the petition and a target strategy.  The
first rule (lowest priority number) whose conditions hold *and* whose target resolves to a
unit wins; a rule whose target finds no unit falls through to the next one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class UnitInfo:
    id: str
    name: str
    kind: str
    level: str
    region_code: str
    categories: tuple[str, ...] = ()
    parent_id: str | None = None


@dataclass(frozen=True)
class PetitionFacts:
    """What routing, leader rules and deadline scopes look at."""

    region_code: str
    category: str
    statutory_type: str | None = None
    purpose: str | None = None
    channel: str | None = None
    legal_litigation: bool = False
    group_visit: bool = False
    cross_level: bool = False
    repeat: bool = False
    urgent: bool = False
    text: str = ""

    @property
    def county(self) -> str:
        return self.region_code[:6]

    @property
    def township_level(self) -> bool:
        return len(self.region_code) == 12 and self.region_code[6:9] != "000"


@dataclass(frozen=True)
class RoutingRule:
    id: str
    priority: int
    name: str
    when: Mapping[str, Any] = field(default_factory=dict)
    target: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "assign"  # assign (交办) | forward (转送) | divert (涉法涉诉)


@dataclass(frozen=True)
class Decision:
    unit: UnitInfo
    rule: RoutingRule

    @property
    def mode(self) -> str:
        return self.rule.mode

    @property
    def in_clock(self) -> bool:
        """涉法涉诉 leaves the petition clock."""
        return self.rule.mode != "divert"


class NoResponsibleUnit(LookupError):
    pass


MODES = ("assign", "forward", "divert")
STRATEGIES = ("competent", "territorial", "kind", "fallback", "unit")
CONDITIONS = ("categories", "statutory_types", "purposes", "legal_litigation", "group_visit", "cross_level",
              "repeat", "urgent", "region_prefix", "township_level")


def matches(when: Mapping[str, Any], facts: PetitionFacts) -> bool:
    """True when every condition of ``when`` holds for ``facts`` (an empty ``when`` always holds)."""
    for key, expected in when.items():
        if key == "categories" and facts.category not in expected:
            return False
        if key == "statutory_types" and facts.statutory_type not in expected:
            return False
        if key == "purposes" and facts.purpose not in expected:
            return False
        if key == "region_prefix" and not facts.region_code.startswith(str(expected)):
            return False
        if key in ("legal_litigation", "group_visit", "cross_level", "repeat", "urgent", "township_level") \
                and bool(getattr(facts, key)) != bool(expected):
            return False
    return True


def _in_county(units: Iterable[UnitInfo], county: str) -> list[UnitInfo]:
    return [u for u in units if u.region_code[:6] == county and u.level == "county"]


def _resolve(target: Mapping[str, Any], units: list[UnitInfo], facts: PetitionFacts) -> UnitInfo | None:
    strategy = target.get("strategy", "competent")
    county = facts.county
    if strategy == "unit":
        return next((u for u in units if u.id == target.get("unit_id")), None)
    if strategy == "competent":
        return next((u for u in _in_county(units, county)
                     if u.kind in ("bureau", "government") and facts.category in u.categories), None)
    if strategy == "territorial":
        township = facts.region_code[:9]
        return next((u for u in units if u.level == "township" and u.region_code[:9] == township), None)
    if strategy == "kind":
        kind = target.get("kind")
        found = next((u for u in _in_county(units, county) if u.kind == kind), None)
        city = county[:4] + "00"
        return found or next((u for u in units if u.kind == kind and u.region_code == city), None)
    if strategy == "fallback":
        for prefix in (county, county[:4] + "00", county[:2] + "0000"):
            found = next((u for u in units if u.kind == "petition_dept" and u.region_code == prefix), None)
            if found:
                return found
        return None
    raise ValueError(f"unknown routing strategy {strategy!r}")


def route(rules: Iterable[RoutingRule], units: list[UnitInfo], facts: PetitionFacts) -> Decision:
    """The responsible unit and the rule that chose it."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if matches(rule.when, facts):
            unit = _resolve(rule.target, units, facts)
            if unit is not None:
                return Decision(unit=unit, rule=rule)
    raise NoResponsibleUnit(f"no unit is responsible for region {facts.region_code}, category {facts.category}")


def validate_rule(rule: Mapping[str, Any]) -> list[str]:
    """Problems with a rule given as data (empty when it is valid)."""
    problems = []
    if rule.get("mode", "assign") not in MODES:
        problems.append(f"mode must be one of {', '.join(MODES)}")
    target = rule.get("target") or {}
    if target.get("strategy", "competent") not in STRATEGIES:
        problems.append(f"target.strategy must be one of {', '.join(STRATEGIES)}")
    if target.get("strategy") == "kind" and not target.get("kind"):
        problems.append("target.kind is required for strategy kind")
    if target.get("strategy") == "unit" and not target.get("unit_id"):
        problems.append("target.unit_id is required for strategy unit")
    unknown = set(rule.get("when") or {}) - set(CONDITIONS)
    if unknown:
        problems.append(f"unknown conditions: {', '.join(sorted(unknown))}")
    return problems
