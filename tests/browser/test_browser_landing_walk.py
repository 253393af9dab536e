"""A visitor's walk on a phone (390 px): a channel code → its landing page → a bad phone, then a
good one → the thank-you state with the group QR; then the operator finds the lead and the visit
in the console. QUANZI_SCREENSHOTS=1 saves docs/screenshots/landing-*.png."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pytest
import segno
from browser_support import Console, foreign, record_requests, screenshot

from quanzi.acquisition import channels, landing, media
from quanzi.db.engine import session_scope

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44"
)
GOOD_PHONE = "139 1234 5678"


def _setup(console: Console) -> dict[str, Any]:
    """A published page with the lead form and a group QR, behind a channel code."""
    qr = io.BytesIO()
    segno.make("https://work.weixin.qq.com/gm/walk-group", error="m").save(qr, kind="png", scale=8)
    with session_scope(console.engine) as s:
        image = media.store_image(
            s, console.ws_id, qr.getvalue(), name="group-qr.png", purpose="qr", by=None
        )
        page = landing.create_page(
            s,
            console.ws_id,
            "宝宝辅食资料包",
            {
                "headline": "免费领取宝宝辅食资料包",
                "hook": "0-3 岁宝宝辅食全攻略，营养师整理",
                "benefits": ["120 道辅食食谱", "每周营养师答疑"],
                "testimonials": ["资料很实用，宝宝终于爱吃饭了"],
                "stock_left": 37,
                "form": True,
                "group_qr_url": media.media_url(image),
                "cta": "立即领取",
                "thanks": "领取成功！长按下方二维码进群领资料。",
                "consent_text": "我同意圈子按《隐私政策》使用我的手机号联系我并发送资料。",
            },
            slug="walk-food",
        )
        landing.publish(s, console.ws_id, page.id, "owner@browser.quanzi.test")
        code = channels.create_code(
            s,
            console.ws_id,
            name="门店海报",
            channel="shop_poster",
            target_kind="landing",
            target={"page": "walk-food"},
        )
        return {"page_id": page.id, "code": code.code}


def test_a_visitor_leaves_a_lead_on_a_phone_and_the_operator_sees_it(
    browser: Any, console: Console, page_as: Any
) -> None:
    made = _setup(console)
    context = browser.new_context(
        locale="zh-CN", viewport=PHONE, user_agent=IPHONE_UA, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    try:
        phone = context.new_page()
        seen = record_requests(phone)
        phone.goto(f"{console.base}/c/{made['code']}?s=qr")
        assert re.search(r"/p/walk-food\?c=shop_poster$", phone.url), phone.url
        phone.get_by_role("heading", name="免费领取宝宝辅食资料包").wait_for()
        # Mobile-first: nothing wider than the phone.
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(phone, "landing-phone")

        phone.get_by_label("称呼", exact=True).fill("陈妈妈")
        phone.get_by_label("手机号", exact=True).fill("1234")
        phone.locator("input[name=consent]").check()
        phone.get_by_role("button", name="立即领取").click()
        alert = phone.get_by_role("alert")
        alert.wait_for()
        assert "手机号" in alert.inner_text()
        # What they typed is kept; nothing was stored.
        assert phone.get_by_label("称呼", exact=True).input_value() == "陈妈妈"
        screenshot(phone, "landing-phone-error")

        phone.get_by_label("手机号", exact=True).fill(GOOD_PHONE)
        phone.locator("input[name=consent]").check()
        phone.get_by_role("button", name="立即领取").click()
        phone.get_by_role("heading", name="领取成功！长按下方二维码进群领资料。").wait_for()
        qr = phone.get_by_role("img", name="社群二维码")
        qr.wait_for()
        assert phone.evaluate(
            "(img) => img.complete && img.naturalWidth > 0", qr.element_handle()
        ), "the group QR image did not load"
        screenshot(phone, "landing-phone-thanks")
        assert foreign(seen, console.base) == [], "the public page made a third-party request"
    finally:
        context.close()

    operator = page_as("owner")
    operator.goto(console.url("/leads"))
    row = operator.locator("[data-testid=leads] tr[data-lead]").filter(has_text="shop_poster")
    assert row.count() == 1
    assert row.locator("[data-phone]").inner_text().strip() == "139****5678"
    assert "宝宝辅食资料包" in row.inner_text()
    screenshot(operator, "landing-leads")

    # The visit is counted on the page's funnel (visits are written in the background: wait).
    deadline = time.monotonic() + 10
    while True:
        operator.goto(console.url(f"/landing/{made['page_id']}"))
        views = operator.locator("[data-testid=funnel] tr[data-step=view] td.num").first
        leads = operator.locator("[data-testid=funnel] tr[data-step=lead] td.num").first
        if views.inner_text().strip() not in ("0", "") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert int(views.inner_text().replace(",", "")) >= 1
    assert int(leads.inner_text().replace(",", "")) == 1
    screenshot(operator, "landing-funnel")
