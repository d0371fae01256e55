"""Thin views of assign_svc: login, cases and their handling, the directory and its admin."""
from assign_svc.api.admin import admin_blp
from assign_svc.api.auth import LOGIN_PATH, auth_blp
from assign_svc.api.cases import batches_blp, cases_blp
from assign_svc.api.directory import people_blp, units_blp

BLUEPRINTS = [auth_blp, cases_blp, batches_blp, units_blp, people_blp, admin_blp]

__all__ = ["BLUEPRINTS", "LOGIN_PATH", "admin_blp", "auth_blp", "batches_blp", "cases_blp", "people_blp", "units_blp"]
