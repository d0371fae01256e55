"""Bench: what keeping the scorecard facts costs supervise's projection (每条事件的投影开销).

    .venv/bin/python -m bench.supervise.projection [--backend sqlite|postgres|both] [--cases 60] [--rounds 8]

Feeds supervise's projection functions (as its actors call them, each event in its own unit of work) with
whole cases: 登记, 交办, then 签收, 受理, 送达, 处理意见, 送达, 评价, 结案报告, 审签 with their open stages —
11 events per case.  Rounds alternate the two ways on the same database (so both see the same load):

* ``facts``: as the service runs — the session hook recomputes the case's month facts after each flush
  that changed a counted column;
* ``bare``: the same events with the hook suspended (``facts.SUSPENDED``): the projection alone.

At the end the facts the hook kept are checked against a full recomputation (``facts.rebuild_all``).

Prints the median time per event of each way over the rounds and their ratio.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

from shared import clock
from shared.config import Settings
from shared.contracts import CaseActionRecorded, CaseAssigned, DirectoryChanged, PetitionRegistered

UNITS = [{"id": "411302-gov", "name": "宛城区人民政府", "kind": "government", "level": "county", "region_code": "411302"},
         {"id": "411302001000", "name": "东关街道", "kind": "township", "level": "township",
          "region_code": "411302001000", "parent_id": "411302-gov"}]
START = datetime(2026, 3, 2, 2, tzinfo=timezone.utc)
#: (action, status, days after 交办, the open stages after it: (kind, due in days after 交办))
LIFECYCLE = (("sign", "已签收待办理", 1, (("acceptance_notice", 15),)),
             ("accept", "已受理待送达", 3, (("handling", 63),)),
             ("serve", "办理中", 3, (("handling", 63),)),
             ("issue_opinion", "已处理待送达", 40, ()),
             ("serve", "已送达待评价", 41, (("evaluation", 71),)),
             ("evaluate", "已送达待评价", 45, ()),
             ("submit_closure", "已送达待评价", 46, ()),
             ("sign_off", "已办结", 47, ()))


def case_events(n: int) -> list[tuple[str, object]]:
    """The events of case ``n`` in delivery order: (kind, event)."""
    pid = uuid.uuid4().hex
    at = START + timedelta(hours=n % 500)
    region = "411302001000"
    out: list[tuple[str, object]] = [("registered", PetitionRegistered(
        petition_id=pid, display_no=f"411302{n:014d}", system="bench", county_no=None, region_code=region,
        category="城乡建设", channel="网上信访", request_text="小区外墙脱落", petitioner_name="张三", registered_at=at,
        flags={}, purpose="求决", statutory_type="申诉求决类"))]
    case_id = "c" + pid[:30]
    out.append(("assigned", CaseAssigned(case_id=case_id, petition_id=pid, display_no=f"411302{n:014d}",
                                         unit_id=region, unit_name="东关街道", region_code=region, category="城乡建设",
                                         assigned_at=at, due_at=at + timedelta(days=60), deadline_basis="第三十四条",
                                         leader_id=None, leader_name=None)))
    data = {"issue_opinion": {"outcome": "支持", "truth": "属实"}, "evaluate": {"grade": "满意"},
            "submit_closure": {"failed": []}, "sign_off": {"resolution": "resolved"}}
    for seq, (action, status, day, stages) in enumerate(LIFECYCLE, start=2):
        when = at + timedelta(days=day)
        out.append(("action", CaseActionRecorded(
            case_id=case_id, petition_id=pid, display_no=f"411302{n:014d}", unit_id=region, region_code=region,
            action=action, label=action, status=status, previous_status="", at=when, actor="承办人",
            actor_role="handler", data=data.get(action, {}), seq=seq,
            stages=[{"kind": k, "due_at": (at + timedelta(days=d)).isoformat(), "warn_at": None, "basis": "",
                     "paused": False, "policy": "p@1"} for k, d in stages])))
    return out


def run(backend: str, cases: int, rounds: int) -> dict:
    from supervise_svc import service
    from supervise_svc.app import build_runtime
    from supervise_svc.scores import facts

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xfb-projection-")))
        settings = Settings(data_dir=tmp, secret_key="bench-projection-secret-0123456789", clock_control=True)
        if backend == "postgres":
            from bench.common import pg_databases

            urls = stack.enter_context(pg_databases())
            settings = settings.replace(database_urls={"supervise": urls["supervise"]})
        runtime = build_runtime(settings)
        stack.callback(runtime.close)
        runtime.create_schema()
        clock.configure(settings)
        clock.current().set(START, frozen=True)
        with runtime.uow() as s:
            service.project_directory_changed(s, DirectoryChanged(version=1, changed_at=START, full=True, units=UNITS,
                                                                  people=[]))
        times: dict[str, list[float]] = {"facts": [], "bare": []}
        n = 0
        for r in range(rounds):
            for way in (("facts", "bare") if r % 2 == 0 else ("bare", "facts")):
                batch = [case_events(n + i) for i in range(cases)]
                n += cases
                events = [e for case in batch for e in case]
                t0 = time.perf_counter()
                for kind, event in events:
                    with runtime.uow() as s:
                        if way == "bare":  # through the commit (the hook recomputes before it)
                            s.info[facts.SUSPENDED] = True
                        if kind == "registered":
                            service.project_petition_registered(s, event, runtime=runtime)
                        elif kind == "assigned":
                            service.project_case_assigned(s, event)
                        else:
                            service.project_case_action(s, event, uuid.uuid4().hex, runtime=runtime,
                                                        tz=settings.timezone)
                times[way].append((time.perf_counter() - t0) / len(events))
        from sqlalchemy import select

        from supervise_svc.models import ScoreFact

        with runtime.uow() as s:  # the kept facts against a full recomputation (the bare rounds' cases too)
            table = ScoreFact.__table__
            kept = {tuple(r) for r in s.execute(select(table))}
            facts.rebuild_all(s)
            full = {tuple(r) for r in s.execute(select(table))}
            s.rollback()
        rows = len(kept)
        bare_cases = {r[0] for r in full} - {r[0] for r in kept}
        if kept != {r for r in full if r[0] not in bare_cases}:
            raise SystemExit(f"{backend}: the facts kept by the hook differ from a full recomputation")
    out = {way: statistics.median(values) for way, values in times.items()}
    out["ratio"] = out["facts"] / out["bare"]
    out["fact_rows"] = rows
    out["events"] = n * (2 + len(LIFECYCLE))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--cases", type=int, default=60, help="cases per round and way")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    for backend in (("sqlite", "postgres") if args.backend == "both" else (args.backend,)):
        r = run(backend, args.cases, args.rounds)
        print(f"{backend:9s} {r['events']:,} events, median of {args.rounds} rounds per way "
              f"({r['fact_rows']:,} fact rows kept by the 'facts' rounds):")
        print(f"  projection, facts kept  {r['facts'] * 1000:7.2f} ms/event")
        print(f"  projection, hook off    {r['bare'] * 1000:7.2f} ms/event")
        print(f"  ratio                   {r['ratio']:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
