"""Leader ownership (领导包案): which leader owns a case, by rule.  Pure Python."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from assign_svc.domain.routing import PetitionFacts, UnitInfo, matches

#: Posts (职务) of the directory's people.
POSTS = ("party_secretary", "head", "deputy", "office_director", "handler")
#: Where a leader rule looks for the leader.
LEADER_UNITS = ("handling_unit", "county_government", "city_government")


@dataclass(frozen=True)
class PersonInfo:
    id: str
    unit_id: str
    name: str
    post: str
    leader: bool = False


@dataclass(frozen=True)
class LeaderRule:
    id: str
    priority: int
    name: str
    when: Mapping[str, Any] = field(default_factory=dict)
    leader: Mapping[str, Any] = field(default_factory=dict)


def _unit_for(where: str, handling: UnitInfo, units: Iterable[UnitInfo]) -> UnitInfo | None:
    if where == "handling_unit":
        return handling
    county = handling.region_code[:6]
    region = county if where == "county_government" else county[:4] + "00"
    level = "county" if where == "county_government" else "city"
    return next((u for u in units if u.kind == "government" and u.level == level and u.region_code == region), None)


def owning_leader(rules: Iterable[LeaderRule], units: list[UnitInfo], people: list[PersonInfo],
                  handling: UnitInfo, facts: PetitionFacts) -> tuple[PersonInfo, LeaderRule] | None:
    """The first rule that matches and names an existing leader; None if no rule finds one."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if not matches(rule.when, facts):
            continue
        unit = _unit_for(rule.leader.get("unit", "handling_unit"), handling, units)
        if unit is None:
            continue
        post = rule.leader.get("post", "head")
        person = next((p for p in people if p.unit_id == unit.id and p.post == post and p.leader), None)
        if person is not None:
            return person, rule
    return None
