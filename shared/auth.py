"""Authentication: signed bearer tokens verified by every service.

Staff sign in at ``POST /assign/api/v1/auth/login`` and receive a JWT (HS256,
``XINFANG_SECRET_KEY``) carrying the user, their role and their jurisdiction (a
region code standing for its subtree).  Every service verifies the token
itself; no call to assign_svc is needed.  Health, readiness, metrics, the
OpenAPI document and the interactive docs are open; everything else needs a
token (county systems get API keys at intake).
"""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Callable

import jwt
from flask import g, request
from flask_smorest import abort

from shared import clock
from shared.config import Settings
from shared.regions import in_jurisdiction

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
#: Tolerated difference between the issuer's and the verifier's clocks.
CLOCK_LEEWAY_SECONDS = 60
ISSUER = "xinfang"

#: 管理员, 督查员, 登记员, 承办人, 包案领导, 运维, 县级系统 (a county system's API key)
ROLES = ("admin", "supervisor", "registrar", "handler", "leader", "operator", "county_system")
#: Roles a staff account may have (county systems use API keys, not accounts).
STAFF_ROLES = ROLES[:-1]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a staff user (from a token) or a county system (API key)."""

    user_id: str
    username: str
    role: str
    jurisdiction: str
    unit_id: str | None = None

    def may_see(self, region_code: str) -> bool:
        return in_jurisdiction(region_code, self.jurisdiction)


class InvalidToken(Exception):
    pass


def issue_token(settings: Settings, principal: Principal, *, ttl_seconds: int | None = None) -> str:
    now = clock.now()
    ttl = ttl_seconds if ttl_seconds is not None else settings.token_ttl_seconds
    claims = {**asdict(principal), "sub": principal.user_id, "iss": ISSUER,
              "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=ttl)).timestamp())}
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def verify_token(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss"], "verify_exp": False,
                                     "verify_iat": False})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    # Issue and expiry times are checked against the system clock (which simulation may move),
    # not the machine's: a token issued at simulated time is valid at simulated time.
    now = clock.now().timestamp()
    if claims["exp"] < now:
        raise InvalidToken("token expired")
    if claims["iat"] > now + CLOCK_LEEWAY_SECONDS:
        raise InvalidToken("token issued in the future")
    if claims.get("role") not in ROLES:
        raise InvalidToken("unknown role")
    return Principal(user_id=claims["sub"], username=claims.get("username", ""), role=claims["role"],
                     jurisdiction=claims.get("jurisdiction", ""), unit_id=claims.get("unit_id"))


#: Paths (after the service prefix) open without a token.
OPEN_SUFFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json")
OPEN_PARTS = ("/docs",)


def install(app, settings: Settings, *, prefix: str, open_paths: Iterable[str | re.Pattern] = ()) -> None:
    """Require a valid bearer token on every route of ``app`` except the open ones.

    ``open_paths``: exact paths, or compiled patterns a whole path must match.
    """
    exact = frozenset(p for p in open_paths if isinstance(p, str)) | {prefix + s for s in OPEN_SUFFIXES}
    patterns = tuple(p for p in open_paths if isinstance(p, re.Pattern))

    @app.before_request
    def _authenticate():
        path = request.path
        if (path in exact or any(p.fullmatch(path) for p in patterns)
                or any(path.startswith(prefix + p) for p in OPEN_PARTS)):
            return None
        g.principal = None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            resolver = app.config.get("XINFANG_API_KEY_RESOLVER")
            if resolver is not None:  # e.g. intake's county-system API keys
                principal = resolver(request)
                if principal is not None:
                    g.principal = principal
                    return None
            abort(401, message="missing bearer token", headers={"WWW-Authenticate": 'Bearer realm="xinfang"'})
        try:
            g.principal = verify_token(settings, token.strip())
        except InvalidToken as exc:
            abort(401, message=f"invalid token: {exc}", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None


def current_principal() -> Principal:
    principal = getattr(g, "principal", None)
    if principal is None:
        abort(401, message="authentication required")
    return principal


def require_roles(*roles: str) -> Callable:
    """View decorator: 403 unless the caller has one of ``roles`` (admin always passes)."""

    def decorator(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if principal.role != "admin" and principal.role not in roles:
                abort(403, message=f"role {principal.role!r} may not do this; needs one of {', '.join(roles)}")
            return fn(*args, **kwargs)

        return wrapper

    return decorator


def require_jurisdiction(region_code: str) -> None:
    """403 unless ``region_code`` lies in the caller's jurisdiction."""
    principal = current_principal()
    if not principal.may_see(region_code):
        log.warning("403: %s (%s, jurisdiction %s) tried region %s on %s %s", principal.username, principal.role,
                    principal.jurisdiction, region_code, request.method, request.path)
        abort(403, message=f"region {region_code} is outside your jurisdiction {principal.jurisdiction}")
