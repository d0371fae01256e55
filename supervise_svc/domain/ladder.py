"""督办阶梯: the order of rungs and the policy's pure decisions (when to climb, where to start)."""
from __future__ import annotations

from datetime import datetime, timedelta

from shared.contracts import LADDER_RUNGS

RUNGS: tuple[str, ...] = tuple(LADDER_RUNGS)


def rank(rung: str | None) -> int:
    return RUNGS.index(rung) if rung in RUNGS else -1


def higher(a: str | None, b: str | None) -> str | None:
    return a if rank(a) >= rank(b) else b


def next_rung(rung: str | None) -> str | None:
    """The rung above ``rung`` (None at the top)."""
    i = rank(rung) + 1
    return RUNGS[i] if i < len(RUNGS) else None


def rule_policy(policy: dict, rule: str) -> dict:
    """The policy of one rule (its own entry over the defaults)."""
    return {**policy.get("defaults", {}), **policy.get("rules", {}).get(rule, {})}


def first_rung(policy: dict, rule: str) -> str:
    return rule_policy(policy, rule).get("first_rung", RUNGS[0])


def repeat_floor(policy: dict, count) -> tuple[str | None, str]:
    """The lowest rung a new finding starts at given repeated findings: ``count(scope, days)`` is the number
    of findings on the same unit / case in the last ``days`` days, the new one included.
    Returns (rung or None, the repeat rule's name)."""
    best, name = None, ""
    for i, rule in enumerate(policy.get("repeat", [])):
        if count(rule["scope"], int(rule["days"])) >= int(rule["count"]) and rank(rule["at_least"]) > rank(best):
            best, name = rule["at_least"], rule.get("name") or f"repeat_{rule['scope']}_{i}"
    return best, name


def review_due(policy: dict, rule: str, rung: str | None, since: datetime) -> datetime | None:
    """When a finding at ``rung`` since ``since`` climbs if still unrectified (None: it does not climb by time)."""
    p = rule_policy(policy, rule)
    if rank(rung) >= rank(p.get("max_auto_rung", "interview")):
        return None
    return since + timedelta(days=int(p.get("climb_after_days", 5)))


def rectify_due(policy: dict, rule: str, since: datetime) -> datetime:
    return since + timedelta(days=int(rule_policy(policy, rule).get("rectify_days", 10)))


def validate_policy(policy: dict) -> dict[str, list[str]]:
    """Field errors of an edited policy ({} when valid)."""
    errors: dict[str, list[str]] = {}
    from shared.contracts import FINDING_RULES

    if not isinstance(policy.get("rules"), dict):
        errors["rules"] = ["需要按规则配置的对象"]
        return errors
    for rule, p in {"defaults": policy.get("defaults", {}), **policy["rules"]}.items():
        if rule != "defaults" and rule not in FINDING_RULES:
            errors[f"rules.{rule}"] = ["未知的督查规则"]
            continue
        if not isinstance(p, dict):
            errors[f"rules.{rule}"] = ["需要对象"]
            continue
        for key in ("first_rung", "max_auto_rung"):
            if key in p and p[key] not in RUNGS:
                errors[f"rules.{rule}.{key}"] = [f"必须是 {', '.join(RUNGS)} 之一"]
        for key in ("climb_after_days", "rectify_days"):
            if key in p and (not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 1):
                errors[f"rules.{rule}.{key}"] = ["必须是正整数（天）"]
    for i, r in enumerate(policy.get("repeat", []) or []):
        if not isinstance(r, dict) or r.get("scope") not in ("unit", "case") or r.get("at_least") not in RUNGS \
                or not isinstance(r.get("count"), int) or not isinstance(r.get("days"), int) \
                or r["count"] < 1 or r["days"] < 1:
            errors[f"repeat.{i}"] = ["需要 scope (unit|case)、count、days（正整数）和 at_least（阶梯档次）"]
    return errors
