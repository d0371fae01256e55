"""Input and output schemas of the petition API."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from intake_svc.codes import CATEGORIES, CHANNELS


class PetitionInSchema(Schema):
    """Registration of a petition (登记)."""

    system = fields.String(required=True, validate=validate.Length(1, 64),
                           metadata={"description": "registering county system id (登记系统)"})
    county_no = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64),
                              metadata={"description": "the county system's own case number"})
    channel = fields.String(load_default="网上信访", validate=validate.OneOf(CHANNELS))
    region_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}(\d{6})?$",
                                error="must be a 6-digit GB/T 2260 or 12-digit statistical region code"),
                                metadata={"description": "problem location (问题属地)"})
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES),
                             metadata={"description": "content category (内容分类), first level"})
    request_text = fields.String(required=True, validate=validate.Length(1, 5000),
                                 metadata={"description": "the petitioner's request (诉求)"})
    petitioner_name = fields.String(required=True, validate=validate.Length(1, 64))


class PetitionOutSchema(Schema):

    id = fields.String(dump_only=True)
    display_no = fields.String(dump_only=True)
    system = fields.String()
    county_no = fields.String(allow_none=True)
    channel = fields.String()
    region_code = fields.String()
    category = fields.String()
    request_text = fields.String()
    petitioner_name = fields.String()
    registered_at = fields.AwareDateTime()
    registered_by = fields.String()
    existing = fields.Boolean(dump_only=True, metadata={
        "description": "true when this (system, county_no) was registered before and is returned, not created"})
