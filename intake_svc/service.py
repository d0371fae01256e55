"""Intake use cases.  Plain functions with an explicit session; they never commit."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from intake_svc.models import DisplaySequence, Petition
from shared import clock
from shared.calendar import local_date
from shared.contracts import PetitionRegistered
from shared.runtime import ServiceRuntime


@dataclass(frozen=True)
class Registration:
    petition: Petition
    existing: bool


def next_display_no(session: Session, region_code: str, tz: str) -> str:
    """``{region6}{YYYYMMDD}{seq}``: unique, gap-tolerant, one counter per region and local day."""
    region6, day = region_code[:6], local_date(clock.now(), tz).strftime("%Y%m%d")
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = DisplaySequence.__table__
    stmt = (dialect_insert(table).values(region6=region6, day=day, last=1)
            .on_conflict_do_update(index_elements=["region6", "day"], set_={"last": table.c.last + 1})
            .returning(table.c.last))
    seq = session.execute(stmt).scalar_one()
    return f"{region6}{day}{seq:04d}"


def register_petition(session: Session, runtime: ServiceRuntime, *, data: dict, registered_by: str) -> Registration:
    """Register a petition and announce it (petition.registered), in the caller's transaction.

    A resend of the same (system, county_no) returns the existing petition.
    """
    county_no = data.get("county_no")
    if county_no:
        found = session.scalar(select(Petition).where(Petition.system == data["system"],
                                                      Petition.county_no == county_no))
        if found is not None:
            return Registration(found, existing=True)
    petition = Petition(**data, registered_at=clock.now(), registered_by=registered_by,
                        display_no=next_display_no(session, data["region_code"], runtime.settings.timezone))
    session.add(petition)
    session.flush()
    runtime.emit(session, PetitionRegistered(
        petition_id=petition.id, display_no=petition.display_no, system=petition.system,
        county_no=petition.county_no, region_code=petition.region_code, category=petition.category,
        channel=petition.channel, request_text=petition.request_text,
        petitioner_name=petition.petitioner_name, registered_at=petition.registered_at, flags={}))
    return Registration(petition, existing=False)


def get_petition(session: Session, petition_id: str) -> Petition | None:
    return session.get(Petition, petition_id)
