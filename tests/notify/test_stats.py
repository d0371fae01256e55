"""The operator overview: notices, acknowledgements, notices by type, deliveries by channel and status."""
from __future__ import annotations

from tests.notify.test_reliability import _email


def test_stats_count_notices_and_deliveries_by_channel_and_status(notify, smtp_server):
    _email(notify, smtp_server)
    first = notify.request("assignment", subject_id="c1")
    notify.request("assignment", subject_id="c2")
    notify.request("assignment", subject_id="c2")  # a repeated request: still two notices
    notify.deliver()
    admin = notify.headers(role="admin")
    mine = notify.headers(role="handler", unit_id=first.recipient_id) if first.recipient_kind == "unit" else \
        notify.headers(role="leader", user_id=first.recipient_id)
    r = notify.client.post(f"/notify/api/v1/notices/{first.id}/ack", headers=mine)
    assert r.status_code == 200, r.json
    r = notify.client.get("/notify/api/v1/deliveries/stats", headers=admin)
    assert r.status_code == 200, r.json
    assert r.json["notices"] == 2 and r.json["acknowledged"] == 1
    assert r.json["by_type"] == {"assignment": 2}
    assert r.json["by_channel"] == {"email": {"sent": 2}}
    assert len(smtp_server.messages) == 2
    assert notify.client.get("/notify/api/v1/deliveries/stats",
                             headers=notify.headers(role="supervisor")).status_code == 403
