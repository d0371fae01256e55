"""Registration rules (登记规则): purposes and statutory types, what each channel requires, levels.

Pure Python: the schema layer calls these and turns violations into field errors.
"""
from __future__ import annotations

from dataclasses import dataclass

from intake_svc.codes import CHANNELS

#: 信访目的 -> the statutory type it folds into (《信访工作条例》: 申诉求决类, 检举控告类, 建议意见类).
PURPOSES: dict[str, str] = {
    "求决": "申诉求决类",
    "申诉": "申诉求决类",
    "检举控告": "检举控告类",
    "建议意见": "建议意见类",
    "其他": "申诉求决类",
}

#: Channels where the petitioner may remain anonymous (匿名): not a visit, where one shows up in person.
ANONYMOUS_CHANNELS = frozenset(CHANNELS) - {"来访"}

#: Channels that require the main petitioner's identity number when not anonymous:
#: visits are registered against an identity document, online petitions are real-name (实名).
ID_REQUIRED_CHANNELS = frozenset({"来访", "网上信访"})

#: Channels that require a phone number (a call-back is the only way to reach the petitioner).
PHONE_REQUIRED_CHANNELS = frozenset({"来电", "12345热线"})

LEVELS_BY_PREFIX = {0: "national", 2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}
LEVEL_RANK = {"national": 0, "province": 1, "city": 2, "county": 3, "township": 4, "village": 5}


@dataclass(frozen=True)
class Violation:
    field: str
    message: str


def level_of_prefix(prefix: str) -> str:
    """The administrative level a jurisdiction prefix stands for (``4113`` -> city)."""
    return LEVELS_BY_PREFIX.get(len(prefix), "county")


def is_above(level: str, other: str) -> bool:
    return LEVEL_RANK[level] < LEVEL_RANK[other]


def channel_violations(*, channel: str, anonymous: bool, petitioners: list[dict]) -> list[Violation]:
    """What the channel and anonymity require of the petitioners (信访人信息要求)."""
    out: list[Violation] = []
    main = petitioners[0] if petitioners else None
    if anonymous:
        if channel not in ANONYMOUS_CHANNELS:
            out.append(Violation("anonymous", f"a {channel} petition cannot be anonymous (来访不能匿名)"))
        for i, person in enumerate(petitioners):
            if person.get("id_number"):
                out.append(Violation(f"petitioners.{i}.id_number",
                                     "an anonymous petition carries no identity number (匿名信访不登记身份证号)"))
        return out
    if main is None or not main.get("name"):
        out.append(Violation("petitioners", "the main petitioner's name is required unless anonymous (非匿名须登记信访人)"))
        return out
    if channel in ID_REQUIRED_CHANNELS and not main.get("id_number"):
        out.append(Violation("petitioners.0.id_number", f"required for {channel} (须登记身份证号)"))
    if channel in PHONE_REQUIRED_CHANNELS and not main.get("phone"):
        out.append(Violation("petitioners.0.phone", f"required for {channel} (须登记联系电话)"))
    if not any(main.get(k) for k in ("id_number", "phone", "address_code")):
        out.append(Violation("petitioners.0", "give at least an identity number, a phone or an address (联系方式)"))
    return out


def is_group_visit(*, channel: str, people_count: int, threshold: int) -> bool:
    """集体访: a visit by ``threshold`` or more people (a setting, 5 by default)."""
    return channel == "来访" and people_count >= threshold
