"""Unit tests of the small shared pieces: regions, contracts, clock, tokens, settings."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError

from shared.auth import InvalidToken, Principal, issue_token, verify_token
from shared.clock import Clock, ClockControlDisabled, FileStore, clock_for
from shared.config import DEV_SECRET, Settings
from shared.contracts import CaseAssigned, dump_envelope, envelope_for, load_envelope
from shared.regions import county_of, in_jurisdiction, subtree_prefix

UTC = timezone.utc


@pytest.mark.parametrize("code,prefix", [
    ("410000", "41"), ("411300", "4113"), ("411302", "411302"), ("000000", ""),
    ("411302100000", "411302100"), ("411302100201", "411302100201"), ("411302000000", "411302"),
])
def test_subtree_prefix_of_each_level(code, prefix):
    assert subtree_prefix(code) == prefix


def test_jurisdiction_contains_its_subtree_only():
    # Given Nanyang (411300) as jurisdiction
    # Then a district and a village inside it are in, a Zhengzhou district is not
    assert in_jurisdiction("411302", "411300")
    assert in_jurisdiction("411302100201", "411300")
    assert not in_jurisdiction("410102", "411300")
    assert in_jurisdiction("410102", "000000")
    assert county_of("411302100201") == "411302"


def test_subtree_prefix_rejects_garbage():
    with pytest.raises(ValueError):
        subtree_prefix("41A300")


def _case(**kw):
    base = dict(case_id="c1", petition_id="p1", display_no="411302202611220001", unit_id="u1", unit_name="宛城区信访局",
                region_code="411302", category="城乡建设", assigned_at=datetime(2026, 11, 22, 2, tzinfo=UTC),
                due_at=datetime(2027, 1, 21, 15, 59, 59, tzinfo=UTC), deadline_basis="第三十四条")
    base.update(kw)
    return CaseAssigned(**base)


def test_envelope_round_trip_keeps_types_and_values():
    # Given a case.assigned payload in an envelope
    env = envelope_for(_case(), id="e1", occurred_at=datetime(2026, 11, 22, tzinfo=UTC), producer="assign",
                       correlation_id="cid-1")
    # When it is dumped to JSON-ready data and loaded back
    loaded = load_envelope(dump_envelope(env))
    # Then it is the same message, with typed fields
    assert loaded == env
    assert loaded.type == "case.assigned" and loaded.version == 1
    assert loaded.payload.due_at.tzinfo is not None


def test_unknown_message_type_is_rejected():
    data = dump_envelope(envelope_for(_case(), id="e1", occurred_at=datetime.now(UTC), producer="a", correlation_id=""))
    data["type"] = "case.vanished"
    with pytest.raises(ValidationError) as exc:
        load_envelope(data)
    assert "type" in exc.value.messages


def test_payload_missing_a_field_is_rejected():
    data = dump_envelope(envelope_for(_case(), id="e1", occurred_at=datetime.now(UTC), producer="a", correlation_id=""))
    del data["payload"]["unit_id"]
    with pytest.raises(ValidationError):
        load_envelope(data)


def test_clock_is_not_controllable_by_default():
    clock = clock_for(Settings())
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 1
    with pytest.raises(ClockControlDisabled):
        clock.advance(timedelta(days=1))


def test_moving_the_clock_moves_it_for_every_process(tmp_path):
    # Given two clocks sharing one state file (two services, two processes)
    first = Clock(store=FileStore(tmp_path / "clock.json"), controllable=True)
    second = Clock(store=FileStore(tmp_path / "clock.json"), controllable=True)
    # When one advances by 10 days
    first.advance(timedelta(days=10))
    second._cached_at = 0  # skip the 50 ms cache
    # Then the other sees it
    assert timedelta(days=9, hours=23) < second.now() - datetime.now(UTC) < timedelta(days=10, minutes=1)


def test_frozen_clock_stays_put_and_advances_exactly(tmp_path):
    clock = Clock(store=FileStore(tmp_path / "c.json"), controllable=True)
    instant = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    clock.set(instant, frozen=True)
    assert clock.now() == instant
    assert clock.advance(timedelta(hours=8)) == instant + timedelta(hours=8)


def test_a_memory_clock_installed_in_a_process_is_its_own(tmp_path):
    """A bulk-fill worker's clock: installed for the process, moved without touching the shared clock file."""
    from shared import clock

    shared_file = Clock(store=FileStore(tmp_path / "clock.json"), controllable=True)
    previous = clock.current()
    try:
        own = clock.install(Clock(store=clock.MemoryStore(), controllable=True))
        at = datetime(2026, 9, 1, 7, tzinfo=timezone.utc)
        own.set(at, frozen=True)
        assert clock.now() == at and clock.current() is own
        assert shared_file.now() != at and not (tmp_path / "clock.json").exists()
    finally:
        clock.install(previous)


def test_production_refuses_clock_control_and_the_default_secret():
    with pytest.raises(ValueError, match="CLOCK_CONTROL"):
        Settings.from_env({"XINFANG_ENV": "production", "XINFANG_CLOCK_CONTROL": "1", "XINFANG_SECRET_KEY": "s" * 32})
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings.from_env({"XINFANG_ENV": "production", "XINFANG_SECRET_KEY": DEV_SECRET})


def test_settings_default_to_sqlite_files_in_the_data_folder(tmp_path):
    settings = Settings.from_env({"XINFANG_DATA_DIR": str(tmp_path)})
    assert settings.database_url("intake") == f"sqlite:///{tmp_path.resolve()}/intake.db"
    assert not settings.distributed
    pg = Settings.from_env({"XINFANG_ASSIGN_DATABASE_URL": "postgresql+psycopg://x@h/db"})
    assert pg.database_url("assign") == "postgresql+psycopg://x@h/db"


PRINCIPAL = Principal(user_id="u1", username="li", role="supervisor", jurisdiction="411300", unit_id=None)


def test_token_round_trip():
    settings = Settings(secret_key="k" * 32)
    assert verify_token(settings, issue_token(settings, PRINCIPAL)) == PRINCIPAL


@pytest.mark.parametrize("mutate", [
    lambda tok, s: (tok, s.replace(secret_key="other-secret-" + "x" * 20)),  # signed with another key
    lambda tok, s: (tok[:-3] + ("AAA" if not tok.endswith("AAA") else "BBB"), s),  # tampered signature
    lambda tok, s: ("not-a-token", s),
])
def test_bad_tokens_are_refused(mutate):
    settings = Settings(secret_key="k" * 32)
    token, verifier = mutate(issue_token(settings, PRINCIPAL), settings)
    with pytest.raises(InvalidToken):
        verify_token(verifier, token)


def test_expired_token_is_refused():
    settings = Settings(secret_key="k" * 32)
    token = issue_token(settings, PRINCIPAL, ttl_seconds=-1)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(settings, token)


def test_token_issued_at_a_simulated_time_is_valid_at_that_time(tmp_path):
    # Given the shared clock moved a year ahead (simulation)
    from shared import clock as clock_mod

    settings = Settings(secret_key="k" * 32, clock_control=True, data_dir=tmp_path)
    clock = clock_mod.configure(settings)
    try:
        clock.advance(timedelta(days=365))
        # When a token is issued and verified at that time, Then it is valid
        assert verify_token(settings, issue_token(settings, PRINCIPAL)) == PRINCIPAL
        # And a token claiming to be issued beyond the clock is refused
        clock.advance(timedelta(days=-2))
        with pytest.raises(InvalidToken, match="future"):
            verify_token(settings, _future_token(settings))
    finally:
        clock_mod.configure(Settings())


def _future_token(settings):
    import jwt as pyjwt

    from shared import clock as clock_mod

    now = clock_mod.now()
    claims = {"sub": "u1", "iss": "xinfang", "role": "supervisor", "jurisdiction": "411300",
              "iat": int((now + timedelta(days=1)).timestamp()), "exp": int((now + timedelta(days=2)).timestamp())}
    return pyjwt.encode(claims, settings.secret_key, algorithm="HS256")
