"""Notice templates: every type renders in Chinese; a broken template stops the service at start."""
from __future__ import annotations

import re
import shutil

import pytest

from notify_svc.settings import NotifySettings
from notify_svc.templates import TemplateError, check_templates, render

SUPERVISE_TYPES = ("overdue", "urge", "supervision_order", "bulletin", "warning", "interview", "listed",
                   "accountability", "rectification")
ALL_TYPES = ("assignment", "ownership", "deadline_warning", "objection_returned", "extension_pending",
             *SUPERVISE_TYPES, "digest", "operator_alert", "unacknowledged", "renotify")
CJK = re.compile(r"[\u4e00-\u9fff]")
EXPECTED_TITLES = {
    "overdue": "超期提醒：DC2026-0001", "urge": "催办通知：DC2026-0001", "supervision_order": "督办通知：DC2026-0001",
    "bulletin": "通报：DC2026-0001", "warning": "警示通知：DC2026-0001", "interview": "约谈通知：YT2026-0001",
    "listed": "挂牌督办通知：DC2026-0001", "accountability": "问责移交通知：DC2026-0001",
    "rectification": "整改提醒：DC2026-0001", "digest": "每日汇总：2026年11月25日",
}


@pytest.mark.parametrize("notice_type", ALL_TYPES)
def test_every_type_renders_in_chinese(notice_type):
    cfg = NotifySettings.from_env({})
    title, body = render(notice_type, cfg.type_policy(notice_type)["sample"])
    assert CJK.search(title) and CJK.search(body)
    if notice_type in EXPECTED_TITLES:
        assert title == EXPECTED_TITLES[notice_type]
    policy = cfg.type_policy(notice_type)
    assert policy["label"] and ("ack_hours" in policy or "ack_working_days" in policy)


def test_interview_names_time_place_and_chair_in_local_time():
    cfg = NotifySettings.from_env({})
    _, body = render("interview", cfg.type_policy("interview")["sample"])
    assert "约谈时间：2026年12月01日 09:30" in body  # 01:30 UTC = 09:30 Beijing
    assert "约谈地点：南阳市信访局三楼会议室" in body and "主持人：戴雪" in body
    assert "查看详情：http://127.0.0.1:8000/supervise/findings/f1" in body


def test_policy_covers_every_type_with_a_template():
    assert set(check_templates(NotifySettings.from_env({}))) == set(ALL_TYPES)


def _copy(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(NotifySettings.from_env({}).template_dir, folder)
    return folder


def test_template_syntax_error_is_caught_at_start(tmp_path, settings):
    from notify_svc.app import build_runtime

    folder = _copy(tmp_path)
    (folder / "urge.j2").write_text("催办通知：{{ finding_no \n{{ unit_name }}：\n正文", encoding="utf-8")
    with pytest.raises(TemplateError, match="urge.j2"):
        build_runtime(settings, notify=NotifySettings.from_env({"XINFANG_NOTIFY_TEMPLATE_DIR": str(folder)}))


def test_template_failing_on_the_sample_context_is_caught_at_start(tmp_path, settings):
    from notify_svc.app import build_runtime

    folder = _copy(tmp_path)
    (folder / "bulletin.j2").write_text("通报：{{ no_such_field }}\n{{ unit_name }}：\n正文", encoding="utf-8")
    with pytest.raises(TemplateError, match="bulletin"):
        build_runtime(settings, notify=NotifySettings.from_env({"XINFANG_NOTIFY_TEMPLATE_DIR": str(folder)}))
