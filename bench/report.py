"""Formatting of the bench results: the side-by-side table printed by run.py."""
from __future__ import annotations

from bench.traces import STAGES



def _num(v, digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def _ratio(a, b) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}x"


def columns(results: dict) -> list[tuple[str, dict]]:
    cols = []
    thin = results.get("thin_slice", {})
    if isinstance(thin.get("embedded"), dict) and "e2e_ms" in thin["embedded"]:
        cols.append(("embedded", thin["embedded"]))
    for key, res in sorted(thin.get("distributed", {}).items()):
        if isinstance(res, dict) and "e2e_ms" in res:
            cols.append((f"PG+Redis@{key.split('=')[-1]}", res))
    return cols


def table(results: dict) -> str:
    p = results["params"]
    cols = columns(results)
    floor = (results.get("broker") or {}).get("floor") or {}
    ceiling = (results.get("broker") or {}).get("ceiling") or {}
    rows: list[tuple[str, list, object]] = []  # (label, values per column, baseline)
    for q in ("p50", "p95", "max"):
        rows.append((f"e2e POST->notice {q} ms", [c["e2e_ms"][q] for _, c in cols], floor.get(q)))
    rows.append(("POST response p50 ms", [c["post_ms"]["p50"] for _, c in cols], None))
    rows.append(("POST response p95 ms", [c["post_ms"]["p95"] for _, c in cols], None))
    for key, label in (("post_p50_first_10pct", "POST p50 first 10% ms"), ("post_p50_last_10pct", "POST p50 last 10% ms"),
                       ("e2e_p50_first_10pct", "e2e p50 first 10% ms"), ("e2e_p50_last_10pct", "e2e p50 last 10% ms")):
        rows.append((label, [c["drift_ms"][key] for _, c in cols], None))
    rows.append(("submitted petitions/s", [c["submitted_per_s"] for _, c in cols], p["rate"]))
    rows.append(("sustained petitions/s (e2e)", [c["sustained_petitions_per_s"] for _, c in cols], p["rate"]))
    rows.append(("broker msgs per petition", [c["messages_per_petition"] for _, c in cols], None))
    rows.append(("broker msgs/s used", [c["sustained_petitions_per_s"] * c["messages_per_petition"] for _, c in cols],
                 ceiling.get("msgs_per_s")))
    rows.append(("cold-start max ms (lead-in)", [c["cold_start_max_ms"] for _, c in cols], floor.get("cold_start_max")))
    heads = [name for name, _ in cols]
    w = 31
    lines = [f"{'figure':<{w}}" + "".join(f"{h:>16}" for h in heads) + f"{'baseline':>12}"
             + "".join(f"{h.replace('embedded', 'emb').replace('PG+Redis', 'pg') + '/base':>14}" for h in heads)]
    lines.append("-" * len(lines[0]))
    for label, values, base in rows:
        lines.append(f"{label:<{w}}" + "".join(f"{_num(v):>16}" for v in values) + f"{_num(base):>12}"
                     + "".join(f"{_ratio(v, base):>14}" for v in values))
    lines.append("")
    lines.append("baseline column: e2e rows = one-hop floor (Redis enqueue -> no-op actor start, same pace);")
    lines.append("  petitions/s rows = offered rate; msgs/s row = broker ceiling (no-op actor, 1 worker x 4 threads);")
    lines.append("  msgs per petition = outbox rows written in all four databases during the run / petitions.")
    if floor:
        lines.append(f"one-hop floor: p50 {_num(floor['p50'])} ms, p95 {_num(floor['p95'])} ms, "
                     f"max {_num(floor['max'])} ms over {floor['n']} msgs at {_num(floor['achieved_rate'])}/s "
                     f"(cold start max {_num(floor['cold_start_max'])} ms); the thin slice's critical path "
                     f"has 2 broker hops + 2 relays, so 2 x floor p50 = {_num(2 * floor['p50'])} ms")
    if ceiling:
        lines.append(f"broker ceiling: {_num(ceiling['msgs_per_s'], 0)} msgs/s draining {ceiling['messages']:,} "
                     f"(enqueue {_num(ceiling['enqueue_msgs_per_s'], 0)} msgs/s)")
    if cols:
        lines += ["", "where the e2e time goes (ms; per-petition stage durations from the databases)"]
        lines.append(f"{'stage (p50 / p95)':<{w}}" + "".join(f"{h:>16}" for h in heads) + f"{'floor':>16}")
        for stage in STAGES:
            cells = "".join(f"{_num(c['stages_ms'][stage]['p50']) + ' / ' + _num(c['stages_ms'][stage]['p95']):>16}"
                            for _, c in cols)
            base = (f"{_num(floor.get('p50'))} / {_num(floor.get('p95'))}"
                    if stage.startswith("hop") and floor else "")
            lines.append(f"{stage:<{w}}" + cells + f"{base:>16}")
    for name, err in results.get("errors", {}).items():
        lines.append(f"FAILED {name}: {err}")
    return "\n".join(lines)
