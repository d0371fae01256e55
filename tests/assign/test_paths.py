"""The three statutory types get their own paths (建议意见类 答复, 检举控告类 核查结论, 申诉求决类 the full
procedure); 属实性 on the result; 办结 vs 化解 on every closing action; the 交办单 filed at assignment;
the 复查/复核 warnings to the next-higher unit."""
from __future__ import annotations

import io
from datetime import date

from docx import Document
from sqlalchemy import select

from assign_svc import notices
from assign_svc.domain import workflow
from assign_svc.domain.deadlines import Policy, select_policy
from assign_svc.domain.routing import PetitionFacts
from assign_svc.models import CaseDocument, CaseStage
from tests.assign.conftest import beijing, freeze
from tests.assign.test_workflow import (CHECKS, CITY, DEPT, OPINION, documents, handler, head, ok, to_closed,
                                        to_handling, to_served)

JW = "411302-jw"  # 宛城区纪委监委
SUGGESTION = {"adoption": "部分采纳", "facts": "经研究论证，增设公交站点具有可行性", "basis": "《城市公共交通条例》",
              "conclusion": "已纳入明年线网优化方案", "commitments": []}
FINDING = {"truth": "部分属实", "facts": "经初步核实，反映的违规收费问题部分属实", "basis": "《纪检监察机关处理检举控告工作规则》",
           "conclusion": "已对相关责任人立案审查"}


def _events(assign, case_id: str, action: str) -> list[dict]:
    return [m["payload"] for m in assign.outbox("case.action_recorded")
            if m["payload"]["case_id"] == case_id and m["payload"]["action"] == action]


def _local_day(iso: str) -> date:
    from datetime import datetime
    from zoneinfo import ZoneInfo
    return datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Shanghai")).date()


# ---------------------------------------------------------------- the paths, pure


def test_each_statutory_type_gets_its_path():
    assert [workflow.path_of(t) for t in ("申诉求决类", "建议意见类", "检举控告类", None, "其他")] == \
        ["full", "suggestion", "accusation", "full", "full"]
    handling = workflow.allowed_actions("办理中", "申诉求决类")
    assert "issue_opinion" in handling and "request_extension" in handling and "reply" not in handling
    assert workflow.allowed_actions("办理中", "建议意见类") == ["assign_leader", "pause", "reply", "terminate"]
    assert workflow.allowed_actions("办理中", "检举控告类") == ["assign_leader", "pause", "issue_finding", "terminate"]
    assert "evaluate" not in workflow.allowed_actions("已送达待评价", "检举控告类")
    assert "evaluate" in workflow.allowed_actions("已送达待评价", "建议意见类")
    assert workflow.allowed_actions("办理中", None) == workflow.allowed_actions("办理中", "申诉求决类")


def test_a_handling_policy_can_be_scoped_by_statutory_type():
    general = Policy(id="1", code="handling", version=1, step="handling", length=60, unit="calendar_days", basis="a")
    scoped = Policy(id="2", code="handling-suggestion", version=1, step="handling", length=30, unit="calendar_days",
                    basis="b", statutory_type="建议意见类")
    facts = PetitionFacts(region_code="411302", category="城乡建设", statutory_type="建议意见类")
    assert select_policy([general, scoped], "handling", facts).code == "handling-suggestion"
    other = PetitionFacts(region_code="411302", category="城乡建设", statutory_type="申诉求决类")
    assert select_policy([general, scoped], "handling", other).code == "handling"


# ---------------------------------------------------------------- 建议意见类


def test_a_suggestion_is_studied_and_replied_to_without_opinion_or_review(assign):
    case_id = assign.register(statutory_type="建议意见类", request_text="建议在白河大道增设公交站点")
    case = to_handling(assign, case_id)
    # Its handling clock is the suggestion policy: 60 days from acceptance on Monday 09-22 → 11-21
    stage = next(s for s in case["stages"] if s["kind"] == "handling")
    assert stage["policy_code"] == "handling-suggestion" and _local_day(stage["due_at"]) == date(2025, 11, 21)
    assert "第三十一条" in stage["basis"]
    # No 处理意见书 and no extension: 409 naming what is allowed
    r = assign.act(case_id, "issue_opinion", OPINION, **handler(assign))
    assert r.status_code == 409 and r.json["errors"]["allowed_actions"] == ["assign_leader", "pause", "reply",
                                                                            "terminate"]
    assert assign.act(case_id, "request_extension", {"days": 10, "reason": "x"}, **handler(assign)).status_code == 409
    # A reply needs an adoption decision and judges no truth
    assert assign.act(case_id, "reply", {**SUGGESTION, "adoption": "支持"}, **handler(assign)).status_code == 422
    r = assign.act(case_id, "reply", {**SUGGESTION, "truth": "属实"}, **handler(assign))
    assert r.status_code == 422 and "truth" in r.json["errors"]["json"]
    replied = ok(assign.act(case_id, "reply", SUGGESTION, **handler(assign)), "已处理待送达")
    assert replied["opinion"]["adoption"] == "部分采纳" and "truth" not in replied["opinion"]
    [event] = _events(assign, case_id, "reply")
    assert event["data"]["adoption"] == "部分采纳" and "truth" not in event["data"]
    # Served: an evaluation window, no review window
    served = ok(assign.act(case_id, "serve", {"method": "直接送达", "signed_on": "2025-09-22"}, **handler(assign)),
                "已送达待评价")
    assert {s["kind"] for s in served["stages"] if s["closed_at"] is None} == {"evaluation"}
    for target in ("petition_dept", "handling_unit"):
        ok(assign.act(case_id, "evaluate", {"target": target, "grade": "满意"}, **handler(assign)))
    report = ok(assign.act(case_id, "submit_closure", {"summary": "已答复", "checklist": CHECKS}, **handler(assign)))
    assert report["closure"]["perfunctory"] is False
    ok(assign.act(case_id, "sign_off", **head(assign)))
    closed = ok(assign.act(case_id, "sign_off", **DEPT), "已办结")
    assert closed["allowed_actions"] == ["assign_leader", "evaluate", "fulfil_commitment", "record_cessation",
                                         "archive", "terminate"]
    assert assign.act(case_id, "request_review", {"reason": "不服"}, **DEPT).status_code == 409
    dossier = documents(assign, case_id)
    assert dossier["missing"] == [] and "reply" in {d["doc_type"] for d in dossier["documents"]}
    reply_doc = next(d for d in dossier["documents"] if d["doc_type"] == "reply")
    r = assign.client.get(f"/assign/api/v1/cases/{case_id}/documents/{reply_doc['id']}", headers=assign.admin())
    text = "\n".join(p.text for p in Document(io.BytesIO(r.data)).paragraphs)
    assert "建议意见类事项答复意见书" in text and "答复意见：部分采纳。" in text and "复查" not in text


# ---------------------------------------------------------------- 检举控告类


def test_an_accusation_goes_to_discipline_and_ends_with_a_finding(assign):
    case_id = assign.register(statutory_type="检举控告类", petitioner_name="李四", request_text="检举某站所违规收费")
    case = assign.case(case_id)
    assert (case["unit_id"], case["mode"]) == (JW, "forward")
    # The accuser's identity never reaches the unit: not on the 交办单, not in the notices
    r = assign.client.get(f"/assign/api/v1/cases/{case_id}/assignment-sheet", headers=assign.admin())
    text = "\n".join(p.text for p in Document(io.BytesIO(r.data)).paragraphs)
    assert "李四" not in text and "检举人（信息保密）" in text
    to_unit = [m["payload"] for m in assign.outbox("notice.requested") if m["payload"]["subject_id"] == case_id]
    assert to_unit and all("李四" not in str(n) for n in to_unit)
    # Nor can it be rerouted to a unit outside discipline inspection (which may be the accused)
    r = assign.act(case_id, "reroute", {"unit_id": "411302-zjj", "reason": "改派"}, **DEPT)
    assert r.status_code == 422 and "纪检监察" in r.json["message"]
    jw = assign.unit(JW)
    ok(assign.act(case_id, "sign", **jw))
    accepted = ok(assign.act(case_id, "accept", **jw))
    assert next(s for s in accepted["stages"] if s["kind"] == "handling")["policy_code"] == "handling-accusation"
    ok(assign.act(case_id, "serve", {"method": "邮寄送达", "signed_on": "2025-09-22"}, **jw), "办理中")
    r = assign.act(case_id, "issue_opinion", OPINION, **jw)
    assert r.status_code == 409 and r.json["errors"]["allowed_actions"] == ["assign_leader", "pause", "issue_finding",
                                                                            "terminate"]
    assert assign.act(case_id, "issue_finding", {**FINDING, "truth": None}, **jw).status_code == 422
    r = assign.act(case_id, "issue_finding", {**FINDING, "outcome": "支持"}, **jw)
    assert r.status_code == 422 and "outcome" in r.json["errors"]["json"]
    found = ok(assign.act(case_id, "issue_finding", FINDING, **jw), "已处理待送达")
    assert found["opinion"]["truth"] == "部分属实"
    assert _events(assign, case_id, "issue_finding")[0]["data"]["truth"] == "部分属实"
    # Fed back to the accuser: no review window, no evaluation of the finding
    served = ok(assign.act(case_id, "serve", {"method": "直接送达", "signed_on": "2025-09-22"}, **jw), "已送达待评价")
    assert [s for s in served["stages"] if s["closed_at"] is None] == []
    assert served["evaluation_state"] == "不适用"
    r = assign.act(case_id, "evaluate", {"target": "handling_unit", "grade": "满意"}, **jw)
    assert r.status_code == 409 and "evaluate" not in r.json["errors"]["allowed_actions"]
    report = ok(assign.act(case_id, "submit_closure", {"summary": "已立案审查", "checklist": CHECKS}, **jw))
    assert report["closure"]["perfunctory"] is False  # no 满意度评价表 is required of an accusation
    ok(assign.act(case_id, "sign_off", **assign.unit(JW, "leader")))
    closed = ok(assign.act(case_id, "sign_off", **DEPT), "已办结")
    assert "request_review" not in closed["allowed_actions"] and closed["resolution"] == "replied"
    assert documents(assign, case_id)["missing"] == []
    assert "assignment_sheet" not in {d["doc_type"] for d in documents(assign, case_id)["documents"]}  # 转送


# ---------------------------------------------------------------- 申诉求决类: 属实性


def test_the_opinion_of_an_appeal_records_whether_the_facts_were_true(assign):
    case_id = assign.register(statutory_type="申诉求决类")
    to_handling(assign, case_id)
    r = assign.act(case_id, "issue_opinion", {k: v for k, v in OPINION.items() if k != "truth"}, **handler(assign))
    assert r.status_code == 422 and r.json["errors"]["json"]["truth"] == ["属实", "部分属实", "不属实"]
    issued = ok(assign.act(case_id, "issue_opinion", {**OPINION, "truth": "不属实", "outcome": "不予支持"},
                           **handler(assign)))
    assert (issued["opinion"]["outcome"], issued["opinion"]["truth"]) == ("不予支持", "不属实")
    [event] = _events(assign, case_id, "issue_opinion")
    assert (event["data"]["truth"], event["data"]["outcome"]) == ("不属实", "不予支持")
    assert event["reason"] == "处理意见：不予支持（反映问题不属实）"


# ---------------------------------------------------------------- 办结 vs 化解


def _close(assign, case_id, *, grade="满意", closure=None, final=None):
    to_served(assign, case_id)
    for target in ("petition_dept", "handling_unit"):
        body = {"target": target, "grade": grade, **({"reason": "维修质量差"} if grade == "不满意" else {})}
        ok(assign.act(case_id, "evaluate", body, **handler(assign)))
    ok(assign.act(case_id, "submit_closure", {"summary": "外墙已维修", "checklist": CHECKS, **(closure or {})},
                  **handler(assign)))
    ok(assign.act(case_id, "sign_off", **head(assign)))
    return ok(assign.act(case_id, "sign_off", final or {}, **DEPT), "已办结")


def test_a_declared_and_confirmed_resolution_is_resolved(assign):
    case_id = assign.register()
    r = assign.act(case_id, "submit_closure", {"summary": "x", "resolved": True}, **handler(assign))
    assert r.status_code == 409  # not before service
    other = assign.register()
    to_served(assign, other)
    r = assign.act(other, "submit_closure", {"summary": "x", "checklist": CHECKS, "resolved": True}, **handler(assign))
    assert r.status_code == 422 and "resolution_reason" in r.json["errors"]["json"]
    closed = _close(assign, case_id, closure={"resolved": True, "resolution_reason": "外墙已修复，信访人认可"})
    assert closed["resolution"] == "resolved" and closed["closure"]["resolution"] == "resolved"
    [_, last] = _events(assign, case_id, "sign_off")
    assert last["data"]["resolution"] == "resolved" and last["data"]["resolution_reason"] == "外墙已修复，信访人认可"
    assert "确认化解" in last["reason"]
    assert _events(assign, case_id, "sign_off")[0]["data"].get("resolution") is None  # not closing yet
    listed = assign.client.get("/assign/api/v1/cases", query_string={"petition_id": closed["petition_id"]},
                               headers=assign.admin()).json
    assert listed[0]["resolution"] == "resolved"


def test_without_a_declaration_or_against_dissatisfaction_it_is_only_replied(assign):
    plain = _close(assign, assign.register())
    assert plain["resolution"] == "replied"
    unhappy = assign.register()
    closed = _close(assign, unhappy, grade="不满意", closure={"resolved": True, "resolution_reason": "已维修"})
    assert closed["resolution"] == "replied"
    [_, last] = _events(assign, unhappy, "sign_off")
    assert last["data"]["resolution"] == "replied"
    assert last["data"]["resolution_blocked"] == ["信访人评价不满意（对信访部门）", "信访人评价不满意（对责任单位）"]
    refused = _close(assign, assign.register(), closure={"resolved": True, "resolution_reason": "已维修"},
                     final={"confirm_resolved": False})
    assert refused["resolution"] == "replied" and refused["closure"]["resolution_blocked"] == ["信访部门审核未确认化解"]


def test_an_overdue_commitment_blocks_a_resolution(assign):
    case_id = assign.register()
    to_served(assign, case_id)
    for target in ("petition_dept", "handling_unit"):
        ok(assign.act(case_id, "evaluate", {"target": target, "grade": "满意"}, **handler(assign)))
    ok(assign.act(case_id, "submit_closure", {"summary": "x", "checklist": CHECKS, "resolved": True,
                                              "resolution_reason": "已承诺维修"}, **handler(assign)))
    ok(assign.act(case_id, "sign_off", **head(assign)))
    freeze(beijing(2026, 1, 5))  # the commitment 完成外墙维修 was due 2025-12-31
    closed = ok(assign.act(case_id, "sign_off", **DEPT), "已办结")
    assert closed["resolution"] == "replied"
    assert closed["closure"]["resolution_blocked"] == ["承诺事项逾期未落实：完成外墙维修"]


def test_review_recheck_and_termination_record_their_resolution(assign):
    case_id = assign.register()
    to_closed(assign, case_id)
    freeze(beijing(2025, 10, 10))
    reviewing = ok(assign.act(case_id, "request_review", {"reason": "不服"}, **DEPT), "复查中")
    assert reviewing["resolution"] is None  # reopened
    decided = ok(assign.act(case_id, "decide_review", {"outcome": "变更", "opinion": "改为全额维修",
                                                       "served_on": "2025-10-10", "resolved": True,
                                                       "resolution_reason": "变更后信访人接受"}, **CITY), "已办结")
    assert decided["resolution"] == "resolved"
    assert _events(assign, case_id, "decide_review")[0]["data"]["resolution"] == "resolved"
    ok(assign.act(case_id, "request_recheck", {"reason": "仍不服"}, **CITY), "复核中")
    done = ok(assign.act(case_id, "decide_recheck", {"outcome": "维持", "opinion": "维持", "served_on": "2025-10-10"},
                         **CITY), "复核已完成")
    assert done["resolution"] == "replied"
    assert _events(assign, case_id, "decide_recheck")[0]["data"]["resolution"] == "replied"
    ended = assign.register()
    to_handling(assign, ended)
    terminated = ok(assign.act(ended, "terminate", {"reason": "信访人撤回信访请求"}, **DEPT), "终结")
    assert terminated["resolution"] == "replied"
    assert _events(assign, ended, "terminate")[0]["data"]["resolution"] == "replied"


# ---------------------------------------------------------------- the 交办单 in the dossier


def test_the_assignment_sheet_is_filed_at_assignment_and_downloads_the_same(assign_on):
    assign = assign_on
    case_id = assign.register(petitioner_name="王五")
    [sheet] = [d for d in documents(assign, case_id)["documents"] if d["doc_type"] == "assignment_sheet"]
    assert sheet["title"] == "信访事项交办单" and sheet["created_by"] == "分办规则"
    with assign.runtime.sessions() as s:
        row = s.get(CaseDocument, sheet["id"])
        assert row.content is None and row.render["fields"]["petitioner_name"] == "王五"  # rendered lazily
    url = f"/assign/api/v1/cases/{case_id}/documents/{sheet['id']}"
    first = assign.client.get(url, headers=assign.admin())
    assert first.status_code == 200
    text = "\n".join(p.text for p in Document(io.BytesIO(first.data)).paragraphs)
    assert "王五" in text and "2025年11月21日 前办结" in text and "信访工作机构" in text
    freeze(beijing(2025, 9, 25))
    second = assign.client.get(url, headers=assign.admin())
    sheet_endpoint = assign.client.get(f"/assign/api/v1/cases/{case_id}/assignment-sheet", headers=assign.admin())
    assert first.data == second.data == sheet_endpoint.data
    with assign.runtime.sessions() as s:
        assert s.get(CaseDocument, sheet["id"]).content == first.data  # kept after the first download
    # A re-sent petition makes no second case and files no second sheet
    again = assign.case(case_id)["petition_id"]
    assert assign.register(petition_id=again) == case_id
    assert [d["doc_type"] for d in documents(assign, case_id)["documents"]].count("assignment_sheet") == 1


# ---------------------------------------------------------------- warnings to the higher unit


def test_review_decision_warnings_go_to_the_next_higher_unit(assign):
    case_id = assign.register()
    to_closed(assign, case_id)
    freeze(beijing(2025, 10, 10))
    ok(assign.act(case_id, "request_review", {"reason": "不服"}, **DEPT))
    with assign.runtime.sessions() as s:
        stage = s.scalars(select(CaseStage).where(CaseStage.case_id == case_id,
                                                  CaseStage.kind == "review_decision")).one()
        freeze(stage.warn_at)
    notices.warning_sweep(assign.runtime)
    [warning] = [m["payload"] for m in assign.outbox("notice.requested")
                 if m["payload"]["notice_type"] == "deadline_warning" and ":review_decision:" in m["payload"]["dedupe_key"]]
    assert (warning["recipient_id"], warning["recipient_name"]) == ("411300-xfj", "南阳市信访局")
    assert warning["context"]["handling_unit_name"] == "宛城区住房和城乡建设局"
    assert warning["context"]["unit_name"] == "南阳市信访局"


def test_a_suggestion_clock_is_an_editable_policy(assign):
    body = {"step": "handling", "length": 30, "unit": "calendar_days", "statutory_type": "建议意见类",
            "basis": "本地设置：建议意见类30日内答复"}
    r = assign.client.put("/assign/api/v1/admin/deadline-policies/handling-suggestion", json=body,
                          headers=assign.admin())
    assert r.status_code == 200 and (r.json["version"], r.json["statutory_type"]) == (2, "建议意见类")
    bad = assign.client.put("/assign/api/v1/admin/deadline-policies/x", json={**body, "statutory_type": "其他类"},
                            headers=assign.admin())
    assert bad.status_code == 422
    suggestion = to_handling(assign, assign.register(statutory_type="建议意见类"))
    stage = next(s for s in suggestion["stages"] if s["kind"] == "handling")
    assert (stage["policy_code"], stage["policy_version"], _local_day(stage["due_at"])) == \
        ("handling-suggestion", 2, date(2025, 10, 22))
    appeal = to_handling(assign, assign.register(statutory_type="申诉求决类"))
    assert next(s for s in appeal["stages"] if s["kind"] == "handling")["policy_code"] == "handling"
    # The acceptance notice tells a suggester that a reply (not a 处理意见书 in 60 days) will come
    docs = documents(assign, suggestion["id"])["documents"]
    notice = next(d for d in docs if d["doc_type"] == "acceptance_notice")
    r = assign.client.get(f"/assign/api/v1/cases/{suggestion['id']}/documents/{notice['id']}", headers=assign.admin())
    text = "\n".join(p.text for p in Document(io.BytesIO(r.data)).paragraphs)
    assert "予以书面答复（《信访工作条例》第三十一条）" in text and "60日内办结" not in text
