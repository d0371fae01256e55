"""Ledger import endpoints (/intake/api/v1/imports): upload, summary, error report, template."""
from __future__ import annotations

import io

import marshmallow as ma
from flask import current_app, request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from flask_smorest.fields import Upload
from webargs.flaskparser import FlaskParser
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict

from intake_svc.imports import ledger, report
from intake_svc.imports.columns import template_xlsx
from intake_svc.imports.models import LedgerImport
from shared.auth import current_principal, require_roles
from shared.regions import in_jurisdiction
from shared.web import runtime_of


class _UploadParser(FlaskParser):
    """Reads a multipart upload's form fields along with its files: one documented request body."""

    def load_files(self, req, schema):
        return MultiDictProxy(CombinedMultiDict([req.files, req.form]), schema)


class _Blueprint(Blueprint):
    ARGUMENTS_PARSER = _UploadParser()


blp = _Blueprint("imports", __name__, url_prefix="/intake/api/v1/imports",
                 description="台账批量导入 (bulk import of a legacy ledger, xlsx or csv)")

IMPORT_ROLES = ("registrar",)  # and admin, who always passes
#: Largest ledger upload (bytes), above the app-wide 2 MB; matches nginx's client_max_body_size.
#: ``xinfang import-ledger`` has no limit.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@blp.before_request
def _allow_ledger_sized_uploads():
    if request.method == "POST":  # the upload is the only POST here
        request.max_content_length = MAX_UPLOAD_BYTES


class LedgerUploadSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "the ledger: xlsx (first sheet) or csv (UTF-8 or GB18030)"})
    system = ma.fields.String(validate=ma.validate.Length(1, 64),
                              metadata={"description": "登记系统 for rows that leave it empty"})


class LedgerImportErrorSchema(ma.Schema):
    row = ma.fields.Integer(metadata={"description": "行号: the row number in the sheet"})
    field = ma.fields.String(metadata={"description": "字段: the Chinese column name"})
    reason = ma.fields.String(metadata={"description": "原因"})


class LedgerImportSchema(ma.Schema):
    id = ma.fields.String()
    file_name = ma.fields.String()
    sha256 = ma.fields.String()
    system = ma.fields.String(allow_none=True)
    source = ma.fields.String(metadata={"description": "api | cli"})
    actor = ma.fields.String()
    jurisdiction = ma.fields.String()
    started_at = ma.fields.AwareDateTime()
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    status = ma.fields.String(metadata={"description": "running | completed | failed"})
    rows = ma.fields.Integer(metadata={"description": "data rows in the file (blank rows skipped)"})
    created = ma.fields.Integer(metadata={"description": "petitions registered by this import"})
    existing = ma.fields.Integer(metadata={"description": "rows whose (登记系统, 台账编号) was registered before"})
    failed = ma.fields.Integer(metadata={"description": "rows not imported; see errors.csv"})
    warnings = ma.fields.List(ma.fields.String())
    error_count = ma.fields.Integer()
    errors = ma.fields.List(ma.fields.Nested(LedgerImportErrorSchema),
                            metadata={"description": f"the first {ledger.PREVIEW_ERRORS} errors"})
    imported_before_at = ma.fields.AwareDateTime(allow_none=True,
                                                 metadata={"description": "the same file was imported before"})
    imported_before_id = ma.fields.String(allow_none=True)
    message = ma.fields.String()
    errors_csv = ma.fields.String(metadata={"description": "URL of the full error report (csv)"})
    errors_xlsx = ma.fields.String(metadata={"description": "URL of the full error report (xlsx)"})


def _with_links(summary: dict) -> dict:
    base = f"{blp.url_prefix}/{summary['id']}"
    return {**summary, "errors_csv": f"{base}/errors.csv", "errors_xlsx": f"{base}/errors.xlsx"}


def _load(import_id: str) -> tuple[LedgerImport, dict]:
    runtime = runtime_of(current_app)
    with runtime.read_sessions() as session:
        record = session.get(LedgerImport, import_id)
        if record is None:
            abort(404, message=f"import {import_id} not found")
        principal = current_principal()
        if not in_jurisdiction(record.jurisdiction, principal.jurisdiction):
            abort(403, message=f"import {import_id} was made in {record.jurisdiction}, "
                               f"outside your jurisdiction {principal.jurisdiction}")
        return record, ledger.summary_of(session, record, runtime.settings.timezone)


@blp.route("")
class Imports(MethodView):
    @require_roles(*IMPORT_ROLES)
    @blp.arguments(LedgerUploadSchema, location="files")
    @blp.response(201, LedgerImportSchema)
    @blp.alt_response(413, description=f"larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; "
                                       "use `xinfang import-ledger` (no limit)")
    @blp.alt_response(415, description="not an xlsx or csv file")
    @blp.alt_response(422, description="unreadable file, or required columns missing: nothing imported")
    def post(self, args):
        """Import a ledger (导入台账): every row validated, good rows registered, bad rows reported.

        Rows outside your jurisdiction fail alone.  Importing the same file again creates
        nothing new (the rows count as existing)."""
        upload = args["file"]
        try:
            summary = ledger.run_import(runtime_of(current_app), content=upload.read(),
                                        file_name=upload.filename or "", principal=current_principal(),
                                        default_system=args.get("system"), source="api",
                                        vault=current_app.extensions["xinfang_pii"])
        except ledger.LedgerFileError as exc:
            extra = {"errors": {"files": {"file": [exc.message]}}} if exc.status == 422 else {}
            abort(exc.status, message=exc.message, **extra)
        return _with_links(summary)


@blp.route("/template.xlsx")
class Template(MethodView):
    @blp.response(200, description="the ledger template (台账模板)", content_type=XLSX_TYPE)
    def get(self):
        """The ledger template: every column, required ones in red, one example row."""
        return send_file(io.BytesIO(template_xlsx()), mimetype=XLSX_TYPE, as_attachment=True,
                         download_name="台账导入模板.xlsx")


@blp.route("/<import_id>")
class ImportById(MethodView):
    @require_roles(*IMPORT_ROLES)
    @blp.response(200, LedgerImportSchema)
    def get(self, import_id):
        """The summary of an import."""
        return _with_links(_load(import_id)[1])


@blp.route("/<import_id>/errors.<any(csv, xlsx):ext>")
class ImportErrors(MethodView):
    @require_roles(*IMPORT_ROLES)
    @blp.response(200, description="行号, 字段, 原因 (csv: UTF-8 with BOM)", content_type="text/csv")
    def get(self, import_id, ext):
        """The row-level error report of an import, to download (错误报告)."""
        record, _ = _load(import_id)
        errors = record.errors or []
        data, mimetype = ((report.errors_csv(errors), "text/csv; charset=utf-8") if ext == "csv"
                          else (report.errors_xlsx(errors), XLSX_TYPE))
        return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True,
                         download_name=report.report_name(record.file_name, ext))
