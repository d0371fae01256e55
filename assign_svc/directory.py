"""The directory (组织机构目录): loading units from a YAML file into assign_svc's tables."""
from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc.domain.routing import UnitInfo
from assign_svc.models import Unit

DEFAULT_FILE = Path(__file__).parent / "data" / "directory.yaml"

REQUIRED = ("id", "name", "kind", "level", "region_code")


class DirectoryError(ValueError):
    pass


def read_directory(path: Path) -> tuple[int, list[dict]]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    units = raw.get("units") or []
    for index, unit in enumerate(units, start=1):
        missing = [key for key in REQUIRED if not unit.get(key)]
        if missing:
            raise DirectoryError(f"{path}: unit #{index} lacks {', '.join(missing)}")
    return int(raw.get("version", 1)), units


def load_directory(session: Session, path: Path | None = None) -> int:
    """Upsert the units of the directory file (parents first).  Returns how many units."""
    version, units = read_directory(path or DEFAULT_FILE)
    existing = {u.id: u for u in session.scalars(select(Unit))}
    for unit in units:
        row = existing.get(unit["id"]) or Unit(id=unit["id"])
        row.name, row.kind, row.level = unit["name"], unit["kind"], unit["level"]
        row.region_code, row.parent_id = str(unit["region_code"]), unit.get("parent")
        row.categories = list(unit.get("categories") or [])
        row.directory_version = version
        session.add(row)
    session.flush()
    return len(units)


def unit_infos(session: Session) -> list[UnitInfo]:
    return [UnitInfo(id=u.id, name=u.name, kind=u.kind, level=u.level, region_code=u.region_code,
                     categories=tuple(u.categories or ())) for u in session.scalars(select(Unit).order_by(Unit.id))]
