"""Data for the intake bench: N existing petitions and the load's request bodies.

``fill`` (the default source): the simulator's bulk fill (``bench.fill``) writes N petitions of the
workload into the intake database — the petitions, petitioners (sealed and blind-indexed under the
server's keys), the change log and the display sequences the system would have written, over the 365
days up to today, the cases' handling replayed so the petitions carry their cases' real statuses (assign
and supervise are computed in a scratch SQLite folder, not written).  The known people the load sends
again are workload petitioners with a petition in the last 300 days; their bodies repeat their matter in
other words.  ``fill(..., source="synthetic")`` (or ``XINFANG_BENCH_INTAKE_SOURCE=synthetic``): the former
synthetic population below.

Synthetic population (per filled database, seeded, deterministic from the person index ``k``):
  * 30 % of the petitions come from "frequent" petitioners (N/10 people, ~3 petitions each,
    each person keeps to one matter template: the same grievance again and again);
  * 70 % come from people with exactly one petition;
  * 75 % of the people live in (and petition about) one of Nanyang's (4113xx) 13 counties,
    the rest in other Henan counties;
  * registered 2 to 730 days ago (the repeat window is 365 days).
Identity numbers are valid GB 11643 numbers (region + birth date + sequence + check character)
that are unique per person; blind indexes are computed with the server's ``PiiVault`` key.
Sealed values are one constant Fernet token, except for the "repeat people" the load uses,
whose rows carry real tokens of their own values.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from intake_svc.codes.categories import CategoryTable
from intake_svc.codes.regions import RegionTable
from intake_svc.domain import repeat_corpus as rc
from intake_svc.domain.rules import PURPOSES
from intake_svc.models import Petition, Petitioner
from intake_svc.pii import PiiVault
from shared.identity import id_check_char

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文军红梅玉兰志强海燕"
CHANNELS_EXISTING = ("来访", "网上信访", "来信", "来电", "12345热线", "领导信箱")
CASE_STATES = ("已办结", "已办结", "已办结", "办理中", "已受理", "")
EARLIEST_BIRTH = date(1940, 1, 1)
UTC = timezone.utc
CST = timezone(timedelta(hours=8))

PETITION_COLUMNS = (
    "id", "display_no", "system", "county_no", "channel", "purpose", "statutory_type", "petitioned_at",
    "registered_at", "received_at", "registrar", "registrar_kind", "registrar_level", "people_count",
    "group_visit", "title", "request_text", "facts", "category_code", "category_name", "classic_code",
    "category_table_version", "region_code", "complained_party", "legal_litigation", "urgent", "anonymous",
    "confidential", "first_time", "repeat_of", "repeat_of_display_no", "repeat_score", "repeat_reasons",
    "reflow", "cross_level", "no_longer_accepted", "case_status", "case_resolved", "case_final",
    "case_updated_at")
PETITIONER_COLUMNS = ("petition_id", "seq", "name", "id_number_enc", "id_blind", "phone_enc", "phone_blind",
                      "address_code", "address", "registered_at")


def _check_columns() -> None:
    """Fail loudly if the model grew a column this generator does not fill."""
    want_p = {c.name for c in Petition.__table__.columns}
    want_q = {c.name for c in Petitioner.__table__.columns} - {"id"}
    if want_p != set(PETITION_COLUMNS) or want_q != set(PETITIONER_COLUMNS):
        raise RuntimeError(f"model columns changed: petitions {want_p ^ set(PETITION_COLUMNS)}, "
                           f"petitioners {want_q ^ set(PETITIONER_COLUMNS)}")


def _esc(s: str) -> str:
    """COPY text-format escaping."""
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(sep=" ")


@dataclass
class Matter:
    """One rendered petition text about a template (title, request text, facts)."""
    template: int
    title: str
    request_text: str
    facts: str
    complained: str


class World:
    """Regions, categories and a pool of rendered texts, shared by the fill and the load."""

    def __init__(self, seed: int = 20261122, variants: int = 40) -> None:
        rng = random.Random(seed)
        regions = RegionTable.load()
        self.categories = CategoryTable.load()
        self.nanyang = regions.children("411300")
        self.henan = [c for pref in regions.children("410000") if pref != "411300"
                      for c in regions.children(pref) if regions.level(c) == "county"]
        self.townships = {c: regions.children(c) for c in self.nanyang + self.henan}
        self.templates = rc.TEMPLATES
        self.cat = {t.category_code: self.categories.get(t.category_code) for t in self.templates}
        self.pool: list[list[Matter]] = []
        for ti, tpl in enumerate(self.templates):
            variants_t = []
            for _ in range(variants):
                person, nums = rc._person(rng), rc._numbers(rng)
                text = rc.render(rng, tpl, person, nums, reword=rng.random() < 0.5)
                facts = rng.choice(tpl.details.split("|")).format(**(person | rc._format_numbers(rng, nums)))
                complained = person.get("developer") or person.get("employer") or person.get("factory") or ""
                variants_t.append(Matter(ti, f"关于{tpl.topic}的问题", text, facts, complained))
            self.pool.append(variants_t)
        # COPY-escaped copies of the pool
        self.pool_esc = [[(_esc(m.title), _esc(m.request_text), _esc(m.facts), _esc(m.complained)) for m in ms]
                         for ms in self.pool]

    # -- people, derived from an index k
    def county_of(self, k: int) -> str:
        h = (k * 2654435761) & 0xFFFFFFFF
        if h % 100 < 75:
            return self.nanyang[(h // 100) % len(self.nanyang)]
        return self.henan[(h // 100) % len(self.henan)]

    @staticmethod
    def id_number(k: int, county: str) -> str:
        born = EARLIEST_BIRTH + timedelta(days=((k // 1000) * 37) % 25000)  # injective for k < 25M
        first17 = f"{county}{born:%Y%m%d}{k % 1000:03d}"
        return first17 + id_check_char(first17)

    @staticmethod
    def phone(k: int) -> str:
        return f"13{k:09d}"

    @staticmethod
    def name(k: int) -> str:
        h = (k * 40503) & 0xFFFFFF
        return SURNAMES[h % len(SURNAMES)] + GIVEN[(h // 64) % len(GIVEN)] + (GIVEN[(h // 4096) % len(GIVEN)]
                                                                              if h & 1 else "")

    def template_of(self, k: int) -> int:
        return (k * 7 + 3) % len(self.templates)


@dataclass
class FillResult:
    n: int
    seconds: float
    gen_copy_seconds: float
    index_seconds: float
    vacuum_seconds: float
    petitioners: int
    people: int
    repeat_people: list[int] = field(default_factory=list)  # frequent people with an earlier petition in the window
    sample_blinds: list[str] = field(default_factory=list)  # their id blinds (EXPLAIN / query timing)


def _constraints(cur) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str]]]:
    """(conname, table, contype, def) of PK/unique/FK constraints touching the two tables; plain indexes."""
    cur.execute("""
        SELECT c.conname, c.conrelid::regclass::text, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype IN ('p', 'u', 'f')
          AND (c.conrelid IN ('petitions'::regclass, 'petitioners'::regclass)
               OR c.confrelid IN ('petitions'::regclass, 'petitioners'::regclass))""")
    cons = cur.fetchall()
    names = {c[0] for c in cons}
    cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename IN ('petitions', 'petitioners')")
    idx = [(n, d) for n, d in cur.fetchall() if n not in names]
    return cons, idx


#: Where ``fill`` takes the existing petitions from: ``bulk`` (the simulator's bulk fill) or ``synthetic``.
SOURCE = os.environ.get("XINFANG_BENCH_INTAKE_SOURCE", "bulk")


def fill(conninfo: str, n: int, vault: PiiVault, world: World, *, seed: int = 7, repeat_people: int = 4000,
         log=print, source: str | None = None) -> FillResult:
    """Load ``n`` petitions (and their petitioners) into a migrated, empty intake database."""
    if (source or SOURCE) == "bulk":
        return bulk_fill(conninfo, n, vault, repeat_people=repeat_people, log=log)
    return synthetic_fill(conninfo, n, vault, world, seed=seed, repeat_people=repeat_people, log=log)


def bulk_fill(conninfo: str, n: int, vault: PiiVault, *, repeat_people: int = 4000, seed: int = 1,
              days: int = 365, log=print) -> FillResult:
    """``n`` petitions of the simulator's workload (``bench.fill``, handling replayed, intake written only)
    registered over the ``days`` days up to yesterday; the known people are petitioners (dicts: name,
    id_number, phone, county, region_code, category, title, request_text of their latest petition) with
    a petition in the last 300 days."""
    import tempfile
    from pathlib import Path

    from bench.fill.core import BulkFill, FillParams

    t0 = time.perf_counter()
    start = date.today() - timedelta(days=days)
    url = "postgresql+psycopg://" + conninfo.split("://", 1)[1] if "://" in conninfo else conninfo
    with tempfile.TemporaryDirectory(prefix="xfb-intake-bulk-") as tmp:
        settings = vault.settings.replace(data_dir=Path(tmp), clock_control=True, database_urls={"intake": url})
        job = BulkFill(settings, FillParams.for_cases(n, seed=seed, days=days, start=start), write=("intake",))
        known: dict[str, dict] = {}
        horizon = datetime.now(UTC) - timedelta(days=300)
        one = job._one

        def remember(item, day, now):  # the latest petition of each petitioner in the last 300 days
            one(item, day, now)
            person = item.petitioner
            if person is not None and now >= horizon and person.county.startswith("4113"):
                known[person.id_number] = {
                    "name": person.name, "id_number": person.id_number, "phone": person.phone,
                    "county": person.county, "region_code": item.region_code, "category": item.category,
                    "title": item.title, "request_text": item.request_text}
        job._one = remember
        try:
            report = job.run()
        finally:
            job.close()
    people = list(known.values())
    random.Random(seed).shuffle(people)
    people = people[:repeat_people]
    seconds = time.perf_counter() - t0
    log(f"    bulk fill: {report.petitions:,} petitions over {report.days} days from {start} "
        f"({report.repeats:,} linked repeats) in {seconds:.1f}s")
    copy = sum(v for k, v in report.seconds.items() if k.startswith("copy "))
    return FillResult(n=report.petitions, seconds=seconds, gen_copy_seconds=copy,
                      index_seconds=report.seconds.get("re-create indexes and keys", 0.0),
                      vacuum_seconds=report.seconds.get("analyze", 0.0),
                      petitioners=report.rows.get("copy intake.petitioners (writer thread)", 0),
                      people=len(job.by_person), repeat_people=people,
                      sample_blinds=[vault.blind(p["id_number"]) for p in people[:200]])


def synthetic_fill(conninfo: str, n: int, vault: PiiVault, world: World, *, seed: int = 7,
                   repeat_people: int = 4000, log=print) -> FillResult:
    """Load ``n`` synthetic petitions (and their petitioners) into a migrated, empty intake database."""
    import psycopg

    _check_columns()
    rng = random.Random(seed)
    t0 = time.perf_counter()
    frequent = max(1, n // 10)
    categories_version = world.categories.version
    # R: the frequent Nanyang people the load will send again (real Fernet tokens, one petition in the window)
    nanyang = set(world.nanyang)
    chosen = [k for k in range(frequent) if world.county_of(k) in nanyang][:repeat_people]
    chosen_set = set(chosen)
    placeholder = vault.seal("000000000000000000")  # one real token, reused for speed (never opened by the load)
    seen_r: dict[int, int] = {}
    blinds: dict[int, tuple[str, str, str, str]] = {}  # frequent person -> (id_enc, id_blind, ph_enc, ph_blind)
    now = time.time()
    day_str: dict[int, str] = {}
    seq: dict[tuple[str, int], int] = {}
    single = frequent  # next single person's index

    with psycopg.connect(conninfo, autocommit=True) as c1, psycopg.connect(conninfo, autocommit=True) as c2:
        cur = c1.cursor()
        cons, idx = _constraints(cur)
        cur.execute("SELECT count(*) FROM petitions")
        if cur.fetchone()[0]:
            raise RuntimeError("petitions is not empty")
        for name, table, contype, _ in cons:
            if contype == "f":
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in idx:
            cur.execute(f'DROP INDEX "{name}"')
        for name, table, contype, _ in cons:
            if contype != "f":
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        t_gen = time.perf_counter()
        with c1.cursor().copy(f"COPY petitions ({', '.join(PETITION_COLUMNS)}) FROM STDIN") as cp, \
                c2.cursor().copy(f"COPY petitioners ({', '.join(PETITIONER_COLUMNS)}) FROM STDIN") as cq:
            rows_p: list[str] = []
            rows_q: list[str] = []
            rand, randrange, getrandbits = rng.random, rng.randrange, rng.getrandbits
            for i in range(n):
                if rand() < 0.3:
                    k = randrange(frequent)
                    tpl = world.template_of(k)
                else:
                    k, single = single, single + 1
                    tpl = randrange(len(world.templates))
                county = world.county_of(k)
                if k in chosen_set and k not in seen_r:
                    age = 2 + rand() * 298  # the first petition of a repeat person: within the window
                else:
                    age = 2 + rand() * 728
                if k in chosen_set:
                    seen_r[k] = seen_r.get(k, 0) + 1
                reg = now - age * 86400
                pet = reg - rand() * 3 * 86400
                day = int((reg + 28800) // 86400)
                ds = day_str.get(day)
                if ds is None:
                    ds = day_str[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y%m%d")
                s = seq[(county, day)] = seq.get((county, day), 0) + 1
                pid = f"{getrandbits(128):032x}"
                title, text, facts, complained = world.pool_esc[tpl][randrange(len(world.pool_esc[tpl]))]
                code = world.templates[tpl].category_code
                cat = world.cat[code]
                region = county if rand() < 0.6 else world.townships[county][randrange(len(world.townships[county]))] \
                    if world.townships[county] else county
                purpose = "求决" if rand() < 0.8 else ("申诉" if rand() < 0.5 else "检举控告")
                state = CASE_STATES[randrange(len(CASE_STATES))]
                resolved = state == "已办结"
                final = resolved and rand() < 0.03
                regs, pets = _ts(reg), _ts(pet)
                rows_p.append("\t".join((
                    pid, f"{county}{ds}{s:04d}", f"xf-{county}", f"H{i:08d}",
                    CHANNELS_EXISTING[randrange(6)], purpose, PURPOSES[purpose], pets, regs, regs,
                    f"xf-{county}", "api_key", "county", "1", "f", title, text, facts, code, cat.name,
                    cat.classic_code, categories_version, region, complained, "f", "f", "f", "f", "t",
                    "\\N", "\\N", "\\N", "[]", "f", "f", "f", state, "t" if resolved else "f",
                    "t" if final else "f", _ts(reg + 20 * 86400) if state else "\\N")))
                b = blinds.get(k)
                if b is None:
                    idn, ph = world.id_number(k, county), world.phone(k)
                    real = k in chosen_set
                    b = (vault.seal(idn) if real else placeholder, vault.blind(idn),
                         vault.seal(ph) if real else placeholder, vault.blind(ph))
                    if k < frequent:
                        blinds[k] = b
                rows_q.append("\t".join((pid, "0", world.name(k), b[0], b[1], b[2], b[3], county, "", regs)))
                if len(rows_p) >= 5000:
                    cp.write("\n".join(rows_p) + "\n")
                    cq.write("\n".join(rows_q) + "\n")
                    rows_p.clear()
                    rows_q.clear()
                if i and i % 250_000 == 0:
                    log(f"    {i:,} rows generated ({time.perf_counter() - t_gen:.1f}s)")
            if rows_p:
                cp.write("\n".join(rows_p) + "\n")
                cq.write("\n".join(rows_q) + "\n")
        t_idx = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '256MB'")
        for name, table, contype, definition in cons:
            if contype != "f":
                cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for _, definition in idx:
            cur.execute(definition)
        for name, table, contype, definition in cons:
            if contype == "f":
                cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        t_vac = time.perf_counter()
        cur.execute("VACUUM (ANALYZE) petitions")
        cur.execute("VACUUM (ANALYZE) petitioners")
        t_end = time.perf_counter()
    people = single
    repeat = [k for k in chosen if seen_r.get(k)]
    return FillResult(n=n, seconds=t_end - t0, gen_copy_seconds=t_idx - t_gen, index_seconds=t_vac - t_idx,
                      vacuum_seconds=t_end - t_vac, petitioners=n, people=people, repeat_people=repeat,
                      sample_blinds=[blinds[k][1] for k in repeat[:200]])


# -- request bodies -------------------------------------------------------------------------------

PLACEHOLDER = "@@NO@@"


def intake_bodies(world: World, repeat_people: list[int], count: int, *, repeat_share: float = 0.2,
                  new_base: int = 5_000_000, seed: int = 11,
                  counties: list[str] | None = None) -> tuple[list[str], int]:
    """``count`` valid registration bodies (JSON, county_no = PLACEHOLDER); ~``repeat_share`` of them
    from people who have earlier petitions, the rest from new people living in ``counties``
    (default: Nanyang's 13).  Returns (bodies, repeats)."""
    rng = random.Random(seed)
    counties = counties or world.nanyang
    out, repeats = [], 0
    now = datetime.now(CST)
    for j in range(count):
        if repeat_people and rng.random() < repeat_share:
            k = rng.choice(repeat_people)
            repeats += 1
            if isinstance(k, dict):  # a petitioner of the bulk fill: the same matter again
                out.append(_known_body(k, rng, now))
                continue
            county, tpl = world.county_of(k), world.template_of(k)
        else:
            k = new_base + j
            county = counties[rng.randrange(len(counties))]
            tpl = rng.randrange(len(world.templates))
        m = rng.choice(world.pool[tpl])
        towns = world.townships[county]
        region = county if rng.random() < 0.6 or not towns else rng.choice(towns)
        petitioned = (now - timedelta(minutes=rng.randint(60, 60 * 24 * 3))).isoformat(timespec="seconds")
        body = {
            "system": "bench-intake", "county_no": PLACEHOLDER, "channel": rng.choice(("来访", "网上信访", "来信")),
            "purpose": "求决", "petitioned_at": petitioned, "people_count": 1, "title": m.title,
            "request_text": m.request_text, "facts": m.facts, "category": world.templates[tpl].category_code,
            "region_code": region, "complained_party": m.complained,
            "petitioners": [{"name": world.name(k), "id_number": world.id_number(k, county),
                             "phone": world.phone(k), "address_code": county}],
        }
        out.append(json.dumps(body, ensure_ascii=False))
    return out, repeats


def _known_body(person: dict, rng: random.Random, now: datetime) -> str:
    """A registration body of a bulk-filled petitioner about their matter (as the simulator sends it)."""
    petitioned = (now - timedelta(minutes=rng.randint(60, 60 * 24 * 3))).isoformat(timespec="seconds")
    return json.dumps({
        "system": "bench-intake", "county_no": PLACEHOLDER, "channel": rng.choice(("来访", "网上信访", "来信")),
        "purpose": "求决", "petitioned_at": petitioned, "people_count": 1, "title": person["title"],
        "request_text": person["request_text"], "category": person["category"], "region_code": person["region_code"],
        "petitioners": [{"name": person["name"], "id_number": person["id_number"], "phone": person["phone"],
                         "address_code": person["county"]}]}, ensure_ascii=False)


def baseline_bodies(world: World, count: int, *, seed: int = 13) -> list[str]:
    """``count`` 10-field bodies for the bare Flask baseline (county_no = PLACEHOLDER)."""
    rng = random.Random(seed)
    now = datetime.now(CST)
    out = []
    for _ in range(count):
        tpl = rng.randrange(len(world.templates))
        m = rng.choice(world.pool[tpl])
        county = world.nanyang[rng.randrange(len(world.nanyang))]
        out.append(json.dumps({
            "system": "bench-baseline", "county_no": PLACEHOLDER, "channel": rng.choice(("来访", "网上信访", "来信")),
            "purpose": "求决", "petitioned_at": (now - timedelta(minutes=rng.randint(60, 4000))).isoformat(
                timespec="seconds"),
            "people_count": 1, "title": m.title, "request_text": m.request_text,
            "category": world.templates[tpl].category_code, "region_code": county}, ensure_ascii=False))
    return out
