"""Server-rendered Chinese pages: the inbox (收件箱), the supervisors' 未签收通知一览 and the signed
acknowledgement link (签收链接).

Authentication of ``/notify/inbox`` and ``/notify/unacknowledged``: the staff JWT (from
``POST /assign/api/v1/auth/login``) in the cookie ``xinfang_notify_token``, set either by the inbox's
sign-in form (paste the token) or by opening either page with ``?token=<JWT>`` once (the page stores it
and redirects to drop it from the address bar).  Forms carry a CSRF token derived from the cookie.  ``/notify/ack/<token>`` needs no
login: the signed link itself is the credential.  Its GET only shows the notice and a 「确认签收」
button (mail scanners and link previews fetch links); the button POSTs the token in the form body to
``/notify/ack``, which acknowledges.
"""
from __future__ import annotations

import hashlib
import hmac
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from sqlalchemy import func, select

from notify_svc import links, service
from notify_svc.models import Notice
from notify_svc.service import cfg_of
from shared import clock
from shared.auth import InvalidToken, verify_token
from shared.web import runtime_of

COOKIE = "xinfang_notify_token"
pages = Blueprint("notify_pages", __name__, template_folder="web")


def _principal():
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None, ""
    try:
        return verify_token(runtime_of(current_app).settings, token), token
    except InvalidToken:
        return None, ""


def _csrf(token: str) -> str:
    key = runtime_of(current_app).settings.secret_key.encode()
    return hmac.new(key, f"csrf:{token}".encode(), hashlib.sha256).hexdigest()[:32]


def _mine(session, principal):
    """Notices to the logged-in user: their unit's, and their own as a directory person."""
    cond = (Notice.recipient_kind == "person") & Notice.recipient_id.in_(service.person_ids(session, principal))
    if principal.unit_id:
        cond = cond | ((Notice.recipient_kind == "unit") & (Notice.recipient_id == principal.unit_id))
    return cond


def _login_page(message: str = "", status: int = 200):
    return make_response(render_template("login.html", message=message), status)


def _adopt_query_token(endpoint: str):
    """``?token=<JWT>`` opened once: store it in the cookie and redirect to drop it from the address bar."""
    query_token = request.args.get("token")
    if not query_token:
        return None
    try:
        verify_token(runtime_of(current_app).settings, query_token)
    except InvalidToken:
        return _login_page("令牌无效或已过期，请重新登录。", 401)
    args = {k: v for k, v in request.args.items() if k != "token"}
    resp = redirect(url_for(endpoint, **args))
    resp.set_cookie(COOKIE, query_token, httponly=True, samesite="Lax", path="/notify")
    return resp


def _signed_in(endpoint: str):
    """(response, principal, token) of a page's caller: a response to send instead (the ``?token=`` redirect,
    the sign-in form) and no principal, or no response and the signed-in principal with its token."""
    adopted = _adopt_query_token(endpoint)
    if adopted is not None:
        return adopted, None, ""
    principal, token = _principal()
    if principal is None:
        return _login_page(), None, ""
    return None, principal, token


def _labels(runtime, types) -> dict[str, str]:
    """Notice types' Chinese labels from the policy."""
    return {t: cfg_of(runtime).type_policy(t).get("label", t) for t in types}


@pages.get("/notify/inbox")
def inbox():
    answer, principal, token = _signed_in("notify_pages.inbox")
    if answer is not None:
        return answer
    runtime = runtime_of(current_app)
    tz = ZoneInfo(runtime.settings.timezone)
    notice_type = request.args.get("type", "")
    only_open = request.args.get("unacknowledged") == "1"
    with runtime.read_sessions() as session:
        mine = _mine(session, principal)
        unread = session.scalar(select(func.count()).select_from(Notice).where(mine, Notice.read_at.is_(None)))
        types = sorted(session.scalars(select(Notice.notice_type).where(mine).distinct()))
        stmt = select(Notice).where(mine).order_by(Notice.created_at.desc()).limit(200)
        if notice_type:
            stmt = stmt.where(Notice.notice_type == notice_type)
        if only_open:
            stmt = stmt.where(Notice.acknowledged_at.is_(None))
        notices = list(session.scalars(stmt))
    labels = _labels(runtime, set(types) | {n.notice_type for n in notices})
    return render_template("inbox.html", principal=principal, notices=notices, unread=unread, types=types,
                           labels=labels, notice_type=notice_type, only_open=only_open, csrf=_csrf(token),
                           local=_local(tz))


#: Rows of the 未签收 overview page (the oldest; the API pages through the rest).
OVERVIEW_ROWS = 200


@pages.get("/notify/unacknowledged")
def unacknowledged():
    """未签收通知一览: what is still unsigned in the supervisor's jurisdiction, the longest waiting first."""
    answer, principal, _ = _signed_in("notify_pages.unacknowledged")
    if answer is not None:
        return answer
    if principal.role not in ("supervisor", "admin"):
        return make_response(render_template(
            "message.html", title="无权查看", text="未签收通知一览仅供督查员和管理员查看；请在收件箱中查看本人或本单位的通知。"), 403)
    runtime = runtime_of(current_app)
    tz = ZoneInfo(runtime.settings.timezone)
    only_overdue = request.args.get("overdue") == "1"
    now = clock.now()
    with runtime.read_sessions() as session:
        total = _count(session, service.notices_in(principal.jurisdiction, unacknowledged=True))
        overdue_total = _count(session, service.notices_in(principal.jurisdiction, overdue=True))
        shown = service.notices_in(principal.jurisdiction, unacknowledged=True, overdue=only_overdue)
        notices = list(session.scalars(shown.limit(OVERVIEW_ROWS)))
    labels = _labels(runtime, {n.notice_type for n in notices})

    def late(notice) -> str:
        if notice.ack_due_at is None or notice.ack_due_at >= now:
            return ""
        hours = int((now - notice.ack_due_at).total_seconds() // 3600)
        return f"逾期 {hours // 24} 天 {hours % 24} 小时" if hours >= 24 else f"逾期 {hours} 小时"

    return render_template("unacknowledged.html", principal=principal, notices=notices, total=total,
                           overdue_total=overdue_total, only_overdue=only_overdue, labels=labels, late=late,
                           listed=overdue_total if only_overdue else total, local=_local(tz))


def _count(session, stmt) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery()))


def _local(tz: ZoneInfo):
    """The pages' local time format (``2026-11-24 09:00``; empty for none)."""
    return lambda d: d.astimezone(tz).strftime("%Y-%m-%d %H:%M") if d else ""


@pages.post("/notify/inbox/login")
def login():
    token = (request.form.get("token") or "").strip()
    try:
        verify_token(runtime_of(current_app).settings, token)
    except InvalidToken:
        return _login_page("令牌无效或已过期，请重新登录。", 401)
    resp = redirect(url_for("notify_pages.inbox"))
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Lax", path="/notify")
    return resp


@pages.post("/notify/inbox/logout")
def logout():
    resp = redirect(url_for("notify_pages.inbox"))
    resp.delete_cookie(COOKIE, path="/notify")
    return resp


@pages.post("/notify/inbox/ack/<notice_id>")
def inbox_ack(notice_id: str):
    principal, token = _principal()
    if principal is None:
        return _login_page("请先登录。", 401)
    if not hmac.compare_digest(request.form.get("csrf", ""), _csrf(token)):
        return make_response(render_template("message.html", title="请求无效", text="表单已失效，请刷新页面后重试。"), 403)
    runtime = runtime_of(current_app)
    with runtime.uow() as session:
        notice = session.get(Notice, notice_id)
        if notice is None:
            return make_response(render_template("message.html", title="通知不存在", text="未找到该通知。"), 404)
        if not service.may_act_for(session, principal, notice):
            return make_response(render_template("message.html", title="无权操作",
                                                 text="只能签收发给本人或本单位的通知。"), 403)
        service.acknowledge(session, runtime, notice, via="inbox")
    back = {k: v for k, v in (("type", request.form.get("type")), ("unacknowledged", request.form.get("unacknowledged")))
            if v}
    return redirect(url_for("notify_pages.inbox", **back))


def _page(template: str, status: int = 200, **context):
    """A page that may carry an acknowledgement token: never cached, never sent on as a referrer."""
    resp = make_response(render_template(template, **context), status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _link_notice_id(runtime, token: str):
    """The notice id of a signed link, or the Chinese error page (403 forged, 410 expired)."""
    try:
        return links.verify_token(cfg_of(runtime), token, clock.now()), None
    except links.ForgedLink:
        return None, _page("message.html", 403, title="链接无效", text="该签收链接无效或已被篡改，请登录收件箱签收。")
    except links.ExpiredLink:
        return None, _page("message.html", 410, title="链接已过期", text="该签收链接已过期，请登录收件箱签收。")


def _ack_page(runtime, notice: Notice, *, token: str = "", title: str, text: str = ""):
    tz = ZoneInfo(runtime.settings.timezone)

    def local(d):
        return d.astimezone(tz).strftime("%Y年%m月%d日 %H:%M") if d else ""

    return _page("ack.html", title=title, notice=notice, token=token, text=text, created=local(notice.created_at),
                 due=local(notice.ack_due_at), acknowledged=local(notice.acknowledged_at))


@pages.get("/notify/ack/<token>")
def ack_link(token: str):
    """The signed link of an e-mail / SMS: shows the notice and a 「确认签收」 button; a GET never
    acknowledges (mail scanners and link previews follow links)."""
    runtime = runtime_of(current_app)
    notice_id, error = _link_notice_id(runtime, token)
    if error is not None:
        return error
    with runtime.read_sessions() as session:
        notice = session.get(Notice, notice_id)
        if notice is None:
            return _page("message.html", 404, title="通知不存在", text="未找到该通知。")
        if notice.acknowledged_at is not None:
            return _ack_page(runtime, notice, title="通知已签收", text="该通知已经签收，无需重复操作。")
        return _ack_page(runtime, notice, token=token, title="确认签收通知")


@pages.post("/notify/ack")
def ack_confirm():
    """The 「确认签收」 button: the token in the form body is the credential (no cookie, so nothing a
    third-party site could ride on: forging this request needs the token itself)."""
    runtime = runtime_of(current_app)
    notice_id, error = _link_notice_id(runtime, (request.form.get("token") or "").strip())
    if error is not None:
        return error
    with runtime.uow() as session:
        notice = session.get(Notice, notice_id)
        if notice is None:
            return _page("message.html", 404, title="通知不存在", text="未找到该通知。")
        if notice.acknowledged_at is not None:
            return _ack_page(runtime, notice, title="通知已签收", text="该通知已经签收，无需重复操作。")
        service.acknowledge(session, runtime, notice, via="link")
        return _ack_page(runtime, notice, title="签收成功", text="您已成功签收该通知。")
