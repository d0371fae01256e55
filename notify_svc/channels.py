"""Channel senders (发送通道): SMTP e-mail, an HTTP SMS gateway, signed webhooks.

Each sender raises ``ChannelError`` with ``transient`` telling the delivery sweep whether a retry
may help (5xx, timeouts, refused connections, SMTP 4xx) or not (a misconfigured channel).
Nothing here touches the database: senders run outside any transaction.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from notify_svc.settings import NotifySettings

SIGNATURE_HEADER = "X-Xinfang-Signature"
TIMESTAMP_HEADER = "X-Xinfang-Timestamp"
DELIVERY_HEADER = "X-Xinfang-Delivery"


class ChannelError(Exception):
    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Outgoing:
    """What one delivery sends (read from the database when the delivery was claimed)."""

    delivery_id: str
    notice_id: str
    channel: str
    address: str
    recipient_name: str
    notice_type: str
    urgency: str
    title: str
    body: str
    message_id: str
    ack_link: str
    inbox_link: str
    created_at: object


def configured(cfg: NotifySettings, channel: str) -> bool:
    return channel in cfg.channels and bool({"email": cfg.smtp_host, "sms": cfg.sms_url,
                                             "webhook": cfg.webhook_secret}[channel])


def send(cfg: NotifySettings, out: Outgoing) -> str:
    """Send one delivery; returns a short receipt for the log; ChannelError on failure."""
    if not configured(cfg, out.channel):
        raise ChannelError(f"通道 {out.channel} 未配置", transient=False)
    return {"email": send_email, "sms": send_sms, "webhook": send_webhook}[out.channel](cfg, out)


# ---------------------------------------------------------------- e-mail


def build_email(cfg: NotifySettings, out: Outgoing) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = cfg.smtp_from
    msg["To"] = formataddr((out.recipient_name, out.address))
    msg["Subject"] = ("【紧急】" if out.urgency == "urgent" else "") + out.title
    msg["Message-ID"] = out.message_id
    msg["Date"] = format_datetime(out.created_at)
    msg["X-Xinfang-Notice"] = out.notice_id
    msg.set_content(f"{out.body}\n\n签收链接（点击即完成签收）：{out.ack_link}\n收件箱：{out.inbox_link}\n",
                    charset="utf-8")
    return msg


def send_email(cfg: NotifySettings, out: Outgoing) -> str:
    msg = build_email(cfg, out)
    try:
        if cfg.smtp_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout)
        with client:
            if cfg.smtp_starttls and not cfg.smtp_ssl:
                client.starttls(context=ssl.create_default_context())
            if cfg.smtp_user:
                client.login(cfg.smtp_user, cfg.smtp_password)
            refused = client.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelError(f"SMTP 认证失败：{exc.smtp_code} {exc.smtp_error!r}", transient=False) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [c for c, _ in exc.recipients.values()]
        raise ChannelError(f"SMTP 拒收收件人：{exc.recipients}", transient=all(400 <= c < 500 for c in codes)) from exc
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"SMTP 错误 {exc.smtp_code}：{exc.smtp_error!r}",
                           transient=400 <= exc.smtp_code < 500) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise ChannelError(f"SMTP 连接失败：{exc.__class__.__name__}: {exc}") from exc
    if refused:
        raise ChannelError(f"SMTP 拒收收件人：{refused}")
    return f"smtp accepted {out.message_id}"


# ---------------------------------------------------------------- SMS gateway


def sms_text(out: Outgoing) -> str:
    return f"【信访通知】{out.title}。请及时登录收件箱签收：{out.ack_link}"


def sms_request_body(cfg: NotifySettings, out: Outgoing) -> bytes:
    def esc(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)[1:-1]

    text = (cfg.sms_template.replace("{phone}", esc(out.address)).replace("{text}", esc(sms_text(out)))
            .replace("{id}", esc(out.delivery_id)))
    try:
        json.loads(text)
    except ValueError as exc:
        raise ChannelError(f"短信请求模板不是合法的 JSON：{exc}", transient=False) from exc
    return text.encode("utf-8")


def json_path(document, path: str):
    value = document
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float, what: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode("utf-8", "replace")
        raise ChannelError(f"{what}返回 HTTP {exc.code}：{detail}", transient=exc.code >= 500 or exc.code == 429) from exc
    except (socket.timeout, TimeoutError) as exc:
        raise ChannelError(f"{what}超时（{timeout:g} 秒）") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (socket.timeout, TimeoutError)):
            raise ChannelError(f"{what}超时（{timeout:g} 秒）") from exc
        raise ChannelError(f"{what}无法连接：{exc.reason}") from exc
    except OSError as exc:
        raise ChannelError(f"{what}连接错误：{exc}") from exc


def send_sms(cfg: NotifySettings, out: Outgoing) -> str:
    headers = {"Idempotency-Key": out.delivery_id}
    if cfg.sms_auth_header:
        name, _, value = cfg.sms_auth_header.partition(":")
        headers[name.strip()] = value.strip()
    status, raw = _post(cfg.sms_url, sms_request_body(cfg, out), headers, cfg.sms_timeout, "短信网关")
    try:
        reply = json.loads(raw.decode("utf-8") or "null")
    except ValueError as exc:
        raise ChannelError(f"短信网关应答不是 JSON：{raw[:120]!r}") from exc
    value = json_path(reply, cfg.sms_success_path)
    if value is None or str(value).lower() != cfg.sms_success_value.lower():
        raise ChannelError(f"短信网关报告失败：{cfg.sms_success_path}={value!r}，应答 {raw[:200].decode('utf-8', 'replace')}")
    return f"sms accepted (HTTP {status})"


# ---------------------------------------------------------------- webhook


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
                     tolerance: float = 300) -> bool:
    """What a receiver checks: the signature, and a timestamp no older than ``tolerance`` seconds."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def webhook_body(out: Outgoing) -> bytes:
    return json.dumps({"event": "notice", "delivery_id": out.delivery_id, "notice_id": out.notice_id,
                       "notice_type": out.notice_type, "urgency": out.urgency, "title": out.title,
                       "body": out.body, "ack_link": out.ack_link, "message_id": out.message_id},
                      ensure_ascii=False).encode("utf-8")


def send_webhook(cfg: NotifySettings, out: Outgoing) -> str:
    body = webhook_body(out)
    timestamp = str(int(time.time()))
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(cfg.webhook_secret, timestamp, body),
               DELIVERY_HEADER: out.delivery_id}
    status, _ = _post(out.address, body, headers, cfg.webhook_timeout, "Webhook 接收方")
    return f"webhook HTTP {status}"
