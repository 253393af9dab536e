"""The basics of accessibility, checked by axe-core in Chromium on the console's main pages at
1280 px and on a 390 px phone: labels, contrast, keyboard and focus; no sideways scrolling of
the page on the phone (wide tables scroll inside their .table-wrap); Tab reaches the skip link
and the main navigation with a visible focus outline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from browser_support import Console, zh

# Its own xdist group: under `--dist loadgroup` it may run beside the journey on another worker.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-a11y")]

# The rules of the basics: names and labels of what can be used, contrast, keyboard and focus.
RULES = (
    # labels
    "label",
    "aria-input-field-name",
    "select-name",
    "button-name",
    "input-button-name",
    "link-name",
    "image-alt",
    # contrast
    "color-contrast",
    # keyboard and focus
    "focus-order-semantics",
    "tabindex",
    "bypass",
    "scrollable-region-focusable",
    "nested-interactive",
    # the page itself
    "html-has-lang",
    "document-title",
)
# The page's width, and the elements that stick out of the screen without a scrolling box
# (a .table-wrap, the sidebar's strip) around them: what makes the page scroll sideways.
OVERFLOW_JS = """() => {
  const d = document.documentElement;
  const inScroller = e => {
    for (let x = e.parentElement; x && x !== document.body; x = x.parentElement)
      if (getComputedStyle(x).overflowX !== "visible") return true;
    return false;
  };
  const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
    + (typeof e.className === "string" && e.className.trim()
       ? "." + e.className.trim().split(/\\s+/).join(".") : "");
  const path = e => { const p = []; for (let x = e; x && x !== document.body; x = x.parentElement)
    p.unshift(name(x)); return p.join(" > "); };
  const wide = [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > d.clientWidth + 1 && !inScroller(e))
    .slice(0, 4).map(e => path(e) + " (right edge " + Math.round(e.getBoundingClientRect().right) + " px)");
  return {width: d.scrollWidth, wide};
}"""
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


def _window(c: Console) -> str:
    return f"from={c.end_day - timedelta(days=29)}&to={c.end_day}"


# page id -> (who looks, its URL)
PAGES: dict[str, tuple[str | None, Callable[[Console], str]]] = {
    "login": (None, lambda c: f"{c.base}/login"),
    "dashboard": ("owner", lambda c: c.at_end("/dashboard")),
    "groups": ("owner", lambda c: c.at_end("/groups")),
    "group": ("owner", lambda c: c.url(f"/groups/{c.operator_groups[1]}?date={c.end_day}")),
    "members": ("owner", lambda c: c.url("/members")),
    "member": ("owner", lambda c: c.url(f"/members/{c.phone_member}")),
    "tags": ("owner", lambda c: c.url("/tags")),
    "report-retention": ("owner", lambda c: c.url(f"/reports/retention?{_window(c)}")),
    "team": ("owner", lambda c: c.url("/team")),
}


def axe_violations(page: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page.evaluate(axe.axe_script)
    known = set(page.evaluate("axe.getRules().map(r => r.ruleId)"))
    rules = [r for r in RULES if r in known]
    results = page.evaluate(
        "rules => axe.run(document, {runOnly: {type: 'rule', values: rules},"
        " resultTypes: ['violations']})",
        rules,
    )
    return list(results["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    """One paragraph per violated rule: what, how bad, and where (the first few elements)."""
    out = []
    for v in violations:
        out.append(f"- {v['id']} ({v.get('impact')}): {v['help']} — {len(v['nodes'])} element(s)")
        for node in v["nodes"][:6]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = " ".join((node.get("failureSummary") or "").split())[:220]
            out.append(f"    {target}: {summary}")
    return "\n".join(out)


def open_page(page_as: Any, browser: Any, console: Console, name: str, width: str) -> Any:
    role, url = PAGES[name]
    w, h = WIDTHS[width]
    if role is None:
        context = browser.new_context(locale="zh-CN", viewport={"width": w, "height": h})
        page = context.new_page()
    else:
        page = page_as(role, viewport={"width": w, "height": h})
    response = page.goto(url(console))
    assert response is not None and response.status == 200, (
        f"{name}: {url(console)} answered {response and response.status}"
    )
    page.wait_for_load_state("load")
    return page


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", list(PAGES))
def test_page_passes_the_basics(
    page_as: Any, browser: Any, console: Console, name: str, width: str
) -> None:
    page = open_page(page_as, browser, console, name, width)
    try:
        problems = []
        violations = axe_violations(page)
        if violations:
            problems.append(f"axe-core found on {name} at {width} width:\n{describe(violations)}")
        if width == "phone":
            overflow = page.evaluate(OVERFLOW_JS)
            if overflow["width"] > 390 + 1:
                problems.append(
                    f"{name} scrolls sideways on a 390 px phone: the page is "
                    f"{overflow['width']} px wide; too wide: {'; '.join(overflow['wide'])}"
                )
        assert not problems, "\n".join(problems)
    finally:
        if PAGES[name][0] is None:
            page.context.close()


def focus_state(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " const r = e.getBoundingClientRect();"
            " return {tag: e.tagName.toLowerCase(), cls: e.className || '',"
            "  href: e.getAttribute('href') || '', inNav: !!e.closest('nav.sidebar'),"
            "  text: (e.innerText || '').trim(),"
            "  outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,"
            "  shadow: s.boxShadow !== 'none',"
            "  visible: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0"
            "   && r.top < innerHeight && r.left < innerWidth}; }"
        )
    )


@pytest.mark.parametrize("width", list(WIDTHS))
def test_tab_reaches_skip_link_and_navigation(page_as: Any, console: Console, width: str) -> None:
    w, h = WIDTHS[width]
    page = page_as("owner", viewport={"width": w, "height": h})
    page.goto(console.at_end("/groups"))  # the layout is every page's; this one has no charts
    page.wait_for_load_state("load")

    page.keyboard.press("Tab")
    first = focus_state(page)
    assert "skip-link" in first["cls"], f"the first Tab stop is {first}, not the skip link"
    assert first["text"] == zh("Skip to content")
    assert first["visible"], "the skip link stays off screen when focused"
    assert first["outline"] or first["shadow"], "the focused skip link shows no focus outline"

    stops = []
    for _ in range(15):
        page.keyboard.press("Tab")
        state = focus_state(page)
        stops.append(state)
        if state["inNav"]:
            break
    else:
        pytest.fail(f"15 Tab presses did not reach the main navigation: {stops}")
    for state in stops:
        assert state["outline"] or state["shadow"], f"no visible focus outline on {state}"
    assert stops[-1]["visible"], f"the focused nav link is not on screen: {stops[-1]}"

    # The skip link leads to the content.
    page.goto(console.at_end("/groups"))
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
