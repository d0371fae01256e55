"""One petition through all four services, over real HTTP, on both ways to run the system.

intake (POST) -> petition.registered -> assign (route, deadline) -> case.assigned -> supervise (read model)
                                                        \\-> notice.requested -> notify (交办通知 in the unit's inbox)
"""
from __future__ import annotations

import threading

import requests
from sqlalchemy import func, select, update

from shared.system import EmbeddedSystem
from tests.conftest import free_port
from tests.helpers import auth, petition_body, wait_for

UNIT = "411302-zjj"  # 宛城区住房和城乡建设局: 城乡建设 in 411302


def _serve(system: EmbeddedSystem):
    from waitress import create_server

    server = create_server(system.wsgi, host="127.0.0.1", port=free_port(), threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.effective_port}"


def _inbox(base, headers, unit=UNIT):
    r = requests.get(f"{base}/notify/api/v1/inbox", params={"recipient_id": unit}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_petition_reaches_the_units_inbox_on_the_embedded_default(settings):
    # Given the whole system in one process, served on one port, and a staff account
    system = EmbeddedSystem(settings)
    system.start()
    server, base = _serve(system)
    try:
        from assign_svc.users import create_user

        with system.runtimes["assign"].uow() as session:
            create_user(session, username="registrar1", password="registrar-pass-1", role="registrar",
                        jurisdiction="411300")
        login = requests.post(f"{base}/assign/api/v1/auth/login",
                              json={"username": "registrar1", "password": "registrar-pass-1"}, timeout=10)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # When a county system's petition is POSTed
        created = requests.post(f"{base}/intake/api/v1/petitions", json=petition_body(), headers=headers, timeout=10)
        assert created.status_code == 201, created.text
        petition = created.json()
        # Then the responsible unit gets an assignment notice in Chinese
        admin = auth(settings, role="admin")
        notices = wait_for(lambda: _inbox(base, admin), what="assignment notice")
        assert len(notices) == 1
        notice = notices[0]
        assert notice["title"] == f"交办通知：信访件 {petition['display_no']}"
        assert "宛城区住房和城乡建设局" in notice["body"] and "办理期限" in notice["body"]
        # And assign holds the case with its statutory deadline, and supervise has it in its read model
        cases = requests.get(f"{base}/assign/api/v1/cases", params={"petition_id": petition["id"]},
                             headers=admin, timeout=10).json()
        assert [c["unit_id"] for c in cases] == [UNIT]
        assert cases[0]["deadline_basis"].startswith("《信访工作条例》第三十四条")
        view = wait_for(lambda: requests.get(f"{base}/supervise/api/v1/cases/{petition['id']}",
                                             headers=admin, timeout=10).json().get("case_id"),
                        what="supervise read model")
        assert view == cases[0]["id"]
        # And the unit's own staff can acknowledge (签收) it
        unit_headers = auth(settings, role="handler", unit_id=UNIT, jurisdiction="411302")
        ack = requests.post(f"{base}/notify/api/v1/notices/{notice['id']}/ack", headers=unit_headers, timeout=10)
        assert ack.status_code == 200 and ack.json()["acknowledged_at"]
        other = auth(settings, role="handler", unit_id="411303-zjj", jurisdiction="411303")
        assert requests.post(f"{base}/notify/api/v1/notices/{notice['id']}/ack", headers=other,
                             timeout=10).status_code == 403
    finally:
        server.close()
        system.stop()


def _counts(system):
    from assign_svc.models import Case
    from notify_svc.models import Notice

    with system.runtimes["assign"].sessions() as s:
        cases = s.scalar(select(func.count()).select_from(Case))
    with system.runtimes["notify"].sessions() as s:
        # 交办通知 only: the repeated test petition also sends its owning leader a 包案通知
        notices = s.scalar(select(func.count()).select_from(Notice).where(Notice.notice_type == "assignment"))
    return cases, notices


def test_restart_delivers_what_was_accepted_but_not_yet_delivered(settings):
    # Given a system that accepted two petitions and published them to its in-memory
    # broker, then died before any worker handled them
    first = EmbeddedSystem(settings)
    client = first.apps["intake"].test_client()
    for _ in range(2):
        assert client.post("/intake/api/v1/petitions", json=petition_body(),
                           headers=auth(settings, role="registrar")).status_code == 201
    assert first.runtimes["intake"].relay.publish_pending() == 4
    for runtime in first.runtimes.values():
        runtime.engine.dispose()  # the process is gone; its memory broker with it
    # When the system starts again on the same data folder
    second = EmbeddedSystem(settings)
    second.start()
    try:
        # Then both petitions are assigned and notified, once each
        wait_for(lambda: _counts(second) == (2, 2), what="2 cases and 2 notices")
        second.settle()
        assert _counts(second) == (2, 2)
    finally:
        second.stop()


def test_every_message_delivered_twice_still_has_one_effect(system):
    client = system.apps["intake"].test_client()
    for _ in range(3):
        client.post("/intake/api/v1/petitions", json=petition_body(), headers=auth(system.settings, role="registrar"))
    wait_for(lambda: _counts(system) == (3, 3), what="3 cases and 3 notices")
    system.settle()
    # When every outbox of every service publishes all its messages again
    for runtime in system.runtimes.values():
        with runtime.uow() as session:
            session.execute(update(runtime.outbox_model).values(status="pending"))
    system.settle()
    # Then nothing is duplicated
    assert _counts(system) == (3, 3)
    with system.runtimes["notify"].sessions() as s:
        from notify_svc.models import Notice

        assert len({n.subject_id for n in s.scalars(select(Notice).where(Notice.notice_type == "assignment"))}) == 3
