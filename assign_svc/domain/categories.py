"""Content categories (内容分类): a petition may carry a first-level name or a code.

intake is moving from names to codes; routing and deadline scopes speak names.  ``normalize``
accepts either: a classic first-level name, a newer name (自然资源 → 国土资源 …), a
two-digit code of the classic list ("03" = 城乡建设) or a longer hierarchical code whose
first two digits are the first level ("0301").  Anything else passes through unchanged.
"""
from __future__ import annotations

#: The classic first-level list, in order; the code of each is its 1-based position, two digits.
CLASSIC: tuple[str, ...] = (
    "农村农业", "国土资源", "城乡建设", "劳动和社会保障", "卫生计生", "教育文体", "民政", "政法",
    "经济管理", "交通运输", "商贸旅游", "科技与信息产业", "环境保护", "党务政务", "组织人事",
    "纪检监察", "其他",
)
CODES: dict[str, str] = {f"{i:02d}": name for i, name in enumerate(CLASSIC, start=1)}

#: Newer names folded into the classic first level.
RENAMED: dict[str, str] = {
    "自然资源": "国土资源", "生态环境": "环境保护", "卫生健康": "卫生计生", "市场监管": "经济管理",
    "住房城乡建设": "城乡建设", "人力资源社会保障": "劳动和社会保障", "农业农村": "农村农业",
}


def normalize(category: str) -> str:
    """The classic first-level name of ``category`` (a name or a code)."""
    value = (category or "").strip()
    if value in CLASSIC:
        return value
    if value in RENAMED:
        return RENAMED[value]
    if "/" in value:  # "农村农业/扶贫": first level / second level
        return normalize(value.split("/", 1)[0])
    if value.isdigit() and len(value) >= 2 and value[:2] in CODES:
        return CODES[value[:2]]
    return value
