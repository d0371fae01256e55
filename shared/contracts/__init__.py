"""Versioned message contracts between services (消息契约).

Every message is an ``Envelope`` (type, version, id, occurred_at, producer,
correlation_id, payload).  Each payload type is a frozen dataclass with a
marshmallow schema, registered under ``(type, version)`` together with the
(queue, actor name) pairs that consume it, in one module per producing area.
A producer never imports a consumer: the outbox relay enqueues by those names.

Changing a payload incompatibly means a new version; consumers keep accepting
the old one until every producer has moved.
"""
from shared.contracts.base import (PAYLOADS, ROUTES, Envelope, EnvelopeSchema, PayloadSchema, dump_envelope,
                                   envelope_for, load_envelope, register)
from shared.contracts.cases import CaseActionRecorded, CaseActionRecordedSchema
from shared.contracts.cases import CASE_STATES, CaseAssigned, CaseAssignedSchema, CaseStatusChanged, CaseStatusChangedSchema, comes_after
from shared.contracts.directory import DirectoryChanged, DirectoryChangedSchema
from shared.contracts.findings import FINDING_RULES, FINDING_STATES, LADDER_RUNGS, FindingChanged, FindingChangedSchema
from shared.contracts.notices import (NoticeAcknowledged, NoticeAcknowledgedSchema, NoticeEscalated,
                                     NoticeEscalatedSchema, NoticeRequested, NoticeRequestedSchema)
from shared.contracts.petitions import PetitionRegistered, PetitionRegisteredSchema, RepeatFlagsSchema

__all__ = [
    "PAYLOADS", "ROUTES", "Envelope", "EnvelopeSchema", "PayloadSchema", "dump_envelope", "envelope_for",
    "load_envelope", "register",
    "CASE_STATES", "CaseAssigned", "CaseAssignedSchema", "CaseStatusChanged", "CaseStatusChangedSchema", "comes_after",
    "NoticeRequested", "NoticeRequestedSchema",
    "PetitionRegistered", "PetitionRegisteredSchema", "RepeatFlagsSchema",
    "DirectoryChanged", "DirectoryChangedSchema", "CaseActionRecorded", "CaseActionRecordedSchema",
    "FINDING_RULES", "FINDING_STATES", "LADDER_RUNGS", "FindingChanged", "FindingChangedSchema",
    "NoticeAcknowledged", "NoticeAcknowledgedSchema", "NoticeEscalated", "NoticeEscalatedSchema",
]
