"""Headless Chromium for the web UI's tests: Debian's ``chromium`` driven through its ``chromedriver``.

Without Chromium the browser tests are skipped, except under CI (``CI`` set),
where they fail: a CI run must not pass without them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.acceptance.waiting import wait_for as eventually
from tests.conftest import IN_CI

CHROMIUM = os.environ.get("CAIRN_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = os.environ.get("CAIRN_TEST_CHROMEDRIVER") or shutil.which("chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
)


def open_browser(width: int = 1280, height: int = 900) -> Any:
    if not (CHROMIUM and CHROMEDRIVER):
        message = "Chromium is not installed (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = open_browser()
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def sign_in(driver: Any, root_url: str, client_id: str, access_token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(root_url + "/signin")
    driver.find_element(By.ID, "clientId").send_keys(client_id)
    driver.find_element(By.ID, "accessToken").send_keys(access_token)
    driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    eventually(lambda: driver.find_elements(By.CSS_SELECTOR, "form[action='/signout']"), 10, "the signed-in header")
