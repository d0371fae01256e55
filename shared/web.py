"""What every service's Flask app has in common.

``make_service_app`` builds the Flask app of one service under its own path
prefix (``/intake``, ``/assign``, …): the flask-smorest API with its OpenAPI
document at ``/<service>/openapi.json`` and interactive docs at
``/<service>/docs`` (Swagger UI served locally, no CDN), health and readiness,
Prometheus metrics, the correlation id, bearer-token authentication and one
JSON error envelope for every error:

    {"code": 422, "status": "Unprocessable Entity", "message": "...",
     "errors": {"json": {"field": ["reason"]}}, "correlation_id": "..."}
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Iterable

import marshmallow as ma
from flask import Flask, Response, g, jsonify, request, send_from_directory
from flask_smorest import Api, Blueprint
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException

from shared import auth
from shared.jsoncodec import FastJSONProvider
from shared.observability import (CORRELATION_HEADER, exposition_registry, get_correlation_id, reset_correlation_id,
                                  set_correlation_id)
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: Largest request body accepted (bytes); larger bodies get 413.
MAX_CONTENT_LENGTH = 2 * 1024 * 1024


class ErrorSchema(ma.Schema):
    """The error envelope of every xinfang service."""

    code = ma.fields.Integer(metadata={"description": "HTTP status code"})
    status = ma.fields.String(metadata={"description": "HTTP status name"})
    message = ma.fields.String(metadata={"description": "What went wrong, for a human"})
    errors = ma.fields.Dict(metadata={"description": "Field-level errors: location -> field -> reasons"})
    correlation_id = ma.fields.String(metadata={"description": "Quote this id when reporting the problem"})


class ServiceApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        payload, code, headers = super().handle_http_exception(error)
        if code >= 500:
            original = getattr(error, "original_exception", None)
            if original is not None:
                log.error("unhandled error on %s %s", request.method, request.path, exc_info=original)
            payload.setdefault("message", "internal error; the request was not applied")
        elif "message" not in payload and error.description:
            payload["message"] = error.description
        payload["correlation_id"] = get_correlation_id()
        return payload, code, headers


def _swagger_assets() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def make_service_app(runtime: ServiceRuntime, *, title: str, blueprints: Iterable[Blueprint],
                     description: str = "", open_paths: Iterable[str | re.Pattern] = (),
                     extra_security: dict[str, dict] | None = None) -> Flask:
    """The Flask app of one service; ``extra_security`` adds schemes accepted besides bearer tokens."""
    name = runtime.name
    prefix = f"/{name}"
    app = Flask(f"xinfang.{name}")
    app.config.update(
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=prefix,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"{prefix}/docs-assets/",
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {"securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}, **(extra_security or {})}},
            "security": [{"bearerAuth": []}] + [{name: []} for name in (extra_security or {})],
        },
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        JSON_AS_ASCII=False,
    )
    app.json = FastJSONProvider(app)  # orjson (shared.jsoncodec); non-ASCII as it is
    app.extensions["xinfang_runtime"] = runtime
    api = ServiceApi(app)
    for bp in blueprints:
        api.register_blueprint(bp)
    _add_operational_routes(app, runtime, prefix)
    _add_request_hooks(app, runtime)
    auth.install(app, runtime.settings, prefix=prefix, open_paths=open_paths)
    return app


#: Highest page number a paginated list accepts (larger values would overflow database integers).
MAX_PAGE = 1_000_000


def check_page(pagination_parameters) -> None:
    """422 for a page beyond ``MAX_PAGE`` (flask-smorest bounds the page size, not the page)."""
    if pagination_parameters.page > MAX_PAGE:
        from flask_smorest import abort

        abort(422, message="page out of range", errors={"query": {"page": [f"must be at most {MAX_PAGE}"]}})


def runtime_of(app: Flask) -> ServiceRuntime:
    return app.extensions["xinfang_runtime"]


def _add_operational_routes(app: Flask, runtime: ServiceRuntime, prefix: str) -> None:
    assets = _swagger_assets()

    @app.get(f"{prefix}/docs-assets/<path:filename>")
    def swagger_assets(filename: str):
        return send_from_directory(assets, filename)

    @app.get(f"{prefix}/healthz")
    def healthz():
        return jsonify(status="alive", service=runtime.name)

    @app.get(f"{prefix}/readyz")
    def readyz():
        checks: dict[str, str] = {}
        for part, check in (("database", runtime.check_database), ("broker", runtime.check_broker)):
            try:
                check()
                checks[part] = "ok"
            except Exception as exc:  # report, don't crash: readiness is a question
                checks[part] = f"unreachable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return jsonify(status="ready" if ready else "not ready", service=runtime.name, checks=checks), (200 if ready else 503)

    @app.get(f"{prefix}/metrics")
    def metrics():
        return Response(generate_latest(exposition_registry(runtime.metrics)), mimetype=CONTENT_TYPE_LATEST)


def _add_request_hooks(app: Flask, runtime: ServiceRuntime) -> None:
    metrics = runtime.metrics

    @app.before_request
    def _start():
        g.cid_token = set_correlation_id(request.headers.get(CORRELATION_HEADER))
        g.started = time.monotonic()

    @app.after_request
    def _finish(response):
        response.headers[CORRELATION_HEADER] = get_correlation_id()
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(runtime.name, request.method, endpoint, str(response.status_code)).inc()
        if "started" in g:
            metrics.request_seconds.labels(runtime.name, endpoint).observe(time.monotonic() - g.started)
        return response

    @app.teardown_request
    def _reset(_exc):
        token = g.pop("cid_token", None)
        if token is not None:
            try:
                reset_correlation_id(token)
            except ValueError:
                pass
