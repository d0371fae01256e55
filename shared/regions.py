"""Region codes (行政区划代码, GB/T 2260) and jurisdictions.

A 6-digit code is province(2) + prefecture(2) + county(2); the 12-digit
statistical code adds township(3) + village(3).  A jurisdiction is a region
code standing for its whole subtree: ``410000`` is Henan province, ``411300``
the city of Nanyang and everything in it, ``411302`` one district.
``000000`` (or an empty string) is the whole country.
"""
from __future__ import annotations

import re

CODE_RE = re.compile(r"^\d{6}(\d{6})?$")


def is_region_code(code: str) -> bool:
    return bool(CODE_RE.match(code or ""))


def subtree_prefix(code: str) -> str:
    """The prefix every code inside ``code``'s subtree starts with.

    ``410000`` -> ``41``; ``411300`` -> ``4113``; ``411302`` -> ``411302``;
    ``411302001000`` -> ``411302001``; ``000000`` -> ``""`` (everything).
    """
    if not code or set(code) == {"0"}:
        return ""
    if not is_region_code(code):
        raise ValueError(f"not a region code: {code!r}")
    if len(code) == 12:
        if code[6:] == "000000":  # a county written in 12 digits
            return subtree_prefix(code[:6])
        return code[:9] if code[9:] == "000" else code  # a township, or a village
    if code[2:] == "0000":
        return code[:2]
    if code[4:] == "00":
        return code[:4]
    return code


def in_jurisdiction(region_code: str, jurisdiction: str) -> bool:
    """True when ``region_code`` lies inside the subtree of ``jurisdiction``."""
    return (region_code or "").startswith(subtree_prefix(jurisdiction))


def county_of(region_code: str) -> str:
    """The 6-digit county-level code of a 6- or 12-digit code."""
    return region_code[:6]
