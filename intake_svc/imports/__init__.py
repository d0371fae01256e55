"""Bulk import of a legacy ledger (台账批量导入): xlsx or csv, one petition per row.

Parse the file, validate every row with ``PetitionInSchema``, register the valid
rows one transaction each, and keep a row-level error report (行号, 字段, 原因).
The column map is in ``columns.py``; ``GET /intake/api/v1/imports/template.xlsx``
and ``template_xlsx()`` give the template.  Used by ``api.py`` (upload endpoint)
and by ``xinfang import-ledger`` (command).

This package's ``__init__`` stays import-free: ``intake_svc.models`` imports
``intake_svc.imports.models`` so that Alembic sees the ``imports`` table.
"""
