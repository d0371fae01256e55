"""The import (台账导入): read the file, validate every row, register the valid ones.

Each valid row is registered in its own transaction (``register_petition``), so a
bad row never leaves anything half-written and one failure never undoes the
good rows.  A row whose (登记系统, 台账编号) is already registered counts as
"existing": importing the same file again creates nothing.  The run is recorded
in ``imports`` with its totals and the row-level error report.
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from intake_svc import service
from intake_svc.imports.columns import BY_HEADER, HEADER_OF_KEY, CellError, convert
from intake_svc.imports.models import LedgerImport
from intake_svc.imports.reader import LedgerFileError, read_ledger
from intake_svc.pii import PiiVault
from intake_svc.schemas import PetitionInSchema
from shared import clock
from shared.auth import Principal
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

__all__ = ["LedgerFileError", "error_report", "run_import", "summary_of"]

WHOLE_ROW = "（整行）"
SPECIAL_FIELDS = {"petitioners": "信访人姓名", "petitioners.0": "身份证号/联系电话/住址代码", "_schema": WHOLE_ROW}
REQUIRED_MESSAGES = {"Missing data for required field.", "Field may not be null."}
#: Chinese glosses for marshmallow's own messages (the project's validators already carry one).
GLOSSES = (("Must be one of", "取值无效"), ("Length must be", "长度不符"), ("Shorter than", "长度不符"),
           ("Longer than", "长度不符"), ("Not a valid", "格式错误"), ("Must be greater", "超出范围"),
           ("Must be less", "超出范围"), ("Must be between", "超出范围"))
PREVIEW_ERRORS = 100

Progress = Callable[[int], Callable[[], None]]  # called with the row count; returns "one more row done"


def run_import(runtime: ServiceRuntime, *, content: bytes, file_name: str, principal: Principal,
               default_system: str | None = None, source: str = "api", vault: PiiVault | None = None,
               progress: Progress | None = None) -> dict:
    """Import a ledger file and return its summary.  Raises LedgerFileError (nothing stored) for a bad file."""
    sheet = read_ledger(file_name, content, need_system=not default_system)
    vault = vault or PiiVault(runtime.settings)
    with runtime.uow() as session:
        record = LedgerImport(file_name=(file_name or "ledger")[-255:], sha256=hashlib.sha256(content).hexdigest(),
                              system=default_system, source=source, jurisdiction=principal.jurisdiction or "000000",
                              actor=(principal.username or principal.user_id)[:64], started_at=clock.now(),
                              status="running", errors=[], warnings=sheet.warnings)
        session.add(record)
    tally: Counter[str] = Counter()
    errors: list[dict] = []
    seen: dict[tuple, int] = {}
    schema = PetitionInSchema()
    tick = progress(len(sheet.rows)) if progress else None
    status = "failed"
    try:
        for number, row in sheet.rows:
            outcome, problems = _import_row(runtime, vault, principal, schema, row, default_system, seen, number)
            tally[outcome] += 1
            errors.extend({"row": number, "field": f, "reason": r} for f, r in problems)
            if tick:
                tick()
        status = "completed"
    finally:  # an interrupted run is recorded as failed, with what it did so far
        with runtime.uow() as session:
            record = session.get(LedgerImport, record.id)
            record.status, record.finished_at, record.errors = status, clock.now(), errors
            record.total_rows, record.created = sum(tally.values()), tally["created"]
            record.existing, record.failed = tally["existing"], tally["failed"]
    with runtime.read_sessions() as session:
        return summary_of(session, session.get(LedgerImport, record.id), runtime.settings.timezone)


def _import_row(runtime, vault, principal, schema, row, default_system, seen, number) -> tuple[str, list]:
    data, problems = build_data(row, default_system=default_system, tz=runtime.settings.timezone)
    key = (data.get("system"), data.get("county_no"))
    if all(key):
        if key in seen:
            problems.append(("台账编号", f"the same 台账编号 as row {seen[key]} of this file "
                                        f"(与第{seen[key]}行的台账编号重复)"))
        else:
            seen[key] = number
    unreadable = {f for f, _ in problems}
    try:
        loaded = schema.load(data)
    except ValidationError as exc:
        problems += [(f, r) for f, r in flatten_errors(exc.messages) if f not in unreadable]
    if problems:
        return "failed", problems
    if not principal.may_see(loaded["region_code"]):
        return "failed", [("问题属地", f"region {loaded['region_code']} is outside your jurisdiction "
                                    f"{principal.jurisdiction} (403 超出管辖范围)")]
    try:
        return ("existing" if _register(runtime, vault, principal, loaded) else "created"), []
    except SQLAlchemyError as exc:
        # the driver's message only: SQLAlchemy's own text would carry the row's values (personal data)
        log.error("ledger row %s could not be stored: %s: %s", number, type(exc).__name__, getattr(exc, "orig", ""))
        return "failed", [(WHOLE_ROW, f"could not be stored ({type(exc).__name__}); import the file again "
                                      "(存储失败，请重新导入)")]


def _register(runtime: ServiceRuntime, vault: PiiVault, principal: Principal, data: dict) -> bool:
    """Register one row in its own transaction; True when it was registered before."""
    for attempt in (1, 2):
        try:
            with runtime.uow() as session:
                return service.register_petition(session, runtime, data=data, principal=principal,
                                                 vault=vault).existing
        except IntegrityError:  # the same number committed concurrently: the second pass finds it
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def build_data(row: dict[str, object], *, default_system: str | None, tz: str) -> tuple[dict, list]:
    """The registration data of a row (what ``PetitionInSchema`` loads) and the cells that cannot be read."""
    data: dict = {}
    person: dict = {}
    problems: list[tuple[str, str]] = []
    for header, value in row.items():
        column = BY_HEADER[header]
        try:
            converted = convert(column, value, tz)
        except CellError as exc:
            problems.append((header, str(exc)))
            continue
        if converted is None:
            continue
        if column.key.startswith("petitioners.0."):
            person[column.key.rsplit(".", 1)[1]] = converted
        else:
            data[column.key] = converted
    if person:
        data["petitioners"] = [person]
    if not data.get("system") and default_system:
        data["system"] = default_system
    if not data.get("system"):
        problems.append(("登记系统", "required: fill it in or give a default system (登记系统必填)"))
    if not data.get("county_no") and "台账编号" not in {f for f, _ in problems}:
        problems.append(("台账编号", "required, so that importing again creates nothing twice (台账编号必填)"))
    return data, problems


def flatten_errors(messages, path: str = "") -> Iterator[tuple[str, str]]:
    """marshmallow's nested messages as (Chinese column name, reason) pairs."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from flatten_errors(value, f"{path}.{key}" if path else str(key))
        return
    for message in messages if isinstance(messages, list) else [messages]:
        if isinstance(message, (dict, list)):
            yield from flatten_errors(message, path)
            continue
        text = "required (必填)" if message in REQUIRED_MESSAGES else str(message)
        gloss = next((zh for en, zh in GLOSSES if text.startswith(en)), None)
        yield (HEADER_OF_KEY.get(path) or SPECIAL_FIELDS.get(path) or path,
               f"{text} ({gloss})" if gloss else text)


def error_report(runtime: ServiceRuntime, import_id: str) -> list[dict]:
    """The whole row-level error report of an import."""
    with runtime.read_sessions() as session:
        record = session.get(LedgerImport, import_id)
        return list(record.errors or []) if record else []


def previous_import(session, record: LedgerImport) -> LedgerImport | None:
    """The latest earlier import of the same file (same sha256)."""
    return session.scalars(select(LedgerImport)
                           .where(LedgerImport.sha256 == record.sha256, LedgerImport.id != record.id,
                                  LedgerImport.started_at <= record.started_at)
                           .order_by(LedgerImport.started_at.desc()).limit(1)).first()


def summary_of(session, record: LedgerImport, tz: str = "Asia/Shanghai") -> dict:
    before = previous_import(session, record)
    message = (f"{record.total_rows} rows: {record.created} created, {record.existing} existing "
               f"(already registered), {record.failed} failed")
    if record.status != "completed":
        message = f"{record.status}: {message}"
    if before is not None:
        at = before.started_at.astimezone(ZoneInfo(tz)).isoformat(sep=" ", timespec="minutes")
        message += f"; this file was imported before at {at} (import {before.id})"
    return {
        "id": record.id, "file_name": record.file_name, "sha256": record.sha256, "system": record.system,
        "source": record.source, "actor": record.actor, "jurisdiction": record.jurisdiction,
        "started_at": record.started_at, "finished_at": record.finished_at, "status": record.status,
        "rows": record.total_rows, "created": record.created, "existing": record.existing, "failed": record.failed,
        "warnings": record.warnings or [], "error_count": len(record.errors or []),
        "errors": (record.errors or [])[:PREVIEW_ERRORS],
        "imported_before_at": before.started_at if before else None, "imported_before_id": before.id if before else None,
        "message": message,
    }
