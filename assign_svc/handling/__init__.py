"""The handling workflow's use cases (办理): one ``act`` entry point, handlers by theme."""
from assign_svc.handling.core import BadInput, Conflict, Forbidden, NotFound, act
from assign_svc.handling import closure, processing, receipt  # noqa: E402,F401  (each registers its handlers)

__all__ = ["BadInput", "Conflict", "Forbidden", "NotFound", "act"]
