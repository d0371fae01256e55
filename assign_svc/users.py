"""Staff accounts (工作人员账号) and login."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from assign_svc.models import StaffUser, Unit
from shared import clock
from shared.auth import ROLES, Principal
from shared.regions import is_region_code

#: Minimum password length for staff accounts.
MIN_PASSWORD_LENGTH = 10


class UserError(ValueError):
    """Bad account data; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def create_user(session: Session, *, username: str, password: str, role: str, jurisdiction: str,
                display_name: str = "", unit_id: str | None = None) -> StaffUser:
    if not username or len(username) > 64:
        raise UserError("username", "1 to 64 characters")
    if session.scalar(select(StaffUser).where(StaffUser.username == username)) is not None:
        raise UserError("username", f"{username!r} already exists")
    if role not in ROLES:
        raise UserError("role", f"must be one of {', '.join(ROLES)}")
    if jurisdiction != "000000" and not is_region_code(jurisdiction):
        raise UserError("jurisdiction", "must be a region code (000000 = whole country)")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    if unit_id is not None and session.get(Unit, unit_id) is None:
        raise UserError("unit_id", f"unknown unit {unit_id!r}")
    user = StaffUser(username=username, display_name=display_name or username,
                     password_hash=generate_password_hash(password), role=role, jurisdiction=jurisdiction,
                     unit_id=unit_id, active=True, created_at=clock.now())
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, *, username: str, password: str) -> Principal | None:
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        return None
    return Principal(user_id=user.id, username=user.username, role=user.role,
                     jurisdiction=user.jurisdiction, unit_id=user.unit_id)
