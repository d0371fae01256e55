"""The handling workflow over HTTP: every path to closure, review and termination; 409 on illegal
transitions (listing the allowed actions), 403 outside the unit or jurisdiction, clear 4xx on bad input."""
from __future__ import annotations

import io
from datetime import date, timedelta

from docx import Document

from tests.assign.conftest import beijing, freeze

UNIT = "411302-zjj"
OPINION = {"outcome": "支持", "truth": "属实", "facts": "经现场核查，外墙空鼓脱落属实", "basis": "《物业管理条例》第五十五条",
           "conclusion": "由物业服务企业限期维修", "commitments": [{"content": "完成外墙维修", "due_date": "2025-12-31"}]}
CHECKS = {"procedure_correct": True, "every_request_answered": True, "reasonableness_judged": True}


def handler(assign):
    return assign.unit(UNIT)


def head(assign):
    return assign.unit(UNIT, "leader")


DEPT = {"role": "registrar", "jurisdiction": "411302", "unit_id": "411302-xfj", "username": "wancheng-xfj"}
CITY = {"role": "registrar", "jurisdiction": "411300", "unit_id": "411300-xfj", "username": "nanyang-xfj"}


def ok(r, status=None):
    assert r.status_code == 200, r.json
    if status:
        assert r.json["status"] == status, r.json["status"]
    return r.json


def to_handling(assign, case_id):
    ok(assign.act(case_id, "sign", **handler(assign)), "已签收待办理")
    ok(assign.act(case_id, "accept", **handler(assign)), "已受理待送达")
    return ok(assign.act(case_id, "serve", {"method": "邮寄送达", "signed_on": "2025-09-22"}, **handler(assign)),
              "办理中")


def to_served(assign, case_id):
    to_handling(assign, case_id)
    ok(assign.act(case_id, "issue_opinion", OPINION, **handler(assign)), "已处理待送达")
    return ok(assign.act(case_id, "serve", {"method": "直接送达", "signed_on": "2025-09-22"}, **handler(assign)),
              "已送达待评价")


def to_closed(assign, case_id):
    to_served(assign, case_id)
    for target in ("petition_dept", "handling_unit"):
        ok(assign.act(case_id, "evaluate", {"target": target, "grade": "满意"}, **handler(assign)))
    ok(assign.act(case_id, "submit_closure", {"summary": "外墙已维修", "checklist": CHECKS}, **handler(assign)))
    ok(assign.act(case_id, "sign_off", {"opinion": "同意结案"}, **head(assign)), "已送达待评价")
    return ok(assign.act(case_id, "sign_off", {}, **DEPT), "已办结")


def documents(assign, case_id) -> dict:
    r = assign.client.get(f"/assign/api/v1/cases/{case_id}/documents", headers=assign.admin())
    assert r.status_code == 200
    return r.json


def test_a_case_goes_from_assignment_to_closure_with_its_dossier(assign):
    # Given a case assigned to the housing bureau
    case_id = assign.register()
    # When the unit takes it through every step
    closed = to_closed(assign, case_id)
    # Then it is closed, reviewed by the petition department, and who/when/why is recorded
    assert closed["closed_at"] and closed["reviewed_by"] == "wancheng-xfj"
    assert [s["role"] for s in closed["closure"]["signoffs"]] == ["unit_head", "petition_dept"]
    assert closed["closure"]["perfunctory"] is False
    # And the dossier holds every required document and nothing is missing
    dossier = documents(assign, case_id)
    titles = {d["title"] for d in dossier["documents"]}
    assert {"信访事项受理告知书", "信访事项处理意见书", "送达回证", "满意度评价表", "结案报告"} <= titles
    assert dossier["missing"] == []
    # And the opinion is a printable Chinese .docx naming the outcome and the commitment
    opinion = next(d for d in dossier["documents"] if d["doc_type"] == "opinion")
    r = assign.client.get(f"/assign/api/v1/cases/{case_id}/documents/{opinion['id']}", headers=assign.admin())
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    text = "\n".join(p.text for p in Document(io.BytesIO(r.data)).paragraphs)
    assert "信访事项处理意见书" in text and "处理意见：支持" in text and "完成外墙维修（2025-12-31 前落实）" in text
    # And the timeline reads in Chinese, one line per action
    events = assign.client.get(f"/assign/api/v1/cases/{case_id}/timeline", headers=assign.admin()).json
    assert [e["action"] for e in events] == ["assign", "sign", "accept", "serve", "issue_opinion", "serve", "evaluate",
                                             "evaluate", "submit_closure", "sign_off", "sign_off"]
    assert events[2]["text"] == f"2025年09月22日 10:00 handler-{UNIT}：受理，已签收待办理 → 已受理待送达"
    # And every action is an event, every transition a case.status_changed (intake learns it is closed)
    assert len([m for m in assign.outbox("case.action_recorded") if m["payload"]["case_id"] == case_id]) == 11
    changes = [m["payload"] for m in assign.outbox("case.status_changed") if m["payload"]["case_id"] == case_id]
    assert [c["status"] for c in changes] == ["待签收", "已签收待办理", "已受理待送达", "办理中", "已处理待送达",
                                              "已送达待评价", "已办结"]
    assert changes[-1]["resolved"] is True and changes[-1]["final"] is False


def test_an_illegal_action_is_409_and_says_what_is_allowed(assign):
    case_id = assign.register()
    r = assign.act(case_id, "accept", **handler(assign))
    assert r.status_code == 409
    assert r.json["errors"]["allowed_actions"] == ["sign", "object", "reroute", "assign_leader", "refuse_repeat",
                                                   "terminate"]
    assert "待签收" in r.json["message"] and "受理" in r.json["message"]
    # Service of an opinion that was not issued yet is refused the same way
    to_handling(assign, case_id)
    r = assign.act(case_id, "serve", {"method": "直接送达", "signed_on": "2025-09-22"}, **handler(assign))
    assert r.status_code == 409 and "issue_opinion" in r.json["errors"]["allowed_actions"]
    assert assign.act(case_id, "fly", **handler(assign)).status_code == 409


def test_actions_outside_the_unit_or_jurisdiction_are_403(assign):
    case_id = assign.register()
    # another unit's handler, a petition department elsewhere, a handler doing the head's job
    assert assign.act(case_id, "sign", **assign.unit("411302-rsj")).status_code == 403
    assert assign.act(case_id, "sign", **assign.unit("411303-zjj")).status_code == 403
    r = assign.act(case_id, "reroute", {"unit_id": "411303-zjj", "reason": "x"}, role="registrar",
                   jurisdiction="411303")
    assert r.status_code == 403 and "jurisdiction" in r.json["message"]
    assert assign.client.get(f"/assign/api/v1/cases/{case_id}",
                             headers=assign.headers(role="supervisor", jurisdiction="411303")).status_code == 403
    to_handling(assign, case_id)
    ok(assign.act(case_id, "request_extension", {"days": 10, "reason": "需要补充调查"}, **handler(assign)))
    assert assign.act(case_id, "approve_extension", **handler(assign)).status_code == 403
    assert assign.case(case_id)["status"] == "延期申请"


def test_extension_once_at_most_30_days_approved_by_the_head(assign):
    case_id = assign.register()
    before = to_handling(assign, case_id)
    handling_due = next(s for s in before["stages"] if s["kind"] == "handling")["due_at"]
    # Beyond the limit, or without reasons: 422
    r = assign.act(case_id, "request_extension", {"days": 31, "reason": "x"}, **handler(assign))
    assert r.status_code == 422 and "days" in r.json["errors"]["json"]
    assert assign.act(case_id, "request_extension", {"days": 10}, **handler(assign)).status_code == 422
    # Requested: the head is asked (延期待审批 notice)
    ok(assign.act(case_id, "request_extension", {"days": 30, "reason": "涉及多部门会商"}, **handler(assign)), "延期申请")
    pending = [m["payload"] for m in assign.outbox("notice.requested")
               if m["payload"]["notice_type"] == "extension_pending"]
    assert pending and pending[0]["recipient_id"] == f"{UNIT}-p2"  # the bureau's head
    # Approved: the handling stage moves by 30 days and the 延期告知书 is produced
    after = ok(assign.act(case_id, "approve_extension", **head(assign)), "已延期")
    moved = next(s for s in after["stages"] if s["kind"] == "handling")
    assert moved["extension_days"] == 30 and moved["due_at"] > handling_due
    assigned = next(s for s in after["stages"] if s["kind"] == "assigned")
    assert assigned["extension_days"] == 30 and after["due_at"] == assigned["due_at"]  # 交办 leads the headline
    assert "extension_notice" in {d["doc_type"] for d in documents(assign, case_id)["documents"]}
    # A second extension: refused
    assert assign.act(case_id, "request_extension", {"days": 5, "reason": "再延"}, **handler(assign)).status_code == 409


def test_pause_stops_the_clock_and_resume_restarts_it(assign):
    case_id = assign.register()
    before = to_handling(assign, case_id)
    due = {s["kind"]: s["due_at"] for s in before["stages"] if s["closed_at"] is None}
    # When the case waits 10 days for supplementary material
    paused = ok(assign.act(case_id, "pause", {"reason": "待信访人补充产权证明"}, **handler(assign)), "待补充材料")
    assert all(s["due_at"] is None for s in paused["stages"] if s["closed_at"] is None and s["kind"] == "handling")
    freeze(beijing(2025, 10, 2))
    resumed = ok(assign.act(case_id, "resume", **handler(assign)), "办理中")
    # Then its deadlines moved by the 10 days paused (and rolled where needed)
    stage = next(s for s in resumed["stages"] if s["kind"] == "handling")
    assert stage["paused_days"] == 10
    from datetime import datetime
    assert datetime.fromisoformat(stage["due_at"]) - datetime.fromisoformat(due["handling"]) >= timedelta(days=10)


def test_service_needs_sane_dates_and_a_witness_for_a_refusal(assign):
    case_id = assign.register()
    to_handling(assign, case_id)
    ok(assign.act(case_id, "issue_opinion", OPINION, **handler(assign)))
    tomorrow = (date(2025, 9, 23)).isoformat()
    r = assign.act(case_id, "serve", {"method": "直接送达", "signed_on": tomorrow}, **handler(assign))
    assert r.status_code == 422 and "future" in str(r.json["errors"])
    r = assign.act(case_id, "serve", {"method": "直接送达", "signed_on": "2025-09-21"}, **handler(assign))
    assert r.status_code == 422 and "before" in str(r.json["errors"])  # before the opinion was issued
    r = assign.act(case_id, "serve", {"method": "留置送达", "signed_on": "2025-09-22", "refused": True}, **handler(assign))
    assert r.status_code == 422 and "witness" in r.json["errors"]["json"]
    served = ok(assign.act(case_id, "serve", {"method": "留置送达", "signed_on": "2025-09-22", "refused": True,
                                              "witness": "村委会主任 李四"}, **handler(assign)), "已送达待评价")
    assert served["service"]["opinion"]["witness"] == "村委会主任 李四"
    assert {"review_request", "evaluation"} <= {s["kind"] for s in served["stages"] if s["closed_at"] is None}
    # A commitment due in the past and a bad outcome are refused at issue time
    other = assign.register()
    to_handling(assign, other)
    bad = {**OPINION, "commitments": [{"content": "x", "due_date": "2025-01-01"}]}
    assert assign.act(other, "issue_opinion", bad, **handler(assign)).status_code == 422
    assert assign.act(other, "issue_opinion", {**OPINION, "outcome": "同意"}, **handler(assign)).status_code == 422


def test_objection_goes_back_to_the_petition_department_which_reroutes(assign):
    case_id = assign.register()
    r = assign.act(case_id, "object", {}, **handler(assign))
    assert r.status_code == 422  # reasons are required
    ok(assign.act(case_id, "object", {"reason": "系劳动报酬争议，属人社部门职责"}, **handler(assign)), "退回")
    returned = [m["payload"] for m in assign.outbox("notice.requested")
                if m["payload"]["notice_type"] == "objection_returned"]
    assert returned[0]["recipient_id"] == "411302-xfj"
    # The petition department reroutes with a reason and its own deadline: 谁交办 is recorded
    r = assign.act(case_id, "reroute", {"unit_id": "411302-rsj", "reason": "改派人社局", "due_days": 20}, **DEPT)
    case = ok(r, "待签收")
    assert (case["unit_id"], case["assigned_by"], case["route_override_reason"]) == ("411302-rsj", "wancheng-xfj",
                                                                                     "改派人社局")
    assigned = next(s for s in case["stages"] if s["kind"] == "assigned" and s["closed_at"] is None)
    assert assigned["length"] == 20 and assigned["unit_id"] == "411302-rsj"
    notices = [m["payload"]["dedupe_key"] for m in assign.outbox("notice.requested")
               if m["payload"]["notice_type"] == "assignment" and m["payload"]["subject_id"] == case_id]
    assert notices == [f"assignment:{case_id}:unit:{UNIT}:1", f"assignment:{case_id}:unit:411302-rsj:2"]
    assert "assignment_sheet" in {d["doc_type"] for d in documents(assign, case_id)["documents"]}


def test_objection_after_5_working_days_is_refused(assign):
    case_id = assign.register()  # Monday 09-22: the window ends Sunday 09-28 (a make-up working day)
    freeze(beijing(2025, 9, 29))
    r = assign.act(case_id, "object", {"reason": "不属于本单位"}, **handler(assign))
    assert r.status_code == 422 and "5个工作日" in r.json["message"]


def test_not_accepted_with_a_statutory_reason(assign):
    case_id = assign.register()
    ok(assign.act(case_id, "sign", **handler(assign)))
    r = assign.act(case_id, "reject", {"reason_code": "dislike"}, **handler(assign))
    assert r.status_code == 422 and "reason_code" in r.json["errors"]["json"]
    case = ok(assign.act(case_id, "reject", {"reason_code": "legal_channel", "explanation": "已提起行政诉讼"},
                         **handler(assign)), "不予受理")
    assert all(s["closed_at"] for s in case["stages"])
    assert "rejection_notice" in {d["doc_type"] for d in documents(assign, case_id)["documents"]}
    # 不再受理 only for its own reasons
    again = assign.register()
    r = assign.act(again, "refuse_repeat", {"reason_code": "no_request"}, **handler(assign))
    assert r.status_code == 422
    final = ok(assign.act(again, "refuse_repeat", {"reason_code": "beyond_review"}, **handler(assign)), "不再受理")
    assert assign.outbox("case.status_changed")[-1]["payload"]["final"] is True and final["closed_at"]


def test_a_perfunctory_closure_report_cannot_be_signed(assign):
    case_id = assign.register()
    to_served(assign, case_id)
    # Without the evaluation, and with a checklist item not confirmed
    r = ok(assign.act(case_id, "submit_closure", {"summary": "已办理", "checklist": {**CHECKS, "procedure_correct": False}},
                      **handler(assign)))
    assert r["closure"]["perfunctory"] is True
    failed = {i["key"] for i in r["closure"]["checklist"] if not i["passed"]}
    assert failed == {"documents_complete", "procedure_correct"}
    assert "满意度评价表" in next(i for i in r["closure"]["checklist"] if i["key"] == "documents_complete")["detail"]
    refused = assign.act(case_id, "sign_off", **head(assign))
    assert refused.status_code == 422 and "敷衍上报" in refused.json["message"]


def test_sign_off_goes_level_by_level_including_the_owning_leader(assign):
    case_id = assign.register(people_count=6)  # a group visit: owned by the 区长 (411302-gov-p2)
    to_served(assign, case_id)
    for target in ("petition_dept", "handling_unit"):
        ok(assign.act(case_id, "evaluate", {"target": target, "grade": "基本满意"}, **handler(assign)))
    ok(assign.act(case_id, "submit_closure", {"summary": "已化解", "checklist": CHECKS}, **handler(assign)))
    leader = {"role": "leader", "unit_id": "411302-gov", "jurisdiction": "411302", "username": "qz"}
    # The owning leader may not sign before the unit head
    assert assign.act(case_id, "sign_off", **leader).status_code == 403
    ok(assign.act(case_id, "sign_off", **head(assign)))
    ok(assign.act(case_id, "sign_off", **leader), "已送达待评价")
    closed = ok(assign.act(case_id, "sign_off", **DEPT), "已办结")
    assert [s["role"] for s in closed["closure"]["signoffs"]] == ["unit_head", "owning_leader", "petition_dept"]


def test_review_and_re_review_within_their_windows_then_no_longer_accepted(assign):
    case_id = assign.register()
    to_closed(assign, case_id)
    ok(assign.act(case_id, "record_cessation", {"statement": "对处理结果无异议", "signed_on": "2025-09-22"}, **handler(assign)))
    freeze(beijing(2025, 10, 10))
    ok(assign.act(case_id, "request_review", {"reason": "对维修标准不服"}, **DEPT), "复查中")
    # The review is decided by the next-higher level (the city), not by the county
    r = assign.act(case_id, "decide_review", {"outcome": "维持", "opinion": "原处理意见正确", "served_on": "2025-10-10"},
                   **DEPT)
    assert r.status_code == 403
    ok(assign.act(case_id, "decide_review", {"outcome": "维持", "opinion": "原处理意见正确", "served_on": "2025-10-10"},
                  **CITY), "已办结")
    ok(assign.act(case_id, "request_recheck", {"reason": "仍不服"}, **CITY), "复核中")
    done = ok(assign.act(case_id, "decide_recheck", {"outcome": "维持", "opinion": "复核维持", "served_on": "2025-10-10"},
                         **CITY), "复核已完成")
    assert all(s["closed_at"] for s in done["stages"])
    last = assign.outbox("case.status_changed")[-1]["payload"]
    assert (last["status"], last["final"], last["resolved"]) == ("复核已完成", True, True)
    assert assign.act(case_id, "terminate", {"reason": "x"}, **DEPT).status_code == 409


def test_review_requested_after_30_days_is_refused(assign):
    case_id = assign.register()
    to_closed(assign, case_id)  # served 2025-09-22: the window ends 10-22
    freeze(beijing(2025, 10, 23))
    r = assign.act(case_id, "request_review", {"reason": "不服"}, **DEPT)
    assert r.status_code == 422 and "申请复查" in r.json["message"]
    ok(assign.act(case_id, "archive", **DEPT), "已存档")


def test_terminate_closes_every_stage(assign):
    case_id = assign.register()
    to_handling(assign, case_id)
    assert assign.act(case_id, "terminate", {"reason": "x"}, **handler(assign)).status_code == 403
    assert assign.act(case_id, "terminate", {}, **DEPT).status_code == 422
    case = ok(assign.act(case_id, "terminate", {"reason": "信访人撤回信访请求"}, **DEPT), "终结")
    assert all(s["closed_at"] for s in case["stages"])


def test_a_stale_expected_version_is_409(assign):
    case_id = assign.register()
    version = assign.case(case_id)["row_version"]
    ok(assign.act(case_id, "sign", {"expected_version": version}, **handler(assign)))
    r = assign.act(case_id, "object", {"expected_version": version, "reason": "x"}, **handler(assign))
    assert r.status_code == 409 and "changed" in r.json["message"]


def test_the_assignment_sheet_and_the_evaluation_state(assign):
    case_id = assign.register(petitioner_name="王五")
    r = assign.client.get(f"/assign/api/v1/cases/{case_id}/assignment-sheet", headers=assign.admin())
    assert r.status_code == 200
    text = "\n".join(p.text for p in Document(io.BytesIO(r.data)).paragraphs)
    assert "信访事项交办单" in text and "宛城区住房和城乡建设局" in text and "王五" in text and "2025年11月21日 前办结" in text
    assert assign.case(case_id)["evaluation_state"] == "未评价"
    to_served(assign, case_id)  # served 09-22: the evaluation window (local setting: 15 days) ends 10-09
    assert assign.case(case_id)["evaluation_state"] == "待评价"
    freeze(beijing(2025, 10, 10))
    assert assign.case(case_id)["evaluation_state"] == "超期未评价"


def test_an_overdue_commitment_fails_the_checklist_until_it_is_carried_out(assign):
    case_id = assign.register()
    to_served(assign, case_id)  # the opinion promised 外墙维修 by 2025-12-31
    for target in ("petition_dept", "handling_unit"):
        ok(assign.act(case_id, "evaluate", {"target": target, "grade": "满意"}, **handler(assign)))
    freeze(beijing(2026, 1, 5))
    report = ok(assign.act(case_id, "submit_closure", {"summary": "已办理", "checklist": CHECKS}, **handler(assign)))
    item = next(i for i in report["closure"]["checklist"] if i["key"] == "carried_out")
    assert item["passed"] is False and "完成外墙维修" in item["detail"] and report["closure"]["perfunctory"]
    assert assign.act(case_id, "fulfil_commitment", {"index": 3, "reason": "x"}, **handler(assign)).status_code == 422
    done = ok(assign.act(case_id, "fulfil_commitment", {"index": 0, "reason": "外墙已于1月3日修复"}, **handler(assign)))
    assert done["opinion"]["commitments"][0]["done"] is True
    report = ok(assign.act(case_id, "submit_closure", {"summary": "已办理", "checklist": CHECKS}, **handler(assign)))
    assert report["closure"]["perfunctory"] is False
