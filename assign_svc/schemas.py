"""marshmallow schemas of assign_svc's HTTP API (input and output)."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from assign_svc.domain.workflow import ACTIONS


class StrictSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class StageSchema(Schema):
    id = fields.String()
    kind = fields.String()
    unit_id = fields.String()
    policy_code = fields.String()
    policy_version = fields.Integer()
    started_at = fields.AwareDateTime()
    length = fields.Integer()
    length_unit = fields.String()
    extension_days = fields.Integer()
    paused_days = fields.Integer()
    paused_at = fields.AwareDateTime(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    warn_at = fields.AwareDateTime(allow_none=True)
    basis = fields.String()
    provisional = fields.Boolean()
    closed_at = fields.AwareDateTime(allow_none=True)
    outcome = fields.String(allow_none=True)


class CaseSchema(Schema):
    id = fields.String()
    petition_id = fields.String()
    display_no = fields.String()
    unit_id = fields.String()
    region_code = fields.String()
    category = fields.String()
    status = fields.String()
    assigned_at = fields.AwareDateTime()
    due_at = fields.AwareDateTime()
    deadline_basis = fields.String()
    mode = fields.String()
    in_clock = fields.Boolean()
    leader_id = fields.String(allow_none=True)
    row_version = fields.Integer()
    resolution = fields.String(allow_none=True, metadata={"description": "resolved (化解) / replied (办结) once closed"})


class CaseDetailSchema(CaseSchema):
    statutory_type = fields.String(allow_none=True)
    purpose = fields.String(allow_none=True)
    channel = fields.String(allow_none=True)
    flags = fields.Dict(allow_none=True)
    petitioner_name = fields.String(allow_none=True)
    request_text = fields.String(allow_none=True)
    leader_basis = fields.String(allow_none=True)
    routing_rule_id = fields.String(allow_none=True)
    routing_version = fields.Integer(allow_none=True)
    directory_version = fields.Integer(allow_none=True)
    route_override_reason = fields.String(allow_none=True)
    registered_by = fields.String(allow_none=True, metadata={"description": "谁登记"})
    assigned_by = fields.String(allow_none=True, metadata={"description": "谁交办"})
    reviewed_by = fields.String(allow_none=True, metadata={"description": "谁审核"})
    extension = fields.Dict(allow_none=True)
    opinion = fields.Dict(allow_none=True)
    service = fields.Dict(allow_none=True)
    evaluations = fields.Dict(allow_none=True)
    closure = fields.Dict(allow_none=True)
    review = fields.Dict(allow_none=True)
    cessation = fields.Dict(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    stages = fields.List(fields.Nested(StageSchema))
    allowed_actions = fields.List(fields.String())
    evaluation_state = fields.String(metadata={"description": "待评价 / 已评价 / 超期未评价 / 未评价 / 不适用 (检举控告类)"})


class CaseQuerySchema(StrictSchema):
    petition_id = fields.String()
    unit_id = fields.String()
    status = fields.String()


class EventSchema(Schema):
    seq = fields.Integer()
    action = fields.String()
    label = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor_name = fields.String()
    actor_role = fields.String()
    at = fields.AwareDateTime()
    reason = fields.String()
    data = fields.Dict()
    text = fields.String(metadata={"description": "可读的一行记录（北京时间）"})


class CommitmentSchema(StrictSchema):
    content = fields.String(required=True, validate=validate.Length(1, 500))
    due_date = fields.Date(required=True)


class ActionSchema(StrictSchema):
    """Fields of every action; each action uses its own (see the action's description)."""

    expected_version = fields.Integer(strict=True, metadata={"description": "the case's row_version you saw (409 if it moved)"})
    reason = fields.String(validate=validate.Length(max=2000))
    unit_id = fields.String(metadata={"description": "reroute: the new unit"})
    mode = fields.String(validate=validate.OneOf(["assign", "forward", "divert"]))
    due_days = fields.Integer(strict=True, validate=validate.Range(1, 90), metadata={"description": "reroute: 交办 deadline"})
    leader_id = fields.String()
    reason_code = fields.String()
    explanation = fields.String()
    days = fields.Integer(strict=True, metadata={"description": "request_extension: ≤ 30"})
    outcome = fields.String()
    facts = fields.String()
    basis = fields.String()
    conclusion = fields.String()
    commitments = fields.List(fields.Nested(CommitmentSchema))
    method = fields.String()
    signed_on = fields.Date()
    refused = fields.Boolean()
    witness = fields.String()
    target = fields.String()
    grade = fields.String()
    summary = fields.String()
    checklist = fields.Dict(keys=fields.String(), values=fields.Boolean())
    opinion = fields.String()
    statement = fields.String()
    served_on = fields.Date()
    index = fields.Integer(strict=True, metadata={"description": "fulfil_commitment: which commitment (0-based)"})
    truth = fields.String(metadata={"description": "issue_opinion / issue_finding: 属实 / 部分属实 / 不属实"})
    adoption = fields.String(metadata={"description": "reply (建议意见类): 采纳 / 部分采纳 / 未采纳"})
    resolved = fields.Boolean(metadata={"description": "submit_closure, decide_review, decide_recheck, terminate: "
                                                       "the matter was substantively resolved (化解)"})
    resolution_reason = fields.String(validate=validate.Length(max=2000),
                                      metadata={"description": "how it was resolved (required with resolved)"})
    confirm_resolved = fields.Boolean(metadata={"description": "final sign_off: the petition department confirms "
                                                               "the declared 化解 (default true)"})


ACTION_NAMES = tuple(ACTIONS)


class DocumentSchema(Schema):
    id = fields.String()
    doc_type = fields.String()
    title = fields.String()
    filename = fields.String()
    media_type = fields.String()
    created_at = fields.AwareDateTime()
    created_by = fields.String()


class DossierSchema(Schema):
    documents = fields.List(fields.Nested(DocumentSchema))
    missing = fields.List(fields.String())
    missing_titles = fields.List(fields.String())


class UnitSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    level = fields.String(required=True)
    region_code = fields.String(required=True)
    parent_id = fields.String(allow_none=True)
    categories = fields.List(fields.String())
    peer_group = fields.String(allow_none=True)
    contacts = fields.Dict(allow_none=True)
    active = fields.Boolean()
    population = fields.Integer(allow_none=True, metadata={"description": "resident population (万人比)"})
    directory_version = fields.Integer(dump_only=True)


class UnitInSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 128))
    kind = fields.String(required=True)
    level = fields.String(required=True)
    region_code = fields.String(required=True)
    parent = fields.String(allow_none=True)
    categories = fields.List(fields.String(), load_default=list)
    peer_group = fields.String(allow_none=True)
    contacts = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    active = fields.Boolean(load_default=True)
    population = fields.Integer(strict=True, allow_none=True, load_default=None, validate=validate.Range(min=0),
                                metadata={"description": "resident population of the unit's region (万人比)"})


class PersonSchema(Schema):
    id = fields.String()
    unit_id = fields.String()
    name = fields.String()
    post = fields.String()
    title = fields.String()
    leader = fields.Boolean()
    username = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    webhook = fields.String(allow_none=True)
    active = fields.Boolean()
    directory_version = fields.Integer()


class PersonInSchema(StrictSchema):
    unit = fields.String(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 64))
    post = fields.String(required=True)
    title = fields.String(load_default="")
    leader = fields.Boolean(load_default=False)
    username = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.Email(allow_none=True)
    webhook = fields.Url(allow_none=True)
    active = fields.Boolean(load_default=True)


class PeopleQuerySchema(StrictSchema):
    unit_id = fields.String()
    leader = fields.Boolean()


class VersionSchema(Schema):
    version = fields.Integer()
    kind = fields.String()
    changed_at = fields.AwareDateTime()
    changed_by = fields.String()
    summary = fields.String()


class RoutingRuleSchema(StrictSchema):
    id = fields.String(dump_only=True)
    priority = fields.Integer(required=True, strict=True)
    name = fields.String(required=True)
    when = fields.Dict(load_default=dict)
    target = fields.Dict(load_default=dict)
    mode = fields.String(load_default="assign")
    active = fields.Boolean(load_default=True)
    version = fields.Integer(dump_only=True)


class PolicySchema(StrictSchema):
    id = fields.String(dump_only=True)
    code = fields.String(dump_only=True)
    version = fields.Integer(dump_only=True)
    step = fields.String(required=True)
    start_event = fields.String(load_default="")
    length = fields.Integer(required=True, strict=True)
    unit = fields.String(required=True)
    roll_forward = fields.Boolean(load_default=True)
    basis = fields.String(required=True)
    level = fields.String(allow_none=True)
    statutory_type = fields.String(allow_none=True, validate=validate.OneOf(["申诉求决类", "建议意见类", "检举控告类"]))
    category = fields.String(allow_none=True)
    purpose = fields.String(allow_none=True)
    channel = fields.String(allow_none=True)
    region_prefix = fields.String(allow_none=True)
    topic_keywords = fields.List(fields.String(), load_default=list)
    local = fields.Boolean(load_default=False)
    warn_before_days = fields.Integer(allow_none=True, strict=True)
    warn_fraction = fields.Float(allow_none=True)
    active = fields.Boolean(load_default=True)


class RecomputeSchema(StrictSchema):
    repick = fields.Boolean(load_default=False)


class BatchQuerySchema(StrictSchema):
    unit_id = fields.String(required=True)
    date = fields.Date(required=True)
