"""The dossier (卷宗) and the closure report's review checklist (domain.md §4).  Pure Python."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable, Mapping

#: Documents generated from templates (printable .docx): type -> Chinese title.
DOCUMENT_TYPES: dict[str, str] = {
    "assignment_sheet": "信访事项交办单",
    "acceptance_notice": "信访事项受理告知书",
    "rejection_notice": "信访事项不予受理告知书",
    "extension_notice": "信访事项延期办理告知书",
    "opinion": "信访事项处理意见书",
    "reply": "建议意见类事项答复意见书",
    "finding": "检举控告办理结果反馈",
    "service_receipt": "送达回证",
    "evaluation_form": "满意度评价表",
    "cessation": "息诉息访书",
    "closure_report": "结案报告",
}

#: What a closed case's dossier must hold (息诉息访书 only where obtained), by procedure path
#: (``workflow.path_of``): a suggestion holds the 答复意见书, an accusation the 办理结果反馈 and no
#: 满意度评价表 (an accusation's finding is not graded by the accuser).
REQUIRED_BY_PATH: dict[str, tuple[str, ...]] = {
    "full": ("acceptance_notice", "opinion", "service_receipt", "evaluation_form", "closure_report"),
    "suggestion": ("acceptance_notice", "reply", "service_receipt", "evaluation_form", "closure_report"),
    "accusation": ("acceptance_notice", "finding", "service_receipt", "closure_report"),
}
REQUIRED_FOR_CLOSURE = REQUIRED_BY_PATH["full"]

#: Checklist items the reviewing office judges (declared with the report) — the others are computed.
DECLARED_ITEMS: dict[str, str] = {
    "procedure_correct": "办理程序规范",
    "every_request_answered": "信访人诉求逐一答复",
    "reasonableness_judged": "合理性诉求判断准确",
}


@dataclass(frozen=True)
class CheckItem:
    key: str
    label: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class ClosureFacts:
    documents: frozenset[str]
    opinion: Mapping | None
    served_on: date | None
    handling_due_at: datetime | None
    opinion_issued_at: datetime | None
    today: date
    path: str = "full"


def missing_documents(held: Iterable[str], *, with_report: bool = True, path: str = "full") -> list[str]:
    held = set(held)
    required = REQUIRED_BY_PATH.get(path, REQUIRED_FOR_CLOSURE)
    return [d for d in required if d not in held and (with_report or d != "closure_report")]


def checklist(facts: ClosureFacts, declared: Mapping[str, bool]) -> list[CheckItem]:
    """The review checklist; a report with any item failing is a 敷衍上报 (perfunctory report)."""
    missing = missing_documents(facts.documents, with_report=False, path=facts.path)
    opinion = facts.opinion or {}
    on_time = (facts.opinion_issued_at is not None and facts.handling_due_at is not None
               and facts.opinion_issued_at <= facts.handling_due_at)
    overdue = [c.get("content", "") for c in opinion.get("commitments", [])
               if not c.get("done") and date.fromisoformat(str(c["due_date"])) < facts.today]
    items = [
        CheckItem("documents_complete", "文书齐全规范", not missing,
                  "缺少：" + "、".join(DOCUMENT_TYPES[d] for d in missing) if missing else ""),
        CheckItem("served_on_time", "按期办理并送达", on_time and facts.served_on is not None,
                  "" if on_time else "处理意见书超过办理期限出具或未出具"),
        CheckItem("legal_basis", "法律政策依据充分", bool(str(opinion.get("basis", "")).strip())),
        CheckItem("opinion_clear", "处理意见明确",
                  bool(opinion.get("outcome") or opinion.get("adoption") or opinion.get("truth"))
                  and bool(str(opinion.get("facts", "")).strip())),
        CheckItem("carried_out", "处理意见落实到位", not overdue,
                  "逾期未兑现承诺：" + "；".join(overdue) if overdue else ""),
    ]
    for key, label in DECLARED_ITEMS.items():
        items.append(CheckItem(key, label, bool(declared.get(key, False))))
    return items
