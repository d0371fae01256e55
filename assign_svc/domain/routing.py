"""Routing (分办): 属地 (the unit whose jurisdiction holds the problem location)
plus 归口 (the department competent for the content category).  Pure Python."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitInfo:
    id: str
    name: str
    kind: str
    level: str
    region_code: str
    categories: tuple[str, ...] = ()


class NoResponsibleUnit(LookupError):
    pass


def route(units: list[UnitInfo], *, region_code: str, category: str) -> UnitInfo:
    """The competent department of the county holding ``region_code`` for ``category``;
    failing that, that county's petition department; failing that, the nearest
    petition department up the region tree."""
    county = region_code[:6]
    in_county = [u for u in units if u.region_code[:6] == county and u.level == "county"]
    for unit in in_county:
        if category in unit.categories:
            return unit
    for prefix in (county, county[:4] + "00", county[:2] + "0000"):
        for unit in units:
            if unit.kind == "petition_dept" and unit.region_code == prefix:
                return unit
    raise NoResponsibleUnit(f"no unit is responsible for region {region_code}, category {category}")
