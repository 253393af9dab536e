"""The main journey through the console, as a person walks it in Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from browser_support import Console, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_login_page_in_chinese(page: Any, console: Console) -> None:
    page.goto(f"{console.base}/login")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_label("邮箱").is_visible()
    screenshot(page, "login", full_page=False)
