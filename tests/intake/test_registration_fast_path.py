"""The registration fast path (Core inserts, columns-only candidates, text-free exclusions):
what it answers and stores is what the ORM reads back, and exclusions agree with the matcher."""
from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import func, select

from intake_svc import service
from intake_svc.domain.similarity import Matter, MatterMatcher, rules_out
from intake_svc.models import Petition, PetitionChange, Petitioner
from tests.intake.conftest import ID_MAIN, full_body


def test_response_equals_the_stored_record_read_back(intake):
    # Given a first petition and a paraphrased second one of the same person (a repeat), two petitioners
    first = intake.post(full_body()).json
    body = full_body(title="房产证还是办不下来", petitioners=[
        {"name": "张三", "id_number": ID_MAIN, "phone": "13812345678", "address_code": "411302",
         "address": "宛城区某小区"},
        {"name": "李四", "phone": "0377-63123456"}])
    # When it is registered
    r = intake.post(body)
    assert r.status_code == 201, r.json
    created = r.json
    # Then the response equals what a later GET reads from the database (apart from "existing"; the
    # times are the same instants, answered in the offset they were sent in, as before, and read back in UTC)
    got = intake.get(f"/{created['id']}").json
    times = ("petitioned_at", "registered_at", "received_at")
    assert {k: v for k, v in created.items() if k not in ("existing", *times)} == \
        {k: v for k, v in got.items() if k not in ("existing", *times)}
    assert [datetime.fromisoformat(created[k]) for k in times] == [datetime.fromisoformat(got[k]) for k in times]
    assert created["detection"]["repeat_of"] == first["id"] and created["first_time"] is False
    assert [p["name"] for p in got["petitioners"]] == ["张三", "李四"]
    assert got["petitioners"][0]["address"] == "宛城区某小区" and got["petitioners"][1]["id_number"] is None
    # And exactly one petition, two petitioners and one history entry were written for it
    with intake.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Petitioner)
                        .where(Petitioner.petition_id == created["id"])) == 2
        assert s.scalar(select(func.count()).select_from(PetitionChange)
                        .where(PetitionChange.petition_id == created["id"])) == 1
        stored = s.get(Petition, created["id"])
        assert (stored.case_status, stored.case_resolved, stored.case_final) == ("", False, False)
        assert stored.petitioners[1].registered_at == stored.registered_at


def test_resend_of_the_same_county_number_returns_the_existing_petition(intake):
    body = full_body()
    first = intake.post(body)
    again = intake.post(body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"] and again.json["existing"] is True
    assert again.json["petitioners"][0]["id_number"] == "1101**********002X"
    assert intake.count() == 1


def test_display_numbers_are_consecutive_per_region_and_day(intake):
    numbers = [intake.post(full_body()).json["display_no"] for _ in range(3)]
    assert [n[-4:] for n in numbers] == ["0001", "0002", "0003"]
    assert len({n[:14] for n in numbers}) == 1


def test_concurrent_display_numbers_are_unique(intake):
    # Sixteen allocations from eight threads at once: no number twice, none skipped
    out: list[str] = []
    lock = threading.Lock()

    def take():
        for _ in range(2):
            with intake.runtime.uow() as session:
                n = service.next_display_no(session, "411303", "Asia/Shanghai")
            with lock:
                out.append(n)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(n[-4:]) for n in out) == list(range(1, 17))


def _matter(region: str, respondent: str = "", text: str = "开发商拖欠房产证三年不给办理") -> Matter:
    return Matter(region_code=region, category_code="0301", classic_code="03", text=text, respondent=respondent)


def test_rules_out_only_what_compare_rejects_before_the_text():
    matcher = MatterMatcher()
    new = _matter("411302001001", "宏达房地产开发有限公司")
    cases = [
        (_matter("411303"), True),                                   # another county: 0.0 < 0.6
        (_matter("411302"), False),                                  # same county, respondent unnamed
        (_matter("411302001002", "宏达房地产开发有限公司"), False),   # same township, same respondent
        (_matter("411302", "华兴化工厂"), True),                       # respondents differ (overlap 0)
    ]
    for earlier, excluded in cases:
        assert rules_out(new, earlier.region_code, earlier.respondent) is excluded
        if excluded:
            assert matcher.compare(new, earlier).same_matter is False
    # the same texts: only the candidates not ruled out can be the best match
    best = matcher.best_match(new, [(str(i), e) for i, (e, _) in enumerate(cases)])
    assert best is not None and best[0] in ("1", "2")
