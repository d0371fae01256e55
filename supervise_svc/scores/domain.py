"""三率三色 as pure rules: settings, rates, the composite score, ranks, colours, streaks, samples.

No Flask, no SQLAlchemy: the computation feeds plain counts in and stores what comes out.

- A rate whose denominator is empty is *not applicable* (None) — never 0 or 100.
- The composite score is the weighted mean of 0..100 sub-scores over the applicable metrics
  (weights re-normalised); "lower is better" metrics score ``100 * (1 - min(x, cap) / cap)``.
- Rank within the peer group: score descending, ties broken by unit id ascending (stable and
  independent of the database's row order); a unit without a score is unranked.
- Colours (ties at a zone boundary escape the zone, see ``bottom_zones``): red (near the bottom ``red_after`` months running) > yellow (``yellow_after`` months
  running) > blue (the bottom ``n_blue`` of the month) > none.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "scorecard.yaml"

#: metric -> (numerator, denominator) count names; 万人比 is handled apart (population).
RATES = {
    "timely_acceptance": ("accepted_on_time", "acceptance_due"),  # 及时受理率
    "on_time": ("closed_on_time", "handling_due"),  # 按期办结率
    "participation": ("evaluated", "evaluation_concluded"),  # 参评率
    "satisfaction": ("satisfied", "evaluated"),  # 满意率
    "repeat": ("repeats", "petitions"),  # 重复信访率
    "resolution": ("resolved", "closed"),  # 化解率
    "cross_level": ("cross_level_visits", "visits"),  # 越级上访率
    "truth": ("substantiated", "truth_judged"),  # 属实率
}
METRICS = (*RATES, "per_10k")
COUNTS = ("acceptance_due", "accepted_on_time", "handling_due", "closed_on_time", "closed_late", "open_overdue",
          "evaluated", "satisfied", "evaluation_expired", "evaluation_concluded", "petitions", "repeats",
          "closed", "resolved", "visits", "cross_level_visits", "truth_judged", "substantiated")
LABELS = {"timely_acceptance": "及时受理率", "on_time": "按期办结率", "participation": "参评率",
          "satisfaction": "满意率", "repeat": "重复信访率", "resolution": "化解率", "cross_level": "越级上访率",
          "truth": "属实率", "per_10k": "万人比"}
COLOUR_LABELS = {"blue": "蓝色警示", "yellow": "黄色警告", "red": "红色问责", None: ""}


@dataclass(frozen=True)
class GroupCut:
    blue_count: int
    blue_max_share: float
    near_count: int
    near_max_share: float

    def sizes(self, ranked: int) -> tuple[int, int]:
        """(n_blue, n_near) for a peer group of ``ranked`` ranked units."""
        if ranked < 2:
            return 0, 0
        n_blue = min(self.blue_count, max(1, int(ranked * self.blue_max_share)), ranked - 1)
        n_near = min(max(n_blue, min(self.near_count, int(ranked * self.near_max_share))), ranked - 1)
        return n_blue, n_near


@dataclass(frozen=True)
class FollowUpRule:
    after_days: int
    lookback_days: int
    categories: tuple[str, ...]
    statutory_types: tuple[str, ...]
    sample_percent: float
    max_attempts: int

    def selects(self, *, case_id: str, category: str | None, statutory_type: str | None) -> bool:
        """Whether a closed case is to be called: listed category/type, or in the hash sample."""
        if category in self.categories or statutory_type in self.statutory_types:
            return True
        return in_sample(case_id, self.sample_percent)


@dataclass(frozen=True)
class ScoreSettings:
    version: int
    weights: dict[str, float]
    lower_is_better: dict[str, float]
    township: GroupCut
    county: GroupCut
    yellow_after: int
    red_after: int
    streak_resets: bool
    thresholds: dict[str, float]
    rungs: dict[str, str]
    followup: FollowUpRule
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """The version and a hash of the settings, stored with every computed month."""
        digest = hashlib.sha256(json.dumps(self.raw, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        return f"v{self.version}:{digest[:12]}"

    @classmethod
    def from_dict(cls, raw: dict) -> "ScoreSettings":
        colours, fu = raw["colours"], raw["followup"]
        return cls(version=int(raw["version"]), weights={k: float(v) for k, v in raw["weights"].items()},
                   lower_is_better={k: float(v) for k, v in raw.get("lower_is_better", {}).items()},
                   township=GroupCut(**colours["township"]), county=GroupCut(**colours["county"]),
                   yellow_after=int(colours["yellow_after"]), red_after=int(colours["red_after"]),
                   streak_resets=bool(colours["streak_resets"]),
                   thresholds={k: float(v) for k, v in raw.get("thresholds", {}).items()}, rungs=dict(raw["rungs"]),
                   followup=FollowUpRule(after_days=int(fu["after_days"]), lookback_days=int(fu["lookback_days"]),
                                         categories=tuple(fu.get("categories") or ()),
                                         statutory_types=tuple(fu.get("statutory_types") or ()),
                                         sample_percent=float(fu["sample_percent"]), max_attempts=int(fu["max_attempts"])),
                   raw=raw)


def load_settings(path: str | Path | None = None, **overrides: Any) -> ScoreSettings:
    """Settings from ``scorecard.yaml``; ``overrides`` replace top-level keys (tests, what-ifs)."""
    raw = yaml.safe_load(Path(path or DEFAULT_PATH).read_text(encoding="utf-8"))
    raw.update(overrides)
    return ScoreSettings.from_dict(raw)


def in_sample(key: str, percent: float) -> bool:
    """Deterministic sample: the first 8 hex digits of sha256(key), in basis points, below ``percent``."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 10000
    return bucket < round(percent * 100)


# -- months (local time)

def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` -> (year, month); ValueError otherwise."""
    if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
        raise ValueError(f"not a month: {text!r} (YYYY-MM)")
    year, month = int(text[:4]), int(text[5:])
    if not 1 <= month <= 12 or year < 2000:
        raise ValueError(f"not a month: {text!r} (YYYY-MM)")
    return year, month


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def shift_month(key: str, delta: int) -> str:
    year, month = parse_month(key)
    index = year * 12 + (month - 1) + delta
    return month_key(index // 12, index % 12 + 1)


def month_bounds(key: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a local month, as UTC instants."""
    year, month = parse_month(key)
    start = datetime(year, month, 1, tzinfo=ZoneInfo(tz))
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=ZoneInfo(tz))
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def local_month_of(instant: datetime, tz: str) -> str:
    local = instant.astimezone(ZoneInfo(tz))
    return month_key(local.year, local.month)


def quarter_months(year: int, quarter: int) -> list[str]:
    return [month_key(year, 3 * (quarter - 1) + i) for i in (1, 2, 3)]


# -- rates and the score

def rates_of(counts: dict[str, int], population: int | None) -> dict[str, float | None]:
    """Every metric of one unit; None when not applicable (empty denominator, unknown population)."""
    out: dict[str, float | None] = {}
    for metric, (num, den) in RATES.items():
        out[metric] = counts[num] / counts[den] if counts[den] else None
    out["per_10k"] = counts["petitions"] / (population / 10000) if population else None
    return out


def sub_score(metric: str, value: float, settings: ScoreSettings) -> float:
    cap = settings.lower_is_better.get(metric)
    if cap is None:
        return 100.0 * value
    return 100.0 * (1.0 - min(value, cap) / cap)


def composite(rates: dict[str, float | None], settings: ScoreSettings) -> float | None:
    """Weighted mean of the applicable sub-scores (4 decimals); None when nothing applies."""
    total = weight = 0.0
    for metric, value in rates.items():
        w = settings.weights.get(metric, 0.0)
        if value is None or w <= 0:
            continue
        total += w * sub_score(metric, value, settings)
        weight += w
    return round(total / weight, 4) if weight else None


def rank(scores: dict[str, float | None]) -> dict[str, int | None]:
    """unit id -> rank (1 = best) by score descending, ties by unit id; unscored -> None."""
    scored = sorted((uid for uid, s in scores.items() if s is not None), key=lambda uid: (-scores[uid], uid))
    out: dict[str, int | None] = {uid: None for uid in scores}
    out.update({uid: i for i, uid in enumerate(scored, start=1)})
    return out


def bottom_zones(scores: dict[str, float | None], ranks: dict[str, int | None],
                 cut: GroupCut) -> tuple[set[str], set[str]]:
    """(near-bottom units, blue units) of one peer group.

    The zones are the last ``n_near`` / ``n_blue`` ranks, except that a unit tied on score with a
    unit ranked just above its zone escapes it: a tie is never split by the unit-id tie-break
    (a county where every township scores the same has no bottom).
    """
    ordered = sorted((uid for uid, r in ranks.items() if r is not None), key=lambda uid: ranks[uid])
    n_blue, n_near = cut.sizes(len(ordered))

    def zone(n: int) -> set[str]:
        if n <= 0:
            return set()
        tail = ordered[len(ordered) - n:]
        above = scores[ordered[len(ordered) - n - 1]] if len(ordered) > n else None
        return {uid for uid in tail if above is None or scores[uid] < above}

    return zone(n_near), zone(n_blue)


@dataclass(frozen=True)
class Standing:
    near_bottom: bool
    streak: int
    colour: str | None


def standing(*, near: bool, blue: bool, previous_streak: int, settings: ScoreSettings) -> Standing:
    """The new streak and the colour of one unit for the month."""
    if near:
        streak = previous_streak + 1
    else:
        streak = 0 if settings.streak_resets else previous_streak
    colour = None
    if near and streak >= settings.red_after:
        colour = "red"
    elif near and streak >= settings.yellow_after:
        colour = "yellow"
    elif blue:
        colour = "blue"
    return Standing(near_bottom=near, streak=streak, colour=colour)


def failed_thresholds(rates: dict[str, float | None], thresholds: dict[str, float]) -> list[str]:
    """The metrics below their threshold (applicable ones only), in settings order."""
    return [m for m, floor in thresholds.items() if rates.get(m) is not None and rates[m] < floor]


def lagging_rung(colour: str | None, failed: Iterable[str], settings: ScoreSettings) -> str | None:
    """The initial rung of a lagging finding, or None when the unit does not lag."""
    if colour is not None:
        return settings.rungs[colour]
    return settings.rungs["threshold"] if list(failed) else None
