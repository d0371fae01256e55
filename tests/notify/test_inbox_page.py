"""The inbox page (收件箱) in headless Debian chromium: unread count, filters, the acknowledge button.

Skipped only when chromium is absent and not under CI=true (then it fails)."""
from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from notify_svc.models import Notice
from tests.conftest import IN_CI, free_port
from tests.helpers import token_for

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if IN_CI:
            pytest.fail("chromium/chromedriver missing (CI=true: the browser test is required)")
        pytest.skip("chromium/chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="xft-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def served(notify):
    server = make_server("127.0.0.1", free_port(), notify.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def wait_for(browser, condition, seconds: float = 15):
    """Wait until ``condition(browser)`` holds, across the page a form submission replaces.

    While chromium navigates, a lookup can fail in three ways that say nothing about the page to come:
    the element is not there yet, it belonged to the old page (stale), or chromedriver loses the old
    page's execution context ("unhandled inspector error: Cannot find context with specified id", a
    plain ``WebDriverException``).  All three are retried; a condition that never holds still fails
    with a timeout."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds, ignored_exceptions=(WebDriverException,)).until(condition)


def test_inbox_page_counts_filters_and_acknowledges(notify, served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    a1 = notify.request("assignment", subject_id="c1")
    a2 = notify.request("assignment", subject_id="c2")
    urge = notify.request("urge", subject_id="f1")
    notify.request("assignment", recipient_id="411302-xfj", recipient_name="宛城区信访局")  # someone else's
    token = token_for(notify.settings, role="handler", unit_id="411302-zjj", jurisdiction="411302")

    # without a token: the sign-in form
    browser.get(f"{served}/notify/inbox")
    assert browser.find_element(By.ID, "login").text == "登录"
    # the sign-in form sets the cookie
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "login").click()
    wait_for(browser, lambda b: b.find_element(By.ID, "unread-count").text == "3")
    shown = {e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, ".notice")}
    assert shown == {f"notice-{n.id}" for n in (a1, a2, urge)}

    # filter by type: 催办通知
    Select(browser.find_element(By.ID, "type-filter")).select_by_visible_text("催办通知")
    browser.find_element(By.ID, "apply-filter").click()
    # the click submits a form: wait for the filtered page instead of reading the old one
    wait_for(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, ".notice")) == 1)
    [card] = browser.find_elements(By.CSS_SELECTOR, ".notice")
    assert card.get_attribute("id") == f"notice-{urge.id}"
    assert card.find_element(By.CSS_SELECTOR, ".title").text == "催办通知：DC2026-0001"

    # acknowledge it with the button: its state changes, the unread count drops
    card.find_element(By.CSS_SELECTOR, ".ack-button").click()
    wait_for(browser, lambda b: b.find_element(By.ID, f"notice-{urge.id}").find_element(By.CSS_SELECTOR, ".state")
             .text.startswith("已签收"))
    card = browser.find_element(By.ID, f"notice-{urge.id}")
    assert browser.find_element(By.ID, "unread-count").text == "2"
    [row] = notify.rows(Notice, Notice.id == urge.id)
    assert row.acknowledged_at is not None and row.ack_via == "inbox"
    assert notify.outbox("notice.acknowledged")[0]["via"] == "inbox"

    # only unacknowledged, all types: the two assignment notices
    browser.get(f"{served}/notify/inbox?unacknowledged=1")
    shown = {e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, ".notice")}
    assert shown == {f"notice-{a1.id}", f"notice-{a2.id}"}


def test_inbox_page_accepts_a_token_in_the_query_once(notify, served, browser):
    from selenium.webdriver.common.by import By

    notify.request("assignment", subject_id="c1")
    token = token_for(notify.settings, role="handler", unit_id="411302-zjj", jurisdiction="411302")
    browser.get(f"{served}/notify/inbox?token={token}")
    assert "token=" not in browser.current_url  # redirected: the token left the address bar
    assert browser.find_element(By.ID, "unread-count").text == "1"


def test_ack_link_opens_a_confirmation_page_and_the_button_acknowledges(notify, served, browser):
    from selenium.webdriver.common.by import By

    from notify_svc import links
    from shared import clock

    notice = notify.request("assignment", subject_id="c1")
    token = links.make_token(notify.cfg, notice.id, clock.now())
    browser.get(f"{served}/notify/ack/{token}")  # what a mail scanner also does: nothing happens
    assert browser.find_element(By.ID, "title").text == "确认签收通知"
    assert browser.find_element(By.ID, "recipient").text == "宛城区住房和城乡建设局"
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.acknowledged_at is None
    browser.find_element(By.ID, "confirm").click()
    wait_for(browser, lambda b: b.find_element(By.ID, "title").text == "签收成功")
    assert browser.find_element(By.ID, "acknowledged-at").text == "2025年09月22日 10:00"
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.ack_via == "link" and row.acknowledged_at == clock.now()


def test_unacknowledged_overview_for_supervisors(notify, served, browser):
    """未签收通知一览: a supervisor sees what is still unsigned in their jurisdiction, the longest waiting first,
    overdue ones marked; a unit's handler is refused."""
    from selenium.webdriver.common.by import By

    from tests.notify.conftest import advance

    first = notify.request("assignment", subject_id="c1", context={"region_code": "411302"})
    advance(minutes=10)
    signed = notify.request("assignment", subject_id="c2", context={"region_code": "411302"})
    advance(minutes=10)
    urge = notify.request("urge", subject_id="f1", urgency="urgent", context={"region_code": "411302"})
    city = notify.request("assignment", subject_id="c3", recipient_id="411300-xfj", recipient_name="南阳市信访局",
                          context={"region_code": "411300"})
    unit = token_for(notify.settings, role="handler", unit_id="411302-zjj", jurisdiction="411302")
    assert notify.client.post(f"/notify/api/v1/notices/{signed.id}/ack",
                              headers={"Authorization": f"Bearer {unit}"}).status_code == 200

    def supervisor() -> str:
        return token_for(notify.settings, role="supervisor", unit_id="411302-xfj", jurisdiction="411302")

    # from the inbox, a supervisor follows the link to the overview
    browser.get(f"{served}/notify/inbox?token={supervisor()}")
    browser.find_element(By.ID, "to-overview").click()
    wait_for(browser, lambda b: b.find_element(By.TAG_NAME, "h1").text == "未签收通知一览")
    assert browser.find_element(By.ID, "total").text == "2" and browser.find_element(By.ID, "overdue-total").text == "0"
    rows = browser.find_elements(By.CSS_SELECTOR, "#notices tbody tr")
    assert [r.get_attribute("id") for r in rows] == [f"row-{first.id}", f"row-{urge.id}"]  # not the city's
    assert rows[0].find_element(By.CSS_SELECTOR, ".recipient").text == "宛城区住房和城乡建设局"
    assert rows[1].find_element(By.CSS_SELECTOR, ".title").text.startswith("【紧急】")
    assert {r.find_element(By.CSS_SELECTOR, ".state").text for r in rows} == {"未到签收期限"}
    assert city.id not in browser.page_source

    # three days on, both are past their deadline; the filter shows the overdue ones, in red
    advance(days=3)
    browser.get(f"{served}/notify/unacknowledged?token={supervisor()}")
    assert browser.find_element(By.ID, "overdue-total").text == "2"
    browser.find_element(By.ID, "overdue-filter").click()
    browser.find_element(By.ID, "apply-filter").click()
    wait_for(browser, lambda b: "overdue=1" in b.current_url)
    states = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#notices tbody tr.late .state")]
    assert len(states) == 2 and all(s.startswith("逾期 ") and "天" in s for s in states), states

    # a unit's handler is refused, and sent back to the inbox
    browser.get(f"{served}/notify/unacknowledged?token={token_for(notify.settings, role='handler', unit_id='411302-zjj', jurisdiction='411302')}")
    assert "仅供督查员和管理员查看" in browser.page_source
