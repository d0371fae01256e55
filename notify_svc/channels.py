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
import threading
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
    msg.set_content(f"{out.body}\n\n签收链接（打开后点击“确认签收”完成签收）：{out.ack_link}\n收件箱：{out.inbox_link}\n",
                    charset="utf-8")
    return msg


class SmtpPool:
    """Reused SMTP connections (连接复用) for one server and login: a small LIFO stack of idle
    connections shared by a process's worker threads (a thread holds a connection exclusively while it
    sends, so under load each thread keeps reusing one).

    * a connection idle longer than ``NOOP_AFTER`` seconds is checked with ``NOOP`` before use and
      replaced when the check fails;
    * a connection on which anything failed is closed, never reused;
    * at most ``max_idle`` idle connections are kept; one idle ``idle_seconds`` is closed (``QUIT``) by a
      reaper thread, so a quiet service holds no connections.
    """

    NOOP_AFTER = 2.0

    def __init__(self, cfg: NotifySettings, *, max_idle: int = 8) -> None:
        self.cfg, self.max_idle = cfg, max_idle
        self.idle_seconds = cfg.smtp_idle_seconds
        self._idle: list[tuple[smtplib.SMTP, float]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.opened = 0  # connections opened so far (the tests and the benchmark read it)
        self._reaper = threading.Thread(target=self._reap_loop, name="notify-smtp-reaper", daemon=True)
        self._reaper.start()

    def _open(self) -> smtplib.SMTP:
        client = open_smtp(self.cfg)
        with self._lock:
            self.opened += 1
        return client

    def acquire(self) -> smtplib.SMTP:
        """An open connection (reused and health-checked when possible, else new)."""
        while True:
            with self._lock:
                client, since = self._idle.pop() if self._idle else (None, 0.0)
            if client is None:
                return self._open()
            idle = time.monotonic() - since
            if idle > self.idle_seconds:
                _close(client)
                continue
            if idle <= self.NOOP_AFTER:
                return client
            try:
                if client.noop()[0] == 250:
                    return client
            except (OSError, smtplib.SMTPException):
                pass
            _close(client, quit=False)

    def release(self, client: smtplib.SMTP, *, broken: bool) -> None:
        if broken or self._closed.is_set():
            _close(client, quit=not broken)
            return
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append((client, time.monotonic()))
                return
        _close(client)

    def reap(self, now: float | None = None) -> int:
        """Close the connections idle longer than ``idle_seconds``; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [c for c, since in self._idle if now - since > self.idle_seconds]
            self._idle = [(c, since) for c, since in self._idle if now - since <= self.idle_seconds]
        for client in stale:
            _close(client)
        return len(stale)

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def _reap_loop(self) -> None:
        while not self._closed.wait(max(0.5, self.idle_seconds / 3)):
            self.reap()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            idle, self._idle = self._idle, []
        for client, _ in idle:
            _close(client)


def open_smtp(cfg: NotifySettings) -> smtplib.SMTP:
    """A new connection: TLS (implicit or STARTTLS) and login as configured."""
    if cfg.smtp_ssl:
        client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout)
    try:
        if cfg.smtp_starttls and not cfg.smtp_ssl:
            client.starttls(context=ssl.create_default_context())
        if cfg.smtp_user:
            client.login(cfg.smtp_user, cfg.smtp_password)
    except BaseException:
        _close(client)
        raise
    return client


def _close(client: smtplib.SMTP, *, quit: bool = True) -> None:
    try:
        if quit:
            client.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        client.close()


_pools: dict[tuple, SmtpPool] = {}
_pools_lock = threading.Lock()


def _pool_key(cfg: NotifySettings) -> tuple:
    return (cfg.smtp_host, cfg.smtp_port, cfg.smtp_ssl, cfg.smtp_starttls, cfg.smtp_user, cfg.smtp_password,
            cfg.smtp_timeout, cfg.smtp_idle_seconds)


def smtp_pool(cfg: NotifySettings) -> SmtpPool | None:
    """The process's pool for the configured server (None when reuse is off: ``SMTP_IDLE_SECONDS=0``)."""
    if cfg.smtp_idle_seconds <= 0:
        return None
    key = _pool_key(cfg)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = SmtpPool(cfg)
        return pool


def close_smtp_pools() -> None:
    """Close every pooled connection (worker shutdown)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def send_email(cfg: NotifySettings, out: Outgoing) -> str:
    msg = build_email(cfg, out)
    pool = smtp_pool(cfg)
    client = None
    broken = True
    try:
        client = pool.acquire() if pool is not None else open_smtp(cfg)
        refused = client.send_message(msg)
        broken = False
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
    finally:
        if client is not None:
            if pool is not None:
                pool.release(client, broken=broken)
            else:
                _close(client, quit=not broken)
    if refused:
        raise ChannelError(f"SMTP 拒收收件人：{refused}")
    return f"smtp accepted {out.message_id}"


# ---------------------------------------------------------------- SMS gateway


def sms_text(out: Outgoing) -> str:
    return f"【信访通知】{out.title}。请打开链接确认签收：{out.ack_link}"


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
