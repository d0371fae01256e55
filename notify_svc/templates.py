"""Notice templates (通知模板): Jinja2 files operators may edit, Chinese text; checked when loaded.

A template's first line is the title, the rest the body.  The folder is
``XINFANG_NOTIFY_TEMPLATE_DIR`` (default: the shipped ``templates/``).  ``check_templates``
compiles every file and renders every type of the policy with its sample context, so a broken
template stops the service at start instead of failing when a notice is sent.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).parent / "templates"


class TemplateError(ValueError):
    pass


def _local_time(value: str, tz: str = "Asia/Shanghai") -> str:
    if not value:
        return ""
    instant = datetime.fromisoformat(str(value)).astimezone(ZoneInfo(tz))
    return instant.strftime("%Y年%m月%d日 %H:%M")


@lru_cache(maxsize=8)
def environment(directory: str = str(TEMPLATE_DIR)) -> Environment:
    """The template environment; every template is compiled here so a syntax error fails at load."""
    env = Environment(loader=FileSystemLoader(directory), undefined=StrictUndefined,
                      autoescape=False, keep_trailing_newline=False)
    env.filters["local_time"] = _local_time
    for name in env.list_templates(extensions=["j2"]):
        try:
            env.get_template(name)
        except Exception as exc:
            raise TemplateError(f"template {name} in {directory} is broken: {exc}") from exc
    return env


def render(notice_type: str, context: dict, directory: str | Path | None = None) -> tuple[str, str]:
    """(title, body) of a notice; TemplateError if the type is unknown or the context lacks a field."""
    try:
        env = environment(str(directory or TEMPLATE_DIR))
        text = env.get_template(f"{notice_type}.j2").render(**context)
    except Exception as exc:
        raise TemplateError(f"cannot render {notice_type}: {exc}") from exc
    title, _, body = text.strip().partition("\n")
    if not title.strip() or not body.strip():
        raise TemplateError(f"template {notice_type} rendered an empty title or body")
    return title.strip(), body.strip()


def check_templates(cfg) -> list[str]:
    """Compile the folder and render every policy type with its sample context; returns the types.

    Raises TemplateError naming the first broken template or type without a template.
    """
    environment.cache_clear()
    directory = str(cfg.template_dir)
    environment(directory)
    types = [t for t in cfg.policy.get("types", {})]
    for notice_type in types:
        sample = cfg.type_policy(notice_type).get("sample")
        if not isinstance(sample, dict):
            raise TemplateError(f"policy type {notice_type} has no sample context")
        render(notice_type, sample, directory)
    return types
