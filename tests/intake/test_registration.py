"""Registering petitions through the native API: the full record, lookups, history, personal data."""
from __future__ import annotations

import json
import re

from sqlalchemy import select

from intake_svc.models import Outbox, Petitioner, PetitionChange, PiiAccess
from tests.intake.conftest import ID_MAIN, full_body


def test_full_registration_is_stored_masked_and_announced(intake):
    # Given a complete visit record with two petitioners
    body = full_body(people_count=6, purpose="检举控告", petitioners=[
        {"name": "张三", "id_number": ID_MAIN, "phone": "+86 138-1234-5678", "address_code": "411302"},
        {"name": "李四", "phone": "0377-63123456"}])
    # When it is registered
    r = intake.post(body)
    # Then it is created with a display number, the statutory type and the group-visit flag
    assert r.status_code == 201, r.json
    p = r.json
    assert re.fullmatch(r"411302\d{8}\d{4}", p["display_no"])
    assert (p["statutory_type"], p["group_visit"], p["category_code"]) == ("检举控告类", True, "03")
    assert p["existing"] is False and p["registrar"] == "test-registrar"
    # And personal data is masked in the response
    main = p["petitioners"][0]
    assert main["id_number"] == "1101**********002X" and main["phone"] == "138****5678" and main["main"]
    assert p["petitioners"][1]["phone"].startswith("0377-") and "123456" not in p["petitioners"][1]["phone"]
    # And encrypted at rest
    with intake.runtime.sessions() as s:
        stored = s.scalars(select(Petitioner).order_by(Petitioner.seq)).all()
        assert ID_MAIN not in (stored[0].id_number_enc or "") and stored[0].id_blind
        rows = s.scalars(select(Outbox)).all()
    # And petition.registered goes out, the accuser's name withheld (检举控告类)
    payload = json.loads(rows[0].body)["payload"]
    assert payload["petitioner_name"] == "（保密）" and payload["statutory_type"] == "检举控告类"
    assert payload["category_code"] == "03" and payload["group_visit"] is True
    assert ID_MAIN not in rows[0].body and "13812345678" not in rows[0].body


def test_lookups_by_id_display_number_and_county_number(intake):
    body = full_body()
    created = intake.post(body).json
    for path in (f"/{created['id']}", f"/by-display-no/{created['display_no']}"):
        got = intake.get(path)
        assert got.status_code == 200 and got.json["id"] == created["id"]
    got = intake.get("/by-county-no", query_string={"system": body["system"], "county_no": body["county_no"]})
    assert got.status_code == 200 and got.json["id"] == created["id"]
    assert intake.get("/by-display-no/411302000000000000").status_code == 404
    history = intake.get(f"/{created['id']}/history").json
    assert [h["action"] for h in history] == ["registered"]
    assert history[0]["changes"]["display_no"] == created["display_no"]


def test_full_personal_data_only_for_permitted_roles_and_audited(intake):
    created = intake.post(full_body()).json
    # A supervisor sees masks and may not reveal
    assert intake.get(f"/{created['id']}", role="supervisor").json["petitioners"][0]["id_number"].startswith("1101**")
    assert intake.get(f"/{created['id']}", role="supervisor", query_string={"reveal": "pii"}).status_code == 403
    # A registrar may, and the read is audited
    revealed = intake.get(f"/{created['id']}", role="registrar", jurisdiction="411300",
                          query_string={"reveal": "pii"})
    assert revealed.status_code == 200
    assert revealed.json["petitioners"][0]["id_number"] == ID_MAIN
    assert revealed.json["petitioners"][0]["phone"] == "13812345678"
    with intake.runtime.sessions() as s:
        audit = s.scalars(select(PiiAccess)).all()
    assert [(a.actor, a.petition_id, a.fields) for a in audit] == [
        ("test-registrar", created["id"], ["id_number", "phone"])]


def test_legacy_15_digit_identity_number_is_converted(intake):
    r = intake.post(full_body(petitioners=[{"name": "王五", "id_number": "110105491231002"}]))
    assert r.status_code == 201, r.json
    revealed = intake.get(f"/{r.json['id']}", query_string={"reveal": "pii"}).json
    assert revealed["petitioners"][0]["id_number"] == "11010519491231002X"


def test_list_filters_and_pagination(intake):
    intake.post(full_body(region_code="411302", category="城乡建设", channel="来访"))
    intake.post(full_body(region_code="411303", category="劳动和社会保障", channel="来信",
                          petitioners=[{"name": "赵六", "address_code": "411303"}]))
    intake.post(full_body(region_code="411321", category="城乡建设", channel="网上信访", urgent=True))

    def ids(**query):
        r = intake.get("", query_string=query)
        assert r.status_code == 200, r.json
        return [p["region_code"] for p in r.json]

    assert sorted(ids()) == ["411302", "411303", "411321"]
    assert ids(region="411302") == ["411302"]
    assert sorted(ids(category="03")) == ["411302", "411321"]
    assert ids(channel="来信") == ["411303"]
    assert ids(flag="urgent") == ["411321"]
    assert ids(registered_from="2099-01-01T00:00:00+00:00") == []
    page = intake.get("", query_string={"page": 1, "page_size": 2})
    assert len(page.json) == 2 and json.loads(page.headers["X-Pagination"])["total"] == 3
    # A county registrar sees only the county
    only = intake.get("", role="registrar", jurisdiction="411321").json
    assert [p["region_code"] for p in only] == ["411321"]


def test_history_records_case_progress(intake):
    from datetime import datetime, timezone

    from intake_svc.service import apply_case_status
    from shared.contracts import CaseStatusChanged

    created = intake.post(full_body()).json
    with intake.runtime.uow() as session:
        apply_case_status(session, CaseStatusChanged(
            case_id="c1", petition_id=created["id"], display_no=created["display_no"], unit_id="u", region_code="411302",
            status="已办结", previous_status="已送达待评价", changed_at=datetime.now(timezone.utc), actor="handler-1",
            resolved=True))
    history = intake.get(f"/{created['id']}/history").json
    assert [h["action"] for h in history] == ["registered", "case_status"]
    assert history[1]["changes"] == {"from": "", "to": "已办结", "reason": ""}
    assert intake.get(f"/{created['id']}").json["case_status"] == "已办结"
    with intake.runtime.sessions() as s:
        assert len(s.scalars(select(PetitionChange)).all()) == 2


def test_event_carries_the_classic_first_level_category_for_routing(intake):
    # Given a petition filed under a second-level category (城乡建设/物业管理 …) and one under a newer name
    from intake_svc.schemas import categories

    second = next(c for c in categories().children("03"))
    for category in (second.code, "住房城乡建设"):
        intake.post(full_body(category=category))
    # Then petition.registered says 城乡建设, with the precise code beside it
    with intake.runtime.sessions() as s:
        rows = s.scalars(select(Outbox).where(Outbox.queue_name == "assign").order_by(Outbox.created_at))
        payloads = [json.loads(o.body)["payload"] for o in rows]
    assert [p["category"] for p in payloads] == ["城乡建设", "城乡建设"]
    assert payloads[0]["category_code"] == second.code and payloads[0]["classic_code"] == "03"
