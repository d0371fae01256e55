"""Configuration versions (版本): the directory, the routing rules and the deadline policies each
count their changes; every change writes one ``ConfigChange`` row with who, when and what."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assign_svc.models import ConfigChange
from shared import clock

KINDS = ("directory", "routing", "deadlines")


def current_versions(session: Session) -> dict[str, int]:
    rows = session.execute(select(ConfigChange.kind, func.max(ConfigChange.version)).group_by(ConfigChange.kind))
    versions = {kind: 0 for kind in KINDS}
    versions.update({kind: int(v) for kind, v in rows})
    return versions


def versions_with(session: Session, extra) -> tuple[dict[str, int], object]:
    """``current_versions`` and the value of the scalar subquery ``extra`` in one round trip (the
    routing actor asks for the case already made from a petition with it)."""
    rows = session.execute(select(ConfigChange.kind, func.max(ConfigChange.version), extra)
                           .group_by(ConfigChange.kind)).all()
    if not rows:  # nothing configured yet: no row carries ``extra``
        return {kind: 0 for kind in KINDS}, session.scalar(select(extra))
    versions = {kind: 0 for kind in KINDS}
    versions.update({kind: int(v) for kind, v, _ in rows})
    return versions, rows[0][2]


def record_change(session: Session, *, kind: str, changed_by: str, summary: str, detail: dict | None = None,
                  version: int | None = None) -> int:
    """Write the next version of ``kind`` (or ``version`` if given and newer); returns it."""
    if kind not in KINDS:
        raise ValueError(f"unknown configuration kind {kind!r}")
    latest = current_versions(session)[kind]
    number = max(latest + 1, version or 0)
    session.add(ConfigChange(kind=kind, version=number, changed_at=clock.now(), changed_by=changed_by,
                             summary=summary, detail=detail or {}))
    session.flush()
    return number


def history(session: Session, kind: str, *, limit: int = 100) -> list[ConfigChange]:
    stmt = (select(ConfigChange).where(ConfigChange.kind == kind).order_by(ConfigChange.version.desc())
            .limit(limit))
    return list(session.scalars(stmt))
