"""The directory (组织机构目录): units and people, loaded from YAML or xlsx, edited through the
admin API; every change is a new directory version broadcast as ``directory.changed``."""
from __future__ import annotations

import copy
import functools
import io
from pathlib import Path
from typing import Any, Iterable

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc.domain.leaders import POSTS, PersonInfo
from assign_svc.domain.routing import UnitInfo
from assign_svc.models import Person, Unit
from assign_svc.versions import record_change
from shared import clock
from shared.contracts import DirectoryChanged
from shared.regions import is_region_code
from shared.runtime import ServiceRuntime

DEFAULT_FILE = Path(__file__).parent / "data" / "directory.yaml"

KINDS = ("petition_dept", "bureau", "government", "township", "discipline", "political_legal")
LEVELS = ("province", "city", "county", "township")
UNIT_FIELDS = ("id", "name", "kind", "level", "region_code", "parent", "categories", "peer_group", "contacts", "active",
               "population")
PERSON_FIELDS = ("id", "unit", "name", "post", "title", "leader", "username", "phone", "email", "webhook", "active")


class DirectoryError(ValueError):
    """Bad directory data; ``errors`` maps a record to its problems."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


# ---------------------------------------------------------------- reading files


def read_file(path: Path) -> dict[str, Any]:
    """``{"version", "units", "people"}`` from a .yaml or .xlsx directory file."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return read_xlsx(path.read_bytes())
    raw = copy.deepcopy(_parse_yaml(str(path.resolve()), path.stat().st_mtime_ns))
    return {"version": int(raw.get("version", 1)), "units": raw.get("units") or [], "people": raw.get("people") or []}


@functools.lru_cache(maxsize=4)
def _parse_yaml(path: str, _mtime_ns: int) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the demo file parses 30x faster
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader) or {}


def read_xlsx(data: bytes) -> dict[str, Any]:
    """Sheets ``units`` and ``people`` with a header row of field names; lists are ``、``-separated."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True)
    out: dict[str, Any] = {"version": 0, "units": [], "people": []}
    for sheet in ("units", "people"):
        if sheet not in book.sheetnames:
            continue
        rows = book[sheet].iter_rows(values_only=True)
        header = [str(h).strip() for h in next(rows, ()) if h is not None]
        for row in rows:
            record = {k: v for k, v in zip(header, row, strict=False) if v not in (None, "")}
            if not record:
                continue
            if sheet == "units" and "population" in record:
                try:
                    record["population"] = int(record["population"])
                except (TypeError, ValueError):
                    pass  # left as is: validate() names the bad value
            if "categories" in record:
                record["categories"] = [c for c in str(record["categories"]).replace(",", "、").split("、") if c]
            for key in ("phone", "email", "webhook"):
                if sheet == "units" and key in record:
                    record.setdefault("contacts", {})[key] = str(record.pop(key))
            out[sheet].append({k: (str(v) if k in ("region_code", "id", "parent", "unit", "phone") else v)
                               for k, v in record.items()})
    return out


# ---------------------------------------------------------------- validation


def validate(units: list[dict], people: list[dict], *, known_units: Iterable[str] = ()) -> None:
    errors: dict[str, list[str]] = {}
    ids = {u.get("id") for u in units} | set(known_units)
    for i, u in enumerate(units, start=1):
        key, problems = f"units[{u.get('id') or i}]", []
        for f in ("id", "name", "kind", "level", "region_code"):
            if not u.get(f):
                problems.append(f"{f} is required")
        if u.get("kind") and u["kind"] not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)}")
        if u.get("level") and u["level"] not in LEVELS:
            problems.append(f"level must be one of {', '.join(LEVELS)}")
        if u.get("region_code") and not is_region_code(str(u["region_code"])):
            problems.append("region_code must be a 6- or 12-digit region code")
        if u.get("parent") and u["parent"] not in ids:
            problems.append(f"unknown parent {u['parent']}")
        population = u.get("population")
        if population is not None and (isinstance(population, bool) or not isinstance(population, int)
                                       or population < 0):
            problems.append("population must be a whole number ≥ 0 (resident population)")
        if problems:
            errors[key] = problems
    for i, p in enumerate(people, start=1):
        key, problems = f"people[{p.get('id') or i}]", []
        for f in ("id", "unit", "name", "post"):
            if not p.get(f):
                problems.append(f"{f} is required")
        if p.get("post") and p["post"] not in POSTS:
            problems.append(f"post must be one of {', '.join(POSTS)}")
        if p.get("unit") and p["unit"] not in ids:
            problems.append(f"unknown unit {p['unit']}")
        if problems:
            errors[key] = problems
    if errors:
        raise DirectoryError("the directory data is invalid", errors)


# ---------------------------------------------------------------- writing


def unit_record(u: Unit) -> dict:
    return {"id": u.id, "name": u.name, "kind": u.kind, "level": u.level, "region_code": u.region_code,
            "parent_id": u.parent_id, "categories": list(u.categories or []), "peer_group": u.peer_group,
            "contacts": dict(u.contacts or {}), "active": u.active, "population": u.population,
            "directory_version": u.directory_version}


def person_record(p: Person) -> dict:
    return {"id": p.id, "unit_id": p.unit_id, "name": p.name, "post": p.post, "title": p.title, "leader": p.leader,
            "username": p.username, "phone": p.phone, "email": p.email, "webhook": p.webhook, "active": p.active,
            "directory_version": p.directory_version}


def _apply_unit(row: Unit, data: dict, version: int) -> None:
    row.name, row.kind, row.level = data["name"], data["kind"], data["level"]
    row.region_code, row.parent_id = str(data["region_code"]), data.get("parent")
    row.categories = list(data.get("categories") or [])
    row.peer_group, row.contacts = data.get("peer_group"), dict(data.get("contacts") or {})
    row.active = bool(data.get("active", True))
    row.population = data.get("population")
    row.directory_version = version


def _apply_person(row: Person, data: dict, version: int) -> None:
    row.unit_id, row.name, row.post = data["unit"], data["name"], data["post"]
    row.title, row.leader = data.get("title", ""), bool(data.get("leader", False))
    row.username = data.get("username")
    row.phone, row.email, row.webhook = data.get("phone"), data.get("email"), data.get("webhook")
    row.active = bool(data.get("active", True))
    row.directory_version = version


def upsert(session: Session, runtime: ServiceRuntime, *, units: list[dict], people: list[dict], changed_by: str,
           summary: str, full: bool = False, version: int | None = None) -> int:
    """Write units (parents first) and people as one new directory version; broadcast it."""
    existing_units = set(session.scalars(select(Unit.id)))
    validate(units, people, known_units=existing_units)
    number = record_change(session, kind="directory", changed_by=changed_by, summary=summary, version=version,
                           detail={"units": [u["id"] for u in units][:500], "people": [p["id"] for p in people][:500]})
    unit_rows = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_([u["id"] for u in units])))} \
        if units else {}
    person_rows = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_([p["id"] for p in people])))} \
        if people else {}
    pending = list(units)
    while pending:  # parents before children (the FK is checked on flush)
        ready = [u for u in pending if not u.get("parent") or u["parent"] in existing_units]
        if not ready:
            raise DirectoryError("units form a cycle of parents", {u["id"]: ["parent cycle"] for u in pending})
        ready_ids = {u["id"] for u in ready}
        for data in ready:
            row = unit_rows.get(data["id"]) or Unit(id=data["id"])
            _apply_unit(row, data, number)
            session.add(row)
            unit_rows[data["id"]] = row
            existing_units.add(data["id"])
        pending = [u for u in pending if u["id"] not in ready_ids]
        session.flush()
    for data in people:
        row = person_rows.get(data["id"]) or Person(id=data["id"])
        _apply_person(row, data, number)
        session.add(row)
        person_rows[data["id"]] = row
    session.flush()
    touched_units = [unit_record(unit_rows[u["id"]]) for u in units]
    touched_people = [person_record(person_rows[p["id"]]) for p in people]
    runtime.emit(session, DirectoryChanged(version=number, changed_at=clock.now(), full=full,
                                           units=touched_units, people=touched_people))
    return number


def load_file(session: Session, runtime: ServiceRuntime, path: Path | None = None, *, changed_by: str = "system") -> int:
    data = read_file(path or DEFAULT_FILE)
    return upsert(session, runtime, units=data["units"], people=data["people"], changed_by=changed_by,
                  summary=f"载入目录文件 {Path(path or DEFAULT_FILE).name}", full=True, version=data.get("version"))


def deactivate(session: Session, runtime: ServiceRuntime, *, unit_id: str | None = None, person_id: str | None = None,
               changed_by: str) -> int:
    """Retire a unit or person (kept for history; no longer routed to)."""
    row = session.get(Unit, unit_id) if unit_id else session.get(Person, person_id)
    if row is None:
        raise LookupError(f"unknown {'unit' if unit_id else 'person'} {unit_id or person_id}")
    number = record_change(session, kind="directory", changed_by=changed_by,
                           summary=f"停用 {row.name}", detail={"unit": unit_id, "person": person_id})
    row.active, row.directory_version = False, number
    session.flush()
    runtime.emit(session, DirectoryChanged(
        version=number, changed_at=clock.now(),
        units=[unit_record(row)] if unit_id else [], people=[person_record(row)] if person_id else []))
    return number


# ---------------------------------------------------------------- reading for routing


def unit_infos(session: Session) -> list[UnitInfo]:
    return [UnitInfo(id=u.id, name=u.name, kind=u.kind, level=u.level, region_code=u.region_code,
                     categories=tuple(u.categories or ()), parent_id=u.parent_id)
            for u in session.scalars(select(Unit).where(Unit.active.is_(True)).order_by(Unit.id))]


def person_infos(session: Session) -> list[PersonInfo]:
    return [PersonInfo(id=p.id, unit_id=p.unit_id, name=p.name, post=p.post, leader=p.leader)
            for p in session.scalars(select(Person).where(Person.active.is_(True)).order_by(Person.id))]
