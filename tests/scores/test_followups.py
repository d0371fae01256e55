"""Follow-up calls (回访): findings they open, dedupe, and the worklist rule."""
from __future__ import annotations

import hashlib

from supervise_svc.scores import SETTINGS_KEY
from supervise_svc.scores.domain import load_settings
from tests.scores.conftest import bj, freeze

T1 = "411302001000"
URL = "/supervise/api/v1/cases/{}/followups"


def call(sup, case_id, **body):
    payload = {"at": "2026-11-02T09:00:00+08:00", "method": "电话回访", "reached": True, **body}
    return sup.client.post(URL.format(case_id), json=payload, headers=sup.headers(username="督查员甲"))


def test_dissatisfied_and_not_carried_out_open_findings_once_per_cycle(sup_on):
    sup_on.directory()
    case_id = sup_on.case(T1, registered_at=bj(2026, 10, 1), closed_at=bj(2026, 10, 20), cycle=2, status="closed")

    first = call(sup_on, case_id, satisfied="不满意", carried_out=False, remarks="承诺的维修没有做")
    again = call(sup_on, case_id, satisfied="不满意", carried_out=False, method="上门回访")

    assert first.status_code == 201, first.json
    assert len(first.json["findings"]) == 2 and again.status_code == 201 and again.json["findings"] == []
    found = sorted((f.rule, f.subject_kind, f.subject_id, f.cycle, f.evidence["source"]) for f in sup_on.findings())
    assert found == [("dissatisfied", "case", case_id, "c2", "followup"),
                     ("not_carried_out", "case", case_id, "c2", "followup")]
    listed = sup_on.client.get(URL.format(case_id), headers=sup_on.headers(role="leader"))
    assert listed.status_code == 200
    assert [(c["method"], c["caller"], c["satisfied"]) for c in listed.json] == [
        ("电话回访", "督查员甲", "不满意"), ("上门回访", "督查员甲", "不满意")]


def test_a_satisfied_call_opens_nothing_and_bad_calls_are_refused(sup):
    sup.directory()
    closed = sup.case(T1, closed_at=bj(2026, 10, 20))
    open_case = sup.case(T1)

    assert call(sup, closed, satisfied="满意", carried_out=True).json["findings"] == []
    assert sup.findings() == []
    assert call(sup, open_case, satisfied="满意").status_code == 422
    bad = call(sup, closed, reached=False, satisfied="满意")
    assert bad.status_code == 422 and "reached" in bad.json["errors"]
    assert call(sup, closed, method="微信").status_code == 422
    assert call(sup, "nope").status_code == 404
    outside = sup.client.post(URL.format(closed), json={"at": "2026-11-02T09:00:00+08:00", "method": "电话回访",
                                                         "reached": False},
                              headers=sup.headers(jurisdiction="411303"))
    assert outside.status_code == 403


def _sampled(percent: float, want: bool, stem: str) -> str:
    """A case id whose sha256 bucket (first 8 hex digits mod 10,000) is / is not below ``percent``%."""
    for i in range(10000):
        case_id = f"{stem}{i:04d}"
        bucket = int(hashlib.sha256(case_id.encode()).hexdigest()[:8], 16) % 10000
        if (bucket < percent * 100) == want:
            return case_id
    raise AssertionError("no id found")


def test_the_worklist_rule(sup):
    # Given the rule: 3 days after closure, within 90 days; all 农村农业 and 申诉求决类; else a 20% sample;
    # at most 3 unreached attempts.
    sup.directory()
    sup.runtime.extras[SETTINGS_KEY] = load_settings()
    freeze(bj(2026, 11, 10))
    listed = sup.case(T1, category="农村农业", statutory_type="建议意见类", closed_at=bj(2026, 11, 1))
    appeal = sup.case(T1, statutory_type="申诉求决类", closed_at=bj(2026, 11, 2))
    too_recent = sup.case(T1, category="农村农业", closed_at=bj(2026, 11, 8))
    too_old = sup.case(T1, category="农村农业", closed_at=bj(2026, 7, 1))
    not_closed = sup.case(T1, category="农村农业")
    in_sample = sup.case(T1, statutory_type="建议意见类", closed_at=bj(2026, 11, 3),
                         case_id=_sampled(20, True, "smpl"))
    out_sample = sup.case(T1, statutory_type="建议意见类", closed_at=bj(2026, 11, 3),
                          case_id=_sampled(20, False, "smpl"))
    litigation = sup.case(T1, category="农村农业", closed_at=bj(2026, 11, 1), legal_litigation=True)
    reached = sup.case(T1, category="农村农业", closed_at=bj(2026, 11, 1))
    unreached_twice = sup.case(T1, category="农村农业", closed_at=bj(2026, 11, 1))
    unreached_thrice = sup.case(T1, category="农村农业", closed_at=bj(2026, 11, 1))
    other_county = sup.case("411303001000", category="农村农业", closed_at=bj(2026, 11, 1))
    assert call(sup, reached, reached=True, satisfied="满意").status_code == 201
    for _ in range(2):
        assert call(sup, unreached_twice, reached=False).status_code == 201
    for _ in range(3):
        assert call(sup, unreached_thrice, reached=False).status_code == 201

    r = sup.client.get("/supervise/api/v1/followups/worklist", headers=sup.headers(jurisdiction="411302"))

    assert r.status_code == 200
    got = {item["case_id"]: (item["attempts"], item["reason"]) for item in r.json}
    assert got == {listed: (0, "内容分类 农村农业 全部回访"), appeal: (0, "申诉求决类 全部回访"),
                   in_sample: (0, "抽样回访（20%）"), unreached_twice: (2, "内容分类 农村农业 全部回访")}
    for absent in (too_recent, too_old, not_closed, out_sample, litigation, other_county):
        assert absent not in got
