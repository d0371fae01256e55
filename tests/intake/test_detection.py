"""Repeat (重复), reflow (回流), cross-level (越级) and no-longer-accepted (不再受理) at registration."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import select

from intake_svc.models import Outbox
from intake_svc.service import apply_case_status
from shared.contracts import CaseStatusChanged
from tests.intake.conftest import ID_MAIN, ID_OTHER, full_body

PROPERTY = "开发商拖欠我们小区房产证三年了，一直不给办，请政府督促办理。"
PARAPHRASE = "我们小区买房已经三年，房产证至今办不下来，开发商一直推诿，请求帮助。"
PARKING = "小区物业擅自提高停车位收费标准，每月从三百元涨到六百元，业主无法接受。"


def person(id_number=ID_MAIN):
    return [{"name": "张三", "id_number": id_number, "phone": "13812345678"}]


def set_case(intake, petition, status, *, resolved=False, final=False):
    with intake.runtime.uow() as session:
        apply_case_status(session, CaseStatusChanged(
            case_id="c-" + petition["id"], petition_id=petition["id"], display_no=petition["display_no"],
            unit_id="411302-zjj", region_code=petition["region_code"], status=status, previous_status="办理中",
            changed_at=datetime.now(timezone.utc), actor="handler", resolved=resolved, final=final))


def test_paraphrased_matter_of_the_same_person_is_a_repeat(intake):
    first = intake.post(full_body(request_text=PROPERTY, petitioners=person())).json
    second = intake.post(full_body(request_text=PARAPHRASE, title="房产证办不下来", petitioners=person())).json
    d = second["detection"]
    assert d["repeat_of"] == first["id"] and d["repeat_of_display_no"] == first["display_no"]
    assert d["repeat_score"] > 0.5 and d["repeat_reasons"]
    assert not d["reflow"] and not d["cross_level"] and second["first_time"] is False
    # and the flag rides on petition.registered
    with intake.runtime.sessions() as s:
        bodies = [json.loads(o.body) for o in s.scalars(select(Outbox).where(Outbox.queue_name == "assign"))]
    flags = [b["payload"]["flags"] for b in bodies if b["payload"]["petition_id"] == second["id"]][0]
    assert flags["repeat_of"] == first["id"]


def test_another_matter_or_another_person_is_not_a_repeat(intake):
    intake.post(full_body(request_text=PROPERTY, petitioners=person()))
    other_matter = intake.post(full_body(request_text=PARKING, title="停车费上涨", facts="物业公司单方面发布涨价通知。",
                                         petitioners=person())).json
    other_person = intake.post(full_body(request_text=PROPERTY, petitioners=person(ID_OTHER))).json
    assert other_matter["detection"]["repeat_of"] is None
    assert other_person["detection"]["repeat_of"] is None
    assert other_person["first_time"] is True


def test_coming_back_after_closure_is_reflow(intake):
    first = intake.post(full_body(request_text=PROPERTY, petitioners=person())).json
    set_case(intake, first, "已办结", resolved=True)
    again = intake.post(full_body(request_text=PARAPHRASE, petitioners=person())).json
    assert again["detection"]["repeat_of"] == first["id"] and again["detection"]["reflow"] is True


def test_after_completed_re_review_it_is_proposed_not_accepted(intake):
    first = intake.post(full_body(request_text=PROPERTY, petitioners=person())).json
    set_case(intake, first, "复核已完成", resolved=True, final=True)
    again = intake.post(full_body(request_text=PROPERTY, petitioners=person())).json
    assert again["detection"]["no_longer_accepted"] is True
    assert again["detection"]["reflow"] is False


def test_registered_at_the_city_while_open_at_the_county_is_cross_level(intake):
    # Given the matter registered by the county and still open
    county = intake.post(full_body(request_text=PROPERTY, petitioners=person()), jurisdiction="411302").json
    assert county["detection"]["cross_level"] is False
    # When the same person brings it to the city
    city = intake.post(full_body(request_text=PARAPHRASE, petitioners=person()), jurisdiction="411300").json
    # Then it is flagged 越级
    assert city["detection"]["repeat_of"] == county["id"] and city["detection"]["cross_level"] is True


def test_city_registration_of_a_closed_matter_is_reflow_not_cross_level(intake):
    county = intake.post(full_body(request_text=PROPERTY, petitioners=person()), jurisdiction="411302").json
    set_case(intake, county, "已办结", resolved=True)
    city = intake.post(full_body(request_text=PROPERTY, petitioners=person()), jurisdiction="411300").json
    assert city["detection"]["cross_level"] is False and city["detection"]["reflow"] is True


def test_phone_matches_when_there_is_no_identity_number(intake):
    caller = [{"name": "李四", "phone": "13912345678"}]
    first = intake.post(full_body(channel="来电", request_text=PROPERTY, petitioners=caller)).json
    again = intake.post(full_body(channel="来电", request_text=PARAPHRASE, petitioners=caller)).json
    assert again["detection"]["repeat_of"] == first["id"]


def test_detection_as_dict_is_dataclasses_asdict():
    """The history entry's copy of detection (``Detection.as_dict``) keeps up with the dataclass's fields."""
    import dataclasses

    from intake_svc.detection import Detection

    found = Detection(repeat_of="p1", repeat_of_display_no="41010220260304001", repeat_score=0.91,
                      repeat_reasons=["same_person", "same_location"], reflow=True, cross_level=True,
                      no_longer_accepted=True)
    assert found.as_dict() == dataclasses.asdict(found)
    assert list(found.as_dict()) == [f.name for f in dataclasses.fields(Detection)]
    assert found.as_dict()["repeat_reasons"] is not found.repeat_reasons
