"""notify_svc settings (通知服务配置): ``XINFANG_NOTIFY_*`` environment variables and the policy file.

Every variable has a working default; nothing is required for the embedded default (the inbox
always works; e-mail, SMS and webhook deliveries are attempted only when configured).

Channels
  ``XINFANG_NOTIFY_CHANNELS``            channels besides the inbox, comma list (default ``email,sms,webhook``)
  ``XINFANG_NOTIFY_SMTP_HOST``           SMTP server; empty = e-mail not configured (default empty)
  ``XINFANG_NOTIFY_SMTP_PORT``           SMTP port (default ``25``)
  ``XINFANG_NOTIFY_SMTP_STARTTLS``       ``1`` = STARTTLS after connecting (default ``0``)
  ``XINFANG_NOTIFY_SMTP_SSL``            ``1`` = implicit TLS (SMTPS, usually port 465) (default ``0``)
  ``XINFANG_NOTIFY_SMTP_USER``           login user; empty = no AUTH (default empty)
  ``XINFANG_NOTIFY_SMTP_PASSWORD``       login password (default empty)
  ``XINFANG_NOTIFY_SMTP_FROM``           From address (default ``xinfang-notify@localhost``)
  ``XINFANG_NOTIFY_SMTP_TIMEOUT``        seconds (default ``10``)
  ``XINFANG_NOTIFY_SMTP_IDLE_SECONDS``   SMTP connections are reused; one idle this long is closed
                                         (default ``30``; ``0`` = a new connection per message)
  ``XINFANG_NOTIFY_SMS_URL``             SMS gateway URL (HTTP POST); empty = SMS not configured
  ``XINFANG_NOTIFY_SMS_AUTH_HEADER``     one header ``Name: value`` sent with every request (default empty)
  ``XINFANG_NOTIFY_SMS_TEMPLATE``        JSON request body; ``{phone}``, ``{text}``, ``{id}`` are replaced
                                         (JSON-escaped) (default ``{"to": "{phone}", "text": "{text}", "id": "{id}"}``)
  ``XINFANG_NOTIFY_SMS_SUCCESS_PATH``    dotted JSON path read from the reply (default ``code``)
  ``XINFANG_NOTIFY_SMS_SUCCESS_VALUE``   value at that path meaning success, compared as text (default ``0``)
  ``XINFANG_NOTIFY_SMS_TIMEOUT``         seconds (default ``5``)
  ``XINFANG_NOTIFY_SMS_URGENT_ONLY``     ``1`` = SMS only for urgent notices (default ``1``)
  ``XINFANG_NOTIFY_WEBHOOK_SECRET``      HMAC-SHA256 key of webhook signatures; empty = webhooks not configured
  ``XINFANG_NOTIFY_WEBHOOK_TIMEOUT``     seconds (default ``5``)
Timing and limits
  ``XINFANG_NOTIFY_QUIET_HOURS``         ``HH:MM-HH:MM`` local time when non-urgent SMS wait (default ``22:00-07:00``;
                                         empty = none)
  ``XINFANG_NOTIFY_SMS_PER_HOUR``        SMS per recipient address and hour; the rest fold into the digest (default ``5``)
  ``XINFANG_NOTIFY_RETRY_LIMIT``         attempts per delivery before it gives up (default ``5``)
  ``XINFANG_NOTIFY_RETRY_BACKOFF``       seconds before the first retry; doubles each attempt (default ``60``)
  ``XINFANG_NOTIFY_LEASE_SECONDS``       how long a claimed ("sending") delivery is reserved (default ``120``)
Acknowledgement links and pages
  ``XINFANG_NOTIFY_ACK_SECRET``          key of signed acknowledgement links (default: derived from XINFANG_SECRET_KEY)
  ``XINFANG_NOTIFY_ACK_TTL_HOURS``       lifetime of a link (default ``168``)
  ``XINFANG_NOTIFY_BASE_URL``            public base URL put in links (default ``http://127.0.0.1:8000``)
Files
  ``XINFANG_NOTIFY_TEMPLATE_DIR``        folder of the notice templates (default: the shipped ``notify_svc/templates``)
  ``XINFANG_NOTIFY_POLICY_FILE``         YAML policy (default ``notify_svc/data/policy.yaml``): per type the urgency,
                                         acknowledgement deadline, escalation and sample context; the escalation
                                         chain; re-notify period; digest hour; operator unit
  ``XINFANG_NOTIFY_OPERATOR_UNIT``       unit receiving operator alerts when the region has no petition department
                                         (overrides the policy's ``operator_unit``; default ``411300-xfj``)
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Mapping

import yaml

PACKAGE = Path(__file__).parent
DEFAULT_TEMPLATE_DIR = PACKAGE / "templates"
DEFAULT_POLICY_FILE = PACKAGE / "data" / "policy.yaml"
CHANNELS = ("email", "sms", "webhook")


class PolicyError(ValueError):
    pass


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _quiet(text: str) -> tuple[time, time] | None:
    if not text.strip():
        return None
    start, _, end = text.partition("-")
    try:
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError as exc:
        raise PolicyError(f"XINFANG_NOTIFY_QUIET_HOURS must be HH:MM-HH:MM, got {text!r}") from exc


@dataclass(frozen=True, kw_only=True)
class NotifySettings:
    channels: tuple[str, ...] = CHANNELS
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "xinfang-notify@localhost"
    smtp_timeout: float = 10.0
    smtp_idle_seconds: float = 30.0
    sms_url: str = ""
    sms_auth_header: str = ""
    sms_template: str = '{"to": "{phone}", "text": "{text}", "id": "{id}"}'
    sms_success_path: str = "code"
    sms_success_value: str = "0"
    sms_timeout: float = 5.0
    sms_urgent_only: bool = True
    webhook_secret: str = ""
    webhook_timeout: float = 5.0
    quiet_hours: tuple[time, time] | None = (time(22, 0), time(7, 0))
    sms_per_hour: int = 5
    retry_limit: int = 5
    retry_backoff_seconds: float = 60.0
    lease_seconds: float = 120.0
    ack_secret: str = ""
    ack_ttl_hours: float = 168.0
    base_url: str = "http://127.0.0.1:8000"
    template_dir: Path = DEFAULT_TEMPLATE_DIR
    policy_file: Path = DEFAULT_POLICY_FILE
    operator_unit: str = ""
    policy: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, secret_key: str = "",
                 **overrides: Any) -> "NotifySettings":
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(f"XINFANG_NOTIFY_{name}", default)

        values: dict[str, Any] = dict(
            channels=tuple(c.strip() for c in get("CHANNELS", ",".join(CHANNELS)).split(",") if c.strip()),
            smtp_host=get("SMTP_HOST"), smtp_port=int(get("SMTP_PORT", "25")),
            smtp_starttls=_flag(get("SMTP_STARTTLS"), False), smtp_ssl=_flag(get("SMTP_SSL"), False),
            smtp_user=get("SMTP_USER"), smtp_password=get("SMTP_PASSWORD"),
            smtp_from=get("SMTP_FROM", "xinfang-notify@localhost"), smtp_timeout=float(get("SMTP_TIMEOUT", "10")),
            smtp_idle_seconds=float(get("SMTP_IDLE_SECONDS", "30")),
            sms_url=get("SMS_URL"), sms_auth_header=get("SMS_AUTH_HEADER"),
            sms_template=get("SMS_TEMPLATE", cls.sms_template), sms_success_path=get("SMS_SUCCESS_PATH", "code"),
            sms_success_value=get("SMS_SUCCESS_VALUE", "0"), sms_timeout=float(get("SMS_TIMEOUT", "5")),
            sms_urgent_only=_flag(get("SMS_URGENT_ONLY"), True),
            webhook_secret=get("WEBHOOK_SECRET"), webhook_timeout=float(get("WEBHOOK_TIMEOUT", "5")),
            quiet_hours=_quiet(get("QUIET_HOURS", "22:00-07:00")),
            sms_per_hour=int(get("SMS_PER_HOUR", "5")), retry_limit=int(get("RETRY_LIMIT", "5")),
            retry_backoff_seconds=float(get("RETRY_BACKOFF", "60")), lease_seconds=float(get("LEASE_SECONDS", "120")),
            ack_secret=get("ACK_SECRET") or hashlib.sha256(f"notify-ack:{secret_key}".encode()).hexdigest(),
            ack_ttl_hours=float(get("ACK_TTL_HOURS", "168")), base_url=get("BASE_URL", "http://127.0.0.1:8000"),
            template_dir=Path(get("TEMPLATE_DIR") or DEFAULT_TEMPLATE_DIR),
            policy_file=Path(get("POLICY_FILE") or DEFAULT_POLICY_FILE),
            operator_unit=get("OPERATOR_UNIT"),
        )
        values.update(overrides)
        return cls(**values).loaded()

    def replace(self, **changes: Any) -> "NotifySettings":
        return dataclasses.replace(self, **changes).loaded()

    def loaded(self) -> "NotifySettings":
        """Read the policy file (unless a policy dict was given) and check it."""
        policy = self.policy or load_policy(self.policy_file)
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown:
            raise PolicyError(f"unknown channel(s) {unknown}; known: {', '.join(CHANNELS)}")
        return dataclasses.replace(self, policy=policy,
                                   operator_unit=self.operator_unit or policy.get("operator_unit", ""))

    # -- policy lookups
    def type_policy(self, notice_type: str) -> dict:
        types = self.policy.get("types", {})
        return {**self.policy.get("type_defaults", {}), **(types.get(notice_type) or {})}

    @property
    def escalation_chain(self) -> list[dict]:
        return list(self.policy.get("escalation", {}).get("chain", []))

    @property
    def renotify_hours(self) -> float:
        return float(self.policy.get("escalation", {}).get("renotify_after_hours", 72))

    @property
    def renotify_max(self) -> int:
        return int(self.policy.get("escalation", {}).get("renotify_max", 3))

    @property
    def digest_hour(self) -> int:
        return int(self.policy.get("digest", {}).get("hour", 8))


def load_policy(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read notify policy {path}: {exc}") from exc
    if not isinstance(data.get("types"), dict):
        raise PolicyError(f"notify policy {path}: 'types' must map notice types to their policy")
    for name, entry in data["types"].items():
        entry = {**data.get("type_defaults", {}), **(entry or {})}
        if "ack_hours" not in entry and "ack_working_days" not in entry:
            raise PolicyError(f"notify policy {path}: type {name} has no ack_hours / ack_working_days")
    return data
