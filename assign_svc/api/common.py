"""What the views share: the runtime, and domain errors mapped to the JSON error envelope."""
from __future__ import annotations

import contextlib
from typing import Iterator

from flask import current_app
from flask_smorest import abort
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from assign_svc.directory import DirectoryError
from assign_svc.handling import BadInput, Conflict, Forbidden, NotFound
from assign_svc.rules import RuleError
from shared.runtime import ServiceRuntime
from shared.web import runtime_of


def runtime() -> ServiceRuntime:
    return runtime_of(current_app)


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """Translate use-case errors (raised after the transaction rolled back) into HTTP errors."""
    try:
        yield
    except NotFound as exc:
        abort(404, message=str(exc))
    except Forbidden as exc:
        abort(403, message=str(exc))
    except Conflict as exc:
        abort(409, message=str(exc), errors={"allowed_actions": exc.allowed})
    except (BadInput, DirectoryError, RuleError) as exc:
        errors = exc.errors if "json" in exc.errors else {"json": exc.errors}
        abort(422, message=str(exc), errors=errors)
    except (StaleDataError, IntegrityError) as exc:
        abort(409, message=f"the case was changed by someone else at the same time; reload and retry "
                           f"({type(exc).__name__})")
    except OperationalError as exc:
        if "could not serialize" in str(exc) or "deadlock" in str(exc):
            abort(409, message="a concurrent change won; reload and retry")
        raise
