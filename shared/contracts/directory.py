"""Contracts produced by assign_svc about its directory (组织机构目录)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from marshmallow import fields

from shared.contracts.base import PayloadSchema, register


@dataclass(frozen=True, kw_only=True)
class DirectoryChanged:
    """directory.changed v1 — units or people of the directory changed (one directory version).

    ``units``/``people`` carry the full record of each changed entity (id, name, kind, level,
    region_code, parent_id, peer_group, contacts … / id, unit_id, name, post, title, leader,
    phone, email, webhook); ``full`` is true when the message is a complete snapshot.
    Consumers keep their own copy and apply a record only if ``version`` is newer than
    the one they hold for that entity (messages may arrive out of order).
    """

    version: int
    changed_at: datetime
    full: bool = False
    units: list = field(default_factory=list)
    people: list = field(default_factory=list)
    removed_units: list = field(default_factory=list)
    removed_people: list = field(default_factory=list)


class DirectoryChangedSchema(PayloadSchema):
    __payload__ = DirectoryChanged
    version = fields.Integer(required=True, strict=True)
    changed_at = fields.AwareDateTime(required=True)
    full = fields.Boolean(load_default=False)
    units = fields.List(fields.Dict(), load_default=list)
    people = fields.List(fields.Dict(), load_default=list)
    removed_units = fields.List(fields.String(), load_default=list)
    removed_people = fields.List(fields.String(), load_default=list)


register("directory.changed", 1, DirectoryChangedSchema,
         consumers=[("supervise", "supervise.directory_changed"), ("notify", "notify.directory_changed")])
