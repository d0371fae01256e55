"""Open311 output: JSON or XML by the path's ``.{format}``, and Open311's error list for every error.

XML follows the GeoReport v2 examples: a plural root (``services``,
``service_requests``, ``errors``, ``service_definition``, ``discovery``) whose
list items are named in the singular (``service``, ``request``, ``error``,
``attribute``, ``value``, ``endpoint``, ``format``); ``null`` is an empty
element and booleans are ``true``/``false``.
"""
from __future__ import annotations

import logging
from typing import Any
from xml.etree import ElementTree as ET

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PREFIX = "/intake/open311/"
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
SINGULAR = {"services": "service", "service_requests": "request", "errors": "error", "endpoints": "endpoint",
            "formats": "format", "attributes": "attribute", "values": "value"}


class Open311Error(HTTPException):
    """An error answered with Open311's list ``[{code, description}]``; one entry per problem."""

    def __init__(self, code: int, descriptions: list[str], headers: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(descriptions))
        self.code = code
        self.descriptions = descriptions
        self.extra_headers = headers or {}


def fail(code: int, *descriptions: str) -> Open311Error:
    return Open311Error(code, list(descriptions))


def field_errors(errors: dict[str, list[str]]) -> Open311Error:
    """400 with one entry per failing parameter: ``"<parameter>: <reasons>"``."""
    return Open311Error(400, [f"{field}: {'; '.join(reasons)}" for field, reasons in errors.items()])


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list):
        item_tag = SINGULAR.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, item_tag), item)
    else:
        element.text = _text(value)


def to_xml(root: str, value: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, value)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="unicode")).encode()


def respond(value: Any, fmt: str, *, root: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``value`` as JSON, or as XML under ``root``."""
    if fmt == "xml":
        return Response(to_xml(root, value), status=status, content_type=XML_TYPE, headers=headers)
    body = current_app.json.dumps(value)
    return Response(body, status=status, content_type=JSON_TYPE, headers=headers)


def _format_of_path() -> str:
    return "xml" if request.path.endswith(".xml") else "json"


def error_response(error: HTTPException) -> Response:
    code = error.code or 500
    headers: dict[str, str] = {}
    if isinstance(error, Open311Error):
        descriptions, headers = error.descriptions, dict(error.extra_headers)
    else:
        data = getattr(error, "data", None) or {}
        message = data.get("message") or error.description or error.name
        if code == 401 and not _presented_key():
            message = "api_key required: send your API key as the api_key form field or query parameter"
        if code >= 500:
            original = getattr(error, "original_exception", None)
            if original is not None:
                log.error("unhandled error on %s %s", request.method, request.path, exc_info=original)
            message = "internal error; the request was not applied"
        descriptions = [str(message)]
        headers.update(data.get("headers") or {})
        if code == 405 and getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(error.valid_methods)
    body = [{"code": code, "description": d} for d in descriptions]
    return respond(body, _format_of_path(), root="errors", status=code, headers=headers)


def _presented_key() -> bool:
    from intake_svc.apikeys import presented_key

    return bool(presented_key())


def install(app: Flask) -> None:
    """Answer errors under ``/intake/open311/`` with Open311's list (JSON or XML); others as before.

    Wraps the app's HTTPException handler (the JSON envelope of ``shared.web``), so it covers
    errors raised by app-wide hooks too: authentication (401), rate limits (429), unmatched
    paths (404), methods (405), body size (413) and unhandled exceptions (500).
    """
    previous = app.error_handler_spec[None][None].get(HTTPException)

    def handle(error: HTTPException):
        if request.path.startswith(PREFIX):
            return error_response(error)
        return previous(error) if previous is not None else error

    app.register_error_handler(HTTPException, handle)
