"""The Open311 GeoReport v2 facade (/intake/open311/v2): a stock Open311 client files and reads back petitions."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
import requests
from sqlalchemy import select

from intake_svc.apikeys import create_key
from intake_svc.models import Outbox, Petition
from intake_svc.service import apply_case_status
from shared import clock
from shared.contracts import CaseStatusChanged
from tests.conftest import free_port
from tests.intake.conftest import ID_MAIN

BASE = "/intake/open311/v2"
TEXT = "小区电梯长期故障无人维修，请督促物业公司尽快修复，保障老人出行安全。"


@pytest.fixture
def key(intake) -> str:
    """An API key of 宛城区's county system, for the whole of 南阳市 (411300)."""
    with intake.runtime.uow() as session:
        _, secret = create_key(session, name="宛城区信访系统", system="wancheng-xf", jurisdiction="411300")
    return secret


def form(key: str | None, **overrides) -> dict:
    """A valid Open311 POST: 网上信访, 物业管理 (0302) in 宛城区 (411302)."""
    body = {"api_key": key, "jurisdiction_id": "411302", "service_code": "0302", "description": TEXT,
            "first_name": "三", "last_name": "张", "phone": "13812345678", "address_string": "宛城区某小区3号楼",
            "lat": "32.99", "long": "112.53", "email": "zs@example.com",
            "attribute[purpose]": "求决", "attribute[id_number]": ID_MAIN,
            "attribute[county_no]": f"WC-{uuid.uuid4().hex[:10]}"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def descriptions(r, status: int) -> list[str]:
    """The descriptions of an Open311 error list, after checking its shape."""
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.content_type.startswith("application/json")
    assert all(set(e) == {"code", "description"} and e["code"] == status for e in r.json), r.json
    return [e["description"] for e in r.json]


def xml(r) -> ET.Element:
    assert r.content_type.startswith("text/xml"), r.content_type
    return ET.fromstring(r.data)


def test_discovery_names_the_georeport_v2_endpoint_without_a_key(intake):
    r = intake.client.get(f"{BASE}/discovery.json")
    assert r.status_code == 200
    [endpoint] = r.json["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith(BASE) and set(endpoint["formats"]) == {"text/xml", "application/json"}
    root = xml(intake.client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == ["text/xml", "application/json"]


def test_services_are_the_content_categories(intake):
    # When a client lists the services of 宛城区, without any key
    r = intake.client.get(f"{BASE}/services.json", query_string={"jurisdiction_id": "411302"})
    # Then every content category is a service, first and second level, with metadata to fetch
    assert r.status_code == 200
    by_code = {s["service_code"]: s for s in r.json}
    assert by_code["03"]["service_name"] == "城乡建设" and by_code["03"]["group"] == "城乡建设"
    assert by_code["0302"]["service_name"] == "物业管理" and by_code["0302"]["group"] == "城乡建设"
    assert all(s["metadata"] is True and s["type"] == "batch" for s in r.json)
    # And the XML variant carries the same services
    root = xml(intake.client.get(f"{BASE}/services.xml", query_string={"jurisdiction_id": "411302"}))
    assert root.tag == "services" and len(root.findall("service")) == len(r.json)
    # And without jurisdiction_id (this endpoint serves many) the answer is Open311's error list
    assert descriptions(intake.client.get(f"{BASE}/services.json"), 400) == [
        "jurisdiction_id: required (a region code, 行政区划代码)"]
    assert "not found" in descriptions(intake.client.get(f"{BASE}/services.json?jurisdiction_id=999999"), 400)[0]


def test_service_definition_lists_the_petition_attributes(intake):
    r = intake.client.get(f"{BASE}/services/0302.json", query_string={"jurisdiction_id": "411302"})
    assert r.status_code == 200 and r.json["service_code"] == "0302"
    attrs = {a["code"]: a for a in r.json["attributes"]}
    assert list(attrs) == ["region_code", "purpose", "channel", "title", "id_number", "anonymous", "people_count",
                           "county_no", "petitioned_at"]
    assert [a["order"] for a in r.json["attributes"]] == list(range(1, 10))
    assert attrs["purpose"]["required"] is True and attrs["purpose"]["datatype"] == "singlevaluelist"
    assert [v["key"] for v in attrs["purpose"]["values"]] == ["求决", "申诉", "检举控告", "建议意见", "其他"]
    assert "网上信访" in [v["key"] for v in attrs["channel"]["values"]]
    assert (attrs["people_count"]["datatype"], attrs["petitioned_at"]["datatype"]) == ("number", "datetime")
    assert attrs["title"]["required"] is False and all(a["variable"] for a in attrs.values())
    root = xml(intake.client.get(f"{BASE}/services/0302.xml", query_string={"jurisdiction_id": "411302"}))
    assert [v.text for v in root.findall("attributes/attribute[code='purpose']/values/value/key")][:2] == ["求决", "申诉"]
    # An unknown service code is 404, not a demand for a key
    assert descriptions(intake.client.get(f"{BASE}/services/99.json?jurisdiction_id=411302"), 404) == [
        "service_code 99 not found"]


def test_post_then_read_back_by_id_filters_and_token(intake, key):
    # Given a county system's key for 南阳市
    body = form(key)
    # When it files a request form-encoded
    r = intake.client.post(f"{BASE}/requests.json", data=body)
    # Then a petition is registered: service_request_id = the display number, token = the immutable id
    assert r.status_code == 201, r.json
    [created] = r.json
    sid, token = created["service_request_id"], created["token"]
    assert sid.startswith("411302") and created["account_id"] is None and sid in created["service_notice"]
    with intake.runtime.sessions() as s:
        p = s.scalar(select(Petition))
        person = p.petitioners[0]
        assert (p.id, p.display_no, p.system, p.county_no) == (token, sid, "wancheng-xf", body["attribute[county_no]"])
        assert (p.channel, p.purpose, p.category_code, p.region_code) == ("网上信访", "求决", "0302", "411302")
        assert p.request_text == TEXT and p.title == TEXT[:30] and p.registrar_kind == "api_key"
        assert (person.name, person.address) == ("张三", "宛城区某小区3号楼") and person.phone_blind
    # And it reads back by id, with no personal data at all
    auth_q = {"api_key": key, "jurisdiction_id": "411300"}
    one = intake.client.get(f"{BASE}/requests/{sid}.json", query_string=auth_q)
    assert one.status_code == 200
    [got] = one.json
    assert (got["service_request_id"], got["status"], got["status_notes"]) == (sid, "open", "已登记")
    assert (got["service_code"], got["service_name"], got["description"]) == ("0302", "物业管理", TEXT)
    assert got["address"] == "河南省南阳市宛城区" and got["requested_datetime"].endswith("+08:00")
    for secret in ("张三", "138", ID_MAIN, "某小区", "zs@example.com"):
        assert secret not in one.get_data(as_text=True)
    # And the token resolves at once
    assert intake.client.get(f"{BASE}/tokens/{token}.json", query_string=auth_q).json == [
        {"service_request_id": sid, "token": token}]
    assert intake.client.get(f"{BASE}/tokens/nope.json", query_string=auth_q).status_code == 404

    def listed(**params) -> list[str]:
        r = intake.client.get(f"{BASE}/requests.json", query_string={**auth_q, **params})
        assert r.status_code == 200, r.json
        return [x["service_request_id"] for x in r.json]

    now = clock.now()
    day = timedelta(days=1)
    # And GET requests filters by id list, service code, status and date range
    assert listed(service_request_id=f"{sid},411302000000000000") == [sid]
    assert listed() == [sid] and listed(service_code="0302,0301") == [sid] and listed(service_code="03") == []
    assert listed(status="open") == [sid] and listed(status="closed") == []
    assert listed(start_date=(now - day).isoformat(), end_date=(now + day).isoformat()) == [sid]
    assert listed(start_date=(now - 10 * day).isoformat(), end_date=(now - 5 * day).isoformat()) == []
    assert listed(start_date=(now + day).isoformat()) == []
    # And a closed case shows as closed, its status in the notes
    with intake.runtime.uow() as s:
        apply_case_status(s, CaseStatusChanged(case_id="c1", petition_id=token, display_no=sid, unit_id="u",
                                               region_code="411302", status="已办结", previous_status="办理中",
                                               changed_at=now + timedelta(minutes=1), actor="handler"))
    assert listed(status="closed") == [sid] and listed(status="open") == [] and listed(status="open,closed") == [sid]
    [closed] = intake.client.get(f"{BASE}/requests/{sid}.json", query_string=auth_q).json
    assert (closed["status"], closed["status_notes"]) == ("closed", "已办结")
    assert closed["updated_datetime"] > closed["requested_datetime"]
    # And bad filters are Open311 errors
    bad = intake.client.get(f"{BASE}/requests.json", query_string={
        **auth_q, "status": "pending", "start_date": "yesterday", "end_date": now.isoformat()})
    assert descriptions(bad, 400) == ["status: must be open, closed, or both comma-separated",
                                      "start_date: must be a w3 datetime with a timezone, e.g. 2026-11-20T00:00:00+08:00"]
    too_wide = intake.client.get(f"{BASE}/requests.json", query_string={
        **auth_q, "start_date": (now - 100 * day).isoformat(), "end_date": now.isoformat()})
    assert descriptions(too_wide, 400) == ["end_date: the range may not span more than 90 days"]
    # And reads are limited to jurisdiction_id: 南阳市卧龙区 does not see 宛城区's petition
    assert intake.client.get(f"{BASE}/requests/{sid}.json", query_string={**auth_q, "jurisdiction_id": "411303"}
                             ).status_code == 404
    assert listed(jurisdiction_id="411303") == []


def test_resend_with_the_same_county_no_returns_the_same_request(intake, key):
    body = form(key)
    first = intake.client.post(f"{BASE}/requests.json", data=body)
    announced = intake.count(Outbox)
    again = intake.client.post(f"{BASE}/requests.json", data=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json[0]["service_request_id"] == first.json[0]["service_request_id"]
    assert again.json[0]["token"] == first.json[0]["token"]
    assert announced > 0 and intake.count() == 1 and intake.count(Outbox) == announced


def test_missing_or_invalid_api_key_is_401_in_open311_format(intake, key):
    r = intake.client.post(f"{BASE}/requests.json", data=form(None))
    assert descriptions(r, 401) == [
        "api_key required: send your API key as the api_key form field or query parameter"]
    root = xml(intake.client.post(f"{BASE}/requests.xml", data=form("xfk_nope_nope")))
    assert root.tag == "errors" and root.find("error/code").text == "401"
    assert root.find("error/description").text == "invalid or revoked API key"
    assert intake.client.get(f"{BASE}/requests.json?jurisdiction_id=411300").status_code == 401
    assert intake.client.get(f"{BASE}/tokens/x.json?jurisdiction_id=411300").status_code == 401
    assert intake.count() == 0


def test_jurisdiction_outside_the_key_is_403_and_nothing_is_stored(intake, key):
    # 湖北省 is not 南阳市
    r = intake.client.post(f"{BASE}/requests.json", data=form(key, jurisdiction_id="420100",
                                                              **{"attribute[region_code]": "420102"}))
    assert descriptions(r, 403) == ["jurisdiction_id 420100 is outside this api_key's jurisdiction 411300"]
    # A problem location outside jurisdiction_id
    r = intake.client.post(f"{BASE}/requests.json", data=form(key, **{"attribute[region_code]": "411303"}))
    assert descriptions(r, 403) == ["attribute[region_code] 411303 is outside jurisdiction_id 411302"]
    r = intake.client.get(f"{BASE}/requests.json", query_string={"api_key": key, "jurisdiction_id": "410000"})
    assert r.status_code == 403
    assert intake.count() == 0 and intake.count(Outbox) == 0


def test_invalid_requests_are_400_lists_by_parameter_and_nothing_is_stored(intake, key):
    # Bad attribute values, an unknown attribute, no description, an unknown service
    r = intake.client.post(f"{BASE}/requests.json", data=form(
        key, description=None, service_code="9999", **{"attribute[purpose]": "投诉", "attribute[people_count]": "many",
                                                       "attribute[colour]": "red"}))
    assert sorted(descriptions(r, 400)) == sorted([
        "attribute[purpose]: must be one of 其他, 建议意见, 检举控告, 求决, 申诉",
        "attribute[people_count]: must be a whole number",
        "attribute[colour]: unknown attribute (see the service definition)",
        "service_code: 9999 not found (see services)",
        "description: Missing data for required field."])
    # The registration rules, named by the Open311 parameter the client sent
    r = intake.client.post(f"{BASE}/requests.json", data=form(key, **{"attribute[id_number]": None}))
    assert descriptions(r, 400) == ["attribute[id_number]: required for 网上信访 (须登记身份证号)"]
    r = intake.client.post(f"{BASE}/requests.json", data=form(key, **{"attribute[petitioned_at]": "2026-11-20T09:30"}))
    assert descriptions(r, 400) == ["attribute[petitioned_at]: Not a valid aware datetime."]
    r = intake.client.post(f"{BASE}/requests.json", data=form(key, first_name=None, last_name=None))
    assert descriptions(r, 400) == [
        "first_name/last_name: the main petitioner's name is required unless anonymous (非匿名须登记信访人)"]
    # A city-level jurisdiction_id needs the problem location
    r = intake.client.post(f"{BASE}/requests.json", data=form(key, jurisdiction_id="411300"))
    assert descriptions(r, 400) == [
        "attribute[region_code]: required when jurisdiction_id is above county level (问题属地)"]
    # Not form-encoded
    r = intake.client.post(f"{BASE}/requests.json?api_key={key}", json=form(key))
    assert descriptions(r, 400) == ["send the request form-encoded (application/x-www-form-urlencoded)"]
    assert intake.count() == 0 and intake.count(Outbox) == 0


def test_anonymous_hotline_petition_with_attributes(intake, key):
    r = intake.client.post(f"{BASE}/requests.json", data=form(
        key, jurisdiction_id="411300", first_name=None, last_name=None, address_string=None,
        **{"attribute[anonymous]": "true", "attribute[id_number]": None, "attribute[channel]": "12345热线",
           "attribute[region_code]": "411303", "attribute[title]": "电梯故障", "attribute[people_count]": "3",
           "attribute[purpose]": "建议意见", "attribute[petitioned_at]": "2026-11-20T09:30:00+08:00"}))
    assert r.status_code == 201, r.json
    with intake.runtime.sessions() as s:
        p = s.scalar(select(Petition))
        assert (p.anonymous, p.channel, p.region_code, p.title, p.people_count) == (True, "12345热线", "411303",
                                                                                   "电梯故障", 3)
        assert p.purpose == "建议意见" and p.petitioned_at.isoformat().startswith("2026-11-20T01:30:00")


def test_xml_post_and_get_one(intake, key):
    r = intake.client.post(f"{BASE}/requests.xml", data=form(key))
    assert r.status_code == 201
    root = xml(r)
    assert r.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert root.tag == "service_requests" and len(root.findall("request")) == 1
    sid = root.find("request/service_request_id").text
    assert root.find("request/token").text and root.find("request/account_id").text is None
    one = xml(intake.client.get(f"{BASE}/requests/{sid}.xml", query_string={"api_key": key,
                                                                             "jurisdiction_id": "411302"}))
    request = one.find("request")
    assert (request.find("service_request_id").text, request.find("status").text) == (sid, "open")
    assert request.find("service_code").text == "0302" and request.find("description").text == TEXT
    assert request.find("agency_responsible").text is None and request.find("lat") is not None
    missing = intake.client.get(f"{BASE}/requests/411302000000000000.xml", query_string={
        "api_key": key, "jurisdiction_id": "411302"})
    assert missing.status_code == 404 and xml(missing).find("error/code").text == "404"


def test_unmatched_paths_and_methods_answer_in_open311_format(intake, key):
    assert descriptions(intake.client.get(f"{BASE}/requests.csv?api_key={key}"), 404)
    r = intake.client.delete(f"{BASE}/discovery.xml")
    assert r.status_code == 405 and xml(r).find("error/code").text == "405"
    # The native API keeps its own envelope
    assert "message" in intake.client.get("/intake/api/v1/petitions/nope").json


def test_rate_limit_and_internal_errors_answer_in_open311_format(intake, monkeypatch):
    with intake.runtime.uow() as session:
        _, slow = create_key(session, name="限流", system="wolong-xf", jurisdiction="411303", rate_limit="1/minute")
    query = {"api_key": slow, "jurisdiction_id": "411303"}
    assert intake.client.get(f"{BASE}/requests.json", query_string=query).status_code == 200
    limited = intake.client.get(f"{BASE}/requests.xml", query_string=query)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert xml(limited).find("error/code").text == "429"

    def broken():
        raise RuntimeError("category table unreadable")

    monkeypatch.setattr("intake_svc.open311.mapping.services", broken)
    r = intake.client.get(f"{BASE}/services.json", query_string={"jurisdiction_id": "411303"})
    assert descriptions(r, 500) == ["internal error; the request was not applied"]


@pytest.fixture
def served(intake):
    """The intake app on a real HTTP server (waitress) on a free local port."""
    from waitress import create_server

    server = create_server(intake.app, host="127.0.0.1", port=free_port(), threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}{BASE}"
    server.close()


def test_a_client_written_from_the_spec_files_and_reads_back_over_http(intake, key, served):
    """Only the published GeoReport v2 document: discovery, services, definition, POST, token, GET."""
    http = requests.Session()
    endpoint = http.get(f"{served}/discovery.xml", timeout=10)
    url = ET.fromstring(endpoint.content).find("endpoints/endpoint/url").text
    assert url == served
    services = ET.fromstring(http.get(f"{url}/services.xml", params={"jurisdiction_id": "411302"}, timeout=10).content)
    code = next(s.find("service_code").text for s in services.findall("service")
                if s.find("service_name").text == "物业管理")
    definition = http.get(f"{url}/services/{code}.json", params={"jurisdiction_id": "411302"}, timeout=10).json()
    answers = {"purpose": "求决", "id_number": ID_MAIN, "county_no": "WC-HTTP-1"}
    fields = {f"attribute[{a['code']}]": answers[a["code"]] for a in definition["attributes"] if a["code"] in answers}
    posted = http.post(f"{url}/requests.json", data={
        "api_key": key, "jurisdiction_id": "411302", "service_code": code, "lat": "32.99", "long": "112.53",
        "description": TEXT, "first_name": "三", "last_name": "张", "phone": "13812345678", **fields}, timeout=10)
    assert posted.status_code == 201 and posted.headers["Content-Type"].startswith("application/json")
    [receipt] = posted.json()
    ids = http.get(f"{url}/tokens/{receipt['token']}.xml", params={"api_key": key, "jurisdiction_id": "411302"},
                   timeout=10)
    sid = ET.fromstring(ids.content).find("request/service_request_id").text
    assert sid == receipt["service_request_id"]
    listed = http.get(f"{url}/requests.json", params={
        "api_key": key, "jurisdiction_id": "411302", "service_code": code, "status": "open",
        "start_date": (clock.now() - timedelta(hours=1)).isoformat()}, timeout=10).json()
    assert [r["service_request_id"] for r in listed] == [sid] and listed[0]["description"] == TEXT
    denied = http.get(f"{url}/requests/{sid}.xml", params={"jurisdiction_id": "411302"}, timeout=10)
    assert denied.status_code == 401 and ET.fromstring(denied.content).find("error/code").text == "401"


def test_the_georeport_library_reads_services_and_requests(intake, key, served, monkeypatch):
    """georeport (PyPI), a third-party GeoReport v2 client, parses our JSON and XML."""
    georeport = pytest.importorskip("georeport")
    posted = requests.post(f"{served}/requests.json", data=form(key), timeout=10).json()[0]
    # georeport sends no api_key on reads; add it as the query parameter our reads require
    real_get = requests.get
    monkeypatch.setattr("georeport.georeport.requests.get",
                        lambda url, params=None, **kw: real_get(url, params={**(params or {}), "api_key": key}, **kw))
    for fmt in ("json", "xml"):
        client = georeport.GeoReport(served, jurisdiction="411302", output_format=fmt)
        assert "物业管理" in [s["service_name"] for s in client.get_service_list()]
        definition = client.get_service_definition("0302")
        assert definition["service_code"] == "0302"
        got = client.get_service_request(posted["service_request_id"])
        assert (got["service_request_id"], got["status"], got["service_code"]) == (
            posted["service_request_id"], "open", "0302")
        listed = client.get_service_requests(service_request_id=posted["service_request_id"])
        assert (listed if fmt == "json" else [listed])[0]["description"] == TEXT
