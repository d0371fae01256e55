"""intake_svc actors (queue ``intake``): the periodic sweep."""
from __future__ import annotations

from shared.runtime import ServiceRuntime
from shared.sweeps import declare_sweep


def register(runtime: ServiceRuntime) -> None:
    declare_sweep(runtime)
