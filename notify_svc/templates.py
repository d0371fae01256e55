"""Notice templates (通知模板): Jinja2 files, Chinese text; checked when loaded."""
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
    instant = datetime.fromisoformat(value).astimezone(ZoneInfo(tz))
    return instant.strftime("%Y年%m月%d日 %H:%M")


@lru_cache(maxsize=4)
def environment(directory: str = str(TEMPLATE_DIR)) -> Environment:
    """The template environment; every template is compiled here so a broken one fails at load."""
    env = Environment(loader=FileSystemLoader(directory), undefined=StrictUndefined,
                      autoescape=False, keep_trailing_newline=False)
    env.filters["local_time"] = _local_time
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)
    return env


def render(notice_type: str, context: dict) -> tuple[str, str]:
    """(title, body) of a notice; TemplateError if the type is unknown or the context lacks a field."""
    try:
        text = environment().get_template(f"{notice_type}.j2").render(**context)
    except Exception as exc:
        raise TemplateError(f"cannot render {notice_type}: {exc}") from exc
    title, _, body = text.strip().partition("\n")
    return title.strip(), body.strip()
