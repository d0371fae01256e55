"""The directory: the Nanyang demo data, the admin API, versions, and copies kept by supervise and notify."""
from __future__ import annotations

import json

import io
from collections import Counter

from openpyxl import Workbook
from sqlalchemy import select

from assign_svc.directory import DEFAULT_FILE, read_file
from tests.helpers import auth, wait_for

COUNTIES = {"411302", "411303", "411321", "411322", "411323", "411324", "411325", "411326", "411327", "411328",
            "411329", "411330", "411381"}


def test_the_demo_directory_covers_nanyang():
    data = read_file(DEFAULT_FILE)
    units = data["units"]
    townships = Counter(u["region_code"][:6] for u in units if u["kind"] == "township")
    assert set(townships) == COUNTIES and min(townships.values()) >= 5
    assert all(len(u["region_code"]) == 12 and u["region_code"].endswith("000") for u in units if u["kind"] == "township")
    city = {u["kind"] for u in units if u["region_code"] == "411300"}
    assert {"petition_dept", "political_legal", "discipline", "government", "bureau"} <= city
    for county in COUNTIES:
        kinds = {u["kind"] for u in units if u["region_code"] == county}
        assert {"petition_dept", "political_legal", "discipline", "government", "bureau"} <= kinds, county
    posts = Counter(p["post"] for p in data["people"])
    assert set(posts) == {"party_secretary", "head", "deputy", "office_director", "handler"}
    assert all(p["unit"] in {u["id"] for u in units} for p in data["people"])


def test_admin_edits_are_versioned_and_broadcast(assign):
    admin = assign.admin()
    start = assign.client.get("/assign/api/v1/admin/versions/directory", headers=admin).json[0]["version"]
    # When an admin adds a unit and a leader in it
    unit = {"name": "宛城区城市管理局", "kind": "bureau", "level": "county", "region_code": "411302",
            "parent": "411302-gov", "categories": ["城乡建设"], "contacts": {"phone": "0377-6000000"}}
    r = assign.client.put("/assign/api/v1/admin/units/411302-cgj", json=unit, headers=admin)
    assert r.status_code == 200 and r.json["directory_version"] == start + 1
    person = {"unit": "411302-cgj", "name": "周明", "post": "head", "title": "局长", "leader": True,
              "email": "zhouming@demo.nanyang.example"}
    r = assign.client.put("/assign/api/v1/admin/people/411302-cgj-p1", json=person, headers=admin)
    assert r.status_code == 200 and r.json["directory_version"] == start + 2
    # Then each change went out as directory.changed with the new version
    changes = {c["payload"]["version"]: c["payload"] for c in assign.outbox("directory.changed")}
    assert sorted(changes) == [start, start + 1, start + 2]  # the load at start, then one per edit
    assert [u["id"] for u in changes[start + 1]["units"]] == ["411302-cgj"]
    assert changes[start + 2]["people"][0]["email"] == "zhouming@demo.nanyang.example"
    # And bad data is refused with reasons
    r = assign.client.put("/assign/api/v1/admin/units/x", json={**unit, "kind": "club", "parent": "nope"}, headers=admin)
    assert r.status_code == 422 and "kind" in str(r.json["errors"]) and "parent" in str(r.json["errors"])
    # And only admins edit
    r = assign.client.put("/assign/api/v1/admin/units/411302-cgj", json=unit,
                          headers=auth(assign.settings, role="registrar", jurisdiction="411302"))
    assert r.status_code == 403
    # A retired unit is no longer routed to
    assert assign.client.delete("/assign/api/v1/admin/units/411302-zjj", headers=admin).status_code == 200
    case = assign.case(assign.register())
    assert case["unit_id"] == "411302-cgj"  # the other unit competent for 城乡建设


def test_directory_loads_from_xlsx(assign):
    book = Workbook()
    units = book.active
    units.title = "units"
    units.append(["id", "name", "kind", "level", "region_code", "parent", "categories", "phone"])
    units.append(["411302-test", "宛城区测试局", "bureau", "county", "411302", "411302-gov", "商贸旅游、其他", "0377-1"])
    people = book.create_sheet("people")
    people.append(["id", "unit", "name", "post", "leader"])
    people.append(["411302-test-p1", "411302-test", "吴测", "head", True])
    buffer = io.BytesIO()
    book.save(buffer)
    r = assign.client.post("/assign/api/v1/admin/directory/import", headers=assign.admin(),
                           data={"file": (io.BytesIO(buffer.getvalue()), "dir.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 200 and (r.json["units"], r.json["people"]) == (1, 1)
    unit = assign.client.get("/assign/api/v1/units/411302-test", headers=assign.admin()).json
    assert unit["categories"] == ["商贸旅游", "其他"] and unit["contacts"] == {"phone": "0377-1"}
    leaders = assign.client.get("/assign/api/v1/people", query_string={"unit_id": "411302-test", "leader": "true"},
                                headers=assign.admin()).json
    assert [p["name"] for p in leaders] == ["吴测"]


def test_people_come_a_thousand_a_page_inside_the_jurisdiction(assign):
    """The demo city's directory holds more than 1,000 people: the listing pages (X-Pagination), never
    cuts the rest off silently."""
    from assign_svc.models import Person

    with assign.runtime.sessions() as s:
        total = s.query(Person).filter(Person.active.is_(True)).count()
    assert total > 1000
    first = assign.client.get("/assign/api/v1/people", headers=assign.admin())
    assert len(first.json) == 1000 and json.loads(first.headers["X-Pagination"])["total"] == total
    rest = assign.client.get("/assign/api/v1/people", query_string={"page": 2}, headers=assign.admin()).json
    ids = [p["id"] for p in first.json + rest]
    assert len(ids) == total and ids == sorted(ids)
    county = assign.client.get("/assign/api/v1/people", query_string={"page_size": 1000},
                               headers=auth(assign.settings, role="supervisor", jurisdiction="411302")).json
    assert county and all(p["unit_id"].startswith("411302") for p in county)
    assert len(county) < total


def test_supervise_and_notify_keep_their_copies(system):
    from notify_svc.models import Contact
    from supervise_svc.models import DirectoryPerson, DirectoryUnit

    # Given the system started (the directory was loaded and broadcast at migration)
    system.settle()
    with system.runtimes["supervise"].sessions() as s:
        assert s.get(DirectoryUnit, "411300-jw").name == "南阳市纪委监委"
        assert s.get(DirectoryPerson, "411302-gov-p2").leader is True
    # When an admin changes a unit's phone
    client = system.apps["assign"].test_client()
    unit = client.get("/assign/api/v1/units/411302-zjj", headers=auth(system.settings)).json
    body = {k: unit[k] for k in ("name", "kind", "level", "region_code", "categories")}
    body.update(parent=unit["parent_id"], contacts={"phone": "0377-12345"})
    assert client.put("/assign/api/v1/admin/units/411302-zjj", json=body, headers=auth(system.settings)).status_code == 200

    def notify_copy():
        with system.runtimes["notify"].sessions() as s:
            row = s.get(Contact, "411302-zjj")
            return row is not None and row.phone == "0377-12345"

    # Then notify's copy follows, and an older version arriving late changes nothing
    wait_for(notify_copy, what="notify's copy of the new phone")
    with system.runtimes["notify"].sessions() as s:
        assert s.scalar(select(Contact.version).where(Contact.id == "411302-zjj")) >= 2


def test_the_demo_directory_gives_resident_populations():
    units = read_file(DEFAULT_FILE)["units"]
    population = {u["id"]: u.get("population") for u in units}
    counties = {u["region_code"]: u for u in units if u["kind"] == "government" and u["level"] == "county"}
    assert set(counties) == COUNTIES
    for county, gov in counties.items():
        towns = [u["population"] for u in units if u["kind"] == "township" and u["region_code"][:6] == county]
        assert 400_000 <= gov["population"] <= 1_400_000, county
        assert all(20_000 <= t <= 90_000 for t in towns) and sum(towns) <= gov["population"], county
    assert population["411300-gov"] == sum(g["population"] for g in counties.values()) == 11_709_000
    assert population["411302-gov"] == 474_000 and population["411302-zjj"] is None  # bureaus have none


def test_population_is_kept_editable_and_broadcast(assign):
    admin = assign.admin()
    r = assign.client.get("/assign/api/v1/units/411302-gov", headers=admin)
    assert r.status_code == 200 and r.json["population"] == 474_000
    unit = {"name": "宛城区人民政府", "kind": "government", "level": "county", "region_code": "411302",
            "parent": "411300-gov", "categories": ["党务政务", "其他"], "population": 480_000}
    r = assign.client.put("/assign/api/v1/admin/units/411302-gov", json=unit, headers=admin)
    assert r.status_code == 200 and r.json["population"] == 480_000
    changes = sorted((m["payload"] for m in assign.outbox("directory.changed")), key=lambda p: p["version"])
    assert [(u["id"], u["population"]) for u in changes[-1]["units"]] == [("411302-gov", 480_000)]
    loaded = {u["id"]: u["population"] for u in changes[0]["units"]}
    assert loaded["411302-gov"] == 474_000 and loaded["411302-zjj"] is None
    r = assign.client.put("/assign/api/v1/admin/units/411302-gov", json={**unit, "population": -5}, headers=admin)
    assert r.status_code == 422 and "population" in r.json["errors"]["json"]
