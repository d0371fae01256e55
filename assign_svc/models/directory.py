"""The directory (组织机构目录: units, people), staff accounts, and the versioned
configuration: routing rules, leader rules, deadline policies and their change log."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assign_svc.models.base import Base
from shared.db import new_id


class Unit(Base):
    """A unit of the directory (单位): petition department, bureau, government, township …"""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))  # petition_dept | bureau | government | township | discipline | political_legal
    level: Mapped[str] = mapped_column(String(16))  # province | city | county | township
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    categories: Mapped[list] = mapped_column(JSON, default=list)  # 归口: content categories it is competent for
    directory_version: Mapped[int] = mapped_column(Integer, default=1)
    peer_group: Mapped[str | None] = mapped_column(String(64))
    contacts: Mapped[dict | None] = mapped_column(JSON)  # phone, email, webhook
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    population: Mapped[int | None] = mapped_column(Integer)  # resident population of its region (万人比)


class Person(Base):
    """A person of the directory with a post (职务); leaders may own cases (包案领导)."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    post: Mapped[str] = mapped_column(String(32))  # party_secretary | head | deputy | office_director | handler
    title: Mapped[str] = mapped_column(String(64), default="")
    leader: Mapped[bool] = mapped_column(Boolean, default=False)
    username: Mapped[str | None] = mapped_column(String(64), index=True)  # staff account, when the person logs in
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(128))
    webhook: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    directory_version: Mapped[int] = mapped_column(Integer, default=1)


class StaffUser(Base):
    """A staff account (工作人员), kept with the directory's people."""

    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class RoutingRuleRow(Base):
    """A routing rule (分办规则); edits write a new configuration version."""

    __tablename__ = "routing_rules"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    when: Mapped[dict] = mapped_column(JSON, default=dict)
    target: Mapped[dict] = mapped_column(JSON, default=dict)
    mode: Mapped[str] = mapped_column(String(16), default="assign")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class LeaderRuleRow(Base):
    """A leader-ownership rule (包案规则)."""

    __tablename__ = "leader_rules"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    when: Mapped[dict] = mapped_column(JSON, default=dict)
    leader: Mapped[dict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class DeadlinePolicyRow(Base):
    """One version of a deadline policy (期限规则).  Edits add a version; stages point at the row they used."""

    __tablename__ = "deadline_policies"
    __table_args__ = (UniqueConstraint("code", "version", name="uq_deadline_policies_code_version"),
                      Index("ix_deadline_policies_step_active", "step", "active"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(32))
    start_event: Mapped[str] = mapped_column(String(64), default="")
    length: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))  # calendar_days | working_days
    roll_forward: Mapped[bool] = mapped_column(Boolean, default=True)
    basis: Mapped[str] = mapped_column(String(256))
    level: Mapped[str | None] = mapped_column(String(16))
    statutory_type: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32))
    purpose: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    region_prefix: Mapped[str | None] = mapped_column(String(12))
    topic_keywords: Mapped[list] = mapped_column(JSON, default=list)
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    warn_before_days: Mapped[int | None] = mapped_column(Integer)
    warn_fraction: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class ConfigChange(Base):
    """The change log of the directory and the rules: each change is one version of its kind."""

    __tablename__ = "config_changes"
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_config_changes_kind_version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # directory | routing | deadlines
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
