"""The public register and the oversight desk in a real browser: Debian's headless Chromium through Selenium,
on the real HTTPS server (its certificate pinned, TLS verified). Each test saves a screenshot under
test-output/screenshots/, and every page source is checked for full resident ID numbers."""

from __future__ import annotations

import time

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hub.devstack.secrets import web_certificate
from tests.browser import browser, screenshot
from tests.check_service import full_resident_ids
from tests.support import PERSON_ID
from tests.web_world import PASSWORD, RESTRICTED_ID, SHIELD_ID

MASKED = PERSON_ID[:10] + "****" + PERSON_ID[14:]


@pytest.fixture
def chromium(web_world):
    with browser(web_certificate(web_world.settings.state_dir)[0]) as driver:
        yield driver


def open_page(driver, url: str) -> str:
    driver.get(url)
    source = driver.page_source
    assert not full_resident_ids(source), f"{url} shows full resident ID numbers"
    return source


def follow(driver, element) -> None:
    """Clicks `element` and waits until the page it leads to has loaded: a click returns before a slow machine
    has navigated, and the old page's elements would be read as the new one's. The old page is marked on its
    window, which a new document replaces; asking whether the clicked element went stale instead is answered
    by Chromium, mid-navigation, with an inspector error rather than a stale reference."""
    driver.execute_script("window.hubOldPage = true")
    element.click()
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return window.hubOldPage === undefined && document.readyState === 'complete'")
    )


def search(driver, base: str, name: str = "", id_number: str = "") -> str:
    open_page(driver, base + "/")
    driver.find_element(By.NAME, "name").send_keys(name)
    if id_number:
        driver.find_element(By.NAME, "id").send_keys(id_number)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "form.search button"))
    source = driver.page_source
    assert not full_resident_ids(source)
    return source


def results(driver) -> list[str]:
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "tr.result")]


def sign_in(driver, base: str, username: str, target: str = "/desk") -> None:
    open_page(driver, base + target)
    assert "/desk/login" in driver.current_url
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "main form button"))


def test_a_listed_name_is_found_with_its_id_masked(web_world, chromium):
    search(chromium, web_world.web.url, "张三")
    rows = results(chromium)
    assert len(rows) == 1 and "张三" in rows[0] and MASKED in rows[0], chromium.find_element(By.TAG_NAME, "main").text
    screenshot(chromium, "register-search")
    follow(chromium, chromium.find_element(By.LINK_TEXT, "详情"))
    detail = chromium.find_element(By.CSS_SELECTOR, "dl.detail").text
    assert MASKED in detail and "有履行能力而拒不履行" in detail
    screenshot(chromium, "register-entry")


def test_a_restricted_entry_cannot_be_found_by_name_or_id(web_world, chromium):
    search(chromium, web_world.web.url, "王五")
    assert results(chromium) == []
    search(chromium, web_world.web.url, "", RESTRICTED_ID)
    assert results(chromium) == [] and "未找到" in chromium.page_source
    assert RESTRICTED_ID not in chromium.page_source
    screenshot(chromium, "register-restricted-not-found")


def test_a_shielded_entry_is_gone_on_reload(web_world, chromium):
    search(chromium, web_world.web.url, "赵六")
    assert len(results(chromium)) == 1
    web_world.shield("S-1", {"kind": "PERSON", "id_number": SHIELD_ID, "name": "赵六"}, 900)
    deadline = time.monotonic() + 30  # the register consumes it within a second or so; CI machines are slow
    while results(chromium):
        assert time.monotonic() < deadline, "the shielded entry is still listed after 30 s"
        time.sleep(0.3)
        chromium.refresh()
    assert "未找到" in chromium.page_source
    screenshot(chromium, "register-shielded-gone")


def test_an_auditor_opens_an_entry_page_and_the_breach_chart(web_world, chromium):
    base = web_world.web.url
    sign_in(chromium, base, "auditor1")
    assert chromium.current_url.endswith("/desk")
    charts = chromium.find_elements(By.CSS_SELECTOR, ".charts img")
    assert len(charts) == 3
    assert all(
        chromium.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", c) for c in charts
    )
    screenshot(chromium, "desk-overview")
    open_page(chromium, base + "/desk/entries/P-1")
    text = chromium.find_element(By.TAG_NAME, "main").text
    assert "Included" in text and "SanctionApplied" in text and "按时 on time" in text
    screenshot(chromium, "desk-entry")
    open_page(chromium, base + "/desk/charts/breaches.svg")
    assert "Breaches per week" in chromium.page_source
    screenshot(chromium, "desk-breach-chart")
    open_page(chromium, base + "/desk/breaches")
    assert chromium.find_elements(By.CSS_SELECTOR, "table.breaches tbody tr")
    screenshot(chromium, "desk-breaches")


def test_a_court_account_cannot_open_another_courts_entry(web_world, chromium):
    base = web_world.web.url
    sign_in(chromium, base, "clerk-j0108", "/desk/entries/P-1")
    assert chromium.current_url.endswith("/desk/entries/P-1")
    assert "此条目不属于您的法院" in chromium.page_source and "SanctionApplied" not in chromium.page_source
    screenshot(chromium, "desk-other-court-refused")
    open_page(chromium, base + "/desk/entries/O-1")
    assert "SanctionApplied" in chromium.page_source
