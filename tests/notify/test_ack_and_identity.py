"""The signed acknowledgement link (签收链接) shows a confirmation page and acknowledges only on POST;
who may act for a person or unit notice; acknowledgement deadlines on the working-day calendar."""
from __future__ import annotations

import re

from notify_svc import links
from notify_svc.models import Notice
from shared import clock
from shared.auth import Principal, issue_token
from tests.notify.conftest import advance, beijing, build_notify, directory_records, freeze


def _page(resp) -> str:
    return resp.get_data(as_text=True)


def test_get_shows_a_confirmation_page_and_acknowledges_nothing(notify):
    notice = notify.request("assignment", subject_id="case-1")
    token = links.make_token(notify.cfg, notice.id, clock.now())
    # a mail scanner or a link preview fetches the link (GET, HEAD, again and again)
    for _ in range(2):
        page = notify.client.get(f"/notify/ack/{token}")
        assert page.status_code == 200
    assert notify.client.head(f"/notify/ack/{token}").status_code == 200
    html = _page(page)
    assert "确认签收通知" in html and "交办通知：信访件 411302000000000001" in html
    assert '<td id="recipient">宛城区住房和城乡建设局</td>' in html
    assert re.search(r'<button type="submit" id="confirm">确认签收</button>', html)
    assert re.search(r'<form method="post" action="/notify/ack" id="ack-form">', html)
    assert f'<input type="hidden" name="token" value="{token}">' in html
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.acknowledged_at is None and row.read_at is None
    assert notify.outbox("notice.acknowledged") == []


def test_post_with_the_token_in_the_body_acknowledges_once(notify):
    notice = notify.request("assignment", subject_id="case-1")
    token = links.make_token(notify.cfg, notice.id, clock.now())
    advance(minutes=30)  # Monday 10:30 Beijing time
    done = notify.client.post("/notify/ack", data={"token": token})
    assert done.status_code == 200
    html = _page(done)
    assert "签收成功" in html and '<td id="acknowledged-at">2025年09月22日 10:30</td>' in html
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.ack_via == "link" and row.acknowledged_at == beijing(2025, 9, 22, 10, 30)
    [event] = notify.outbox("notice.acknowledged")
    assert event["notice_id"] == notice.id and event["via"] == "link"
    # later: the link shows when it was acknowledged and offers no button; a second POST changes nothing
    advance(hours=2)
    again = notify.client.get(f"/notify/ack/{token}")
    html = _page(again)
    assert again.status_code == 200 and "通知已签收" in html and 'id="confirm"' not in html
    assert '<td id="acknowledged-at">2025年09月22日 10:30</td>' in html
    repeat = notify.client.post("/notify/ack", data={"token": token})
    assert repeat.status_code == 200 and "2025年09月22日 10:30" in _page(repeat)
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.acknowledged_at == beijing(2025, 9, 22, 10, 30)
    assert len(notify.outbox("notice.acknowledged")) == 1


def test_forged_and_expired_links_are_rejected_on_get_and_post(notify):
    notice = notify.request("assignment")
    token = links.make_token(notify.cfg, notice.id, clock.now())
    nid, exp, mac = token.split(".")
    for forged in (f"{nid}.{int(exp) + 86400}.{mac}", f"{'0' * 32}.{exp}.{mac}", "garbage"):
        got = notify.client.get(f"/notify/ack/{forged}")
        assert got.status_code == 403 and "链接无效" in _page(got)
        posted = notify.client.post("/notify/ack", data={"token": forged})
        assert posted.status_code == 403 and "链接无效" in _page(posted)
    missing = notify.client.post("/notify/ack", data={})
    assert missing.status_code == 403
    # the token only in the address (as a cross-site form would guess it) is not enough
    assert notify.client.post(f"/notify/ack/{token}").status_code == 405
    advance(hours=169)  # the link lives 168 hours
    got = notify.client.get(f"/notify/ack/{token}")
    assert got.status_code == 410 and "链接已过期" in _page(got)
    posted = notify.client.post("/notify/ack", data={"token": token})
    assert posted.status_code == 410 and "链接已过期" in _page(posted)
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.acknowledged_at is None and notify.outbox("notice.acknowledged") == []


# ---------------------------------------------------------------- who acts for a notice


def _token(notify, *, user_id: str, username: str, unit_id: str | None = None, role: str = "leader") -> dict:
    principal = Principal(user_id=user_id, username=username, role=role, jurisdiction="411302", unit_id=unit_id)
    return {"Authorization": f"Bearer {issue_token(notify.settings, principal)}"}


def _with_username(notify, person_id: str, username: str) -> None:
    _, people = directory_records()
    [person] = [p for p in people if p["id"] == person_id]
    notify.directory(people=[{**person, "username": username}])


def test_a_person_notice_is_theirs_by_directory_username_or_person_id(notify):
    _with_username(notify, "411302-gov-p2", "xueliang")
    notice = notify.request("ownership", recipient_kind="person", recipient_id="411302-gov-p2", recipient_name="薛亮")
    url = f"/notify/api/v1/notices/{notice.id}"
    by_username = _token(notify, user_id="u-7f3a", username="xueliang")
    by_person_id = _token(notify, user_id="411302-gov-p2", username="someone-else")
    others = [_token(notify, user_id="u-1", username="411302-gov-p1"),          # another person
              _token(notify, user_id="u-2", username="411302-gov-p2"),          # username that is only the id
              _token(notify, user_id="u-3", username="wangwu", unit_id="411302-gov", role="handler")]  # the unit
    for headers in others:
        assert notify.client.get(url, headers=headers).status_code == 403
        assert notify.client.post(f"{url}/ack", headers=headers).status_code == 403
        assert notify.client.get("/notify/api/v1/inbox?recipient_kind=person&recipient_id=411302-gov-p2",
                                 headers=headers).status_code == 403
    assert notify.client.get(url, headers=by_person_id).status_code == 200
    inbox = notify.client.get("/notify/api/v1/inbox?recipient_kind=person&recipient_id=411302-gov-p2",
                              headers=by_username)
    assert inbox.status_code == 200 and [n["id"] for n in inbox.json] == [notice.id]
    r = notify.client.post(f"{url}/ack", headers=by_username)
    assert r.status_code == 200 and r.json["ack_via"] == "api"
    assert r.json["acknowledged_at"] == "2025-09-22T02:00:00+00:00"
    # the inbox page of the user with that username lists it
    notify.client.set_cookie("xinfang_notify_token", by_username["Authorization"][7:], path="/notify")
    page = notify.client.get("/notify/inbox")
    assert f'id="notice-{notice.id}"' in _page(page)


def test_a_unit_notice_is_its_staffs_by_the_token_unit(notify):
    notice = notify.request("assignment")  # to 411302-zjj
    url = f"/notify/api/v1/notices/{notice.id}/ack"
    assert notify.client.post(url, headers=_token(notify, user_id="u-1", username="411302-zjj",
                                                  role="handler")).status_code == 403
    assert notify.client.post(url, headers=_token(notify, user_id="u-2", username="li",
                                                  unit_id="411302-xfj", role="handler")).status_code == 403
    r = notify.client.post(url, headers=_token(notify, user_id="u-3", username="li", unit_id="411302-zjj",
                                               role="handler"))
    assert r.status_code == 200 and r.json["ack_via"] == "api"


# ---------------------------------------------------------------- working days


def test_ack_deadline_skips_the_national_day_holiday(notify):
    # Tuesday 2025-09-30 10:00: 1 working day → 10-01…10-08 are 国庆节/中秋节 holidays → Thursday 10-09
    freeze(beijing(2025, 9, 30, 10))
    notice = notify.request("assignment")
    assert notice.ack_due_at == beijing(2025, 10, 9, 10)
    # an ack_hours type is not on the calendar: 8 hours later
    warning = notify.request("warning")
    assert warning.ack_due_at == beijing(2025, 9, 30, 18)


def test_ack_deadline_uses_the_operators_calendar_file(settings, tmp_path):
    calendar = tmp_path / "calendar.yaml"
    calendar.write_text("declared_years: [2031]\ndays:\n  2031-03-04: restday\n  2025-10-09: restday\n",
                        encoding="utf-8")
    notify = build_notify(settings.replace(calendar_file=str(calendar), calendar_unknown_year="error"))
    try:
        freeze(beijing(2025, 9, 30, 10))
        # the override makes 2025-10-09 a rest day too: Friday 10-10
        assert notify.request("assignment").ack_due_at == beijing(2025, 10, 10, 10)
        # a year the package does not know, declared by the operator: Monday 2031-03-03 → (Tue 03-04 off) Wed 03-05
        freeze(beijing(2031, 3, 3, 9, 15))
        assert notify.request("assignment").ack_due_at == beijing(2031, 3, 5, 9, 15)
    finally:
        notify.runtime.close()


def test_unacknowledged_list_for_supervisors_in_their_jurisdiction(notify):
    """未签收通知一览: what is still unsigned, oldest first, overdue ones apart, inside the caller's jurisdiction."""
    first = notify.request("assignment", subject_id="case-1", context={"region_code": "411302"})
    advance(minutes=10)
    signed = notify.request("assignment", subject_id="case-2", context={"region_code": "411302"})
    advance(minutes=10)
    city = notify.request("assignment", subject_id="case-3", recipient_id="411300-xfj", recipient_name="南阳市信访局",
                          context={"region_code": "411300"})
    unit = notify.headers(role="handler", jurisdiction="411302", unit_id="411302-zjj")
    assert notify.client.post(f"/notify/api/v1/notices/{signed.id}/ack", headers=unit).status_code == 200

    def listed(query: str = "", **who) -> list[str]:
        got = notify.client.get(f"/notify/api/v1/notices?{query}", headers=notify.headers(**who))
        assert got.status_code == 200, got.json
        return [n["id"] for n in got.json]

    assert listed() == [first.id, signed.id, city.id]
    assert listed("unacknowledged=true") == [first.id, city.id]
    assert listed("unacknowledged=true&region=411302") == [first.id]
    county = {"role": "supervisor", "jurisdiction": "411302"}
    assert listed("unacknowledged=true", **county) == [first.id]  # the city's notice is outside 411302
    assert listed("overdue=true") == []
    advance(days=3)  # past every 签收 deadline
    assert listed("overdue=true") == [first.id, city.id]
    assert listed("overdue=true&recipient_kind=person") == []
    # units and handlers read their own inbox, not the list
    unit = notify.headers(role="handler", jurisdiction="411302", unit_id="411302-zjj")  # a fresh token, days later
    assert notify.client.get("/notify/api/v1/notices", headers=unit).status_code == 403
    bad = notify.client.get("/notify/api/v1/notices?region=41&recipient_kind=x", headers=notify.headers())
    assert bad.status_code == 422 and set(bad.json["errors"]["query"]) == {"region", "recipient_kind"}
