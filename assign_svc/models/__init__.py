"""assign_svc tables: the directory, routing rules and deadline policies, staff accounts,
cases with their stages, timeline and dossier.  One metadata (``Base``) for all of them."""
from assign_svc.models.base import Base, Outbox, ProcessedMessage
from assign_svc.models.cases import Case, CaseDocument, CaseEvent, CaseStage
from assign_svc.models.directory import (ConfigChange, DeadlinePolicyRow, LeaderRuleRow, Person, RoutingRuleRow,
                                         StaffUser, Unit)

__all__ = ["Base", "Outbox", "ProcessedMessage", "Case", "CaseDocument", "CaseEvent", "CaseStage", "ConfigChange",
           "DeadlinePolicyRow", "LeaderRuleRow", "Person", "RoutingRuleRow", "StaffUser", "Unit"]
