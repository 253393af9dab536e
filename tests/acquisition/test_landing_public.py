"""The public side of landing pages: the visitor's channel reaches the lead, A/B variants
split and stick, garbage is a 400 in the visitor's language, visits are buffered and flushed,
the in-memory pages follow publish/unpublish, and only digests of the network are stored."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from quanzi.acquisition import landing, writers
from quanzi.acquisition.models import LandingVisit, Lead
from quanzi.acquisition.visitors import Visitor, network_of
from quanzi.acquisition.writers import VISITS, GroupCommit, PendingVisit, VisitLog
from quanzi.config import get_settings
from quanzi.core.workspaces.service import get_or_create_workspace, workspace_key
from quanzi.db.base import Base
from quanzi.db.engine import session_scope
from quanzi.web.app import create_app

CONTENT: dict[str, Any] = {
    "headline": "育儿资料包 A",
    "hook": "扫码进群，每周三专家直播答疑",
    "fields": [{"key": "baby_age", "label": "宝宝月龄", "required": False}],
    "group_qr_url": "/static/favicon.svg",
    "consent_text": "我同意圈子按《隐私政策》使用我的手机号联系我（v1）",
}
CONTENT_B = {**CONTENT, "headline": "育儿资料包 B"}
SLUG = "baby-pack"
PHONE = "13812345678"
IP = "203.0.113.7"
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0.40"


@pytest.fixture(autouse=True)
def _fresh_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landing, "PER_IP", landing.SlidingWindow(1000, 600))
    monkeypatch.setattr(landing, "PER_PHONE", landing.SlidingWindow(1000, 3600))


def _site(engine: Engine, split_b: int = 0) -> dict[str, int]:
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, "default").id
        page = landing.create_page(s, ws, "育儿资料包", CONTENT, slug=SLUG)
        a = landing.publish(s, ws, page.id, "owner@example.com")
        ids = {"ws": ws, "page": page.id, "a": a.id}
        if split_b:
            landing.save_draft(s, ws, page.id, CONTENT_B, "B")
            ids["b"] = landing.publish(s, ws, page.id, "owner@example.com", "B").id
            landing.set_split(s, ws, page.id, split_b)
    return ids


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), client=(IP, 50000)) as c:
        yield c


def _action(page_html: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', page_html)
    assert found, "the page has no lead form"
    return html.unescape(found[1])


def _leads(engine: Engine) -> list[Lead]:
    with session_scope(engine, read_only=True) as s:
        return list(s.scalars(select(Lead).order_by(Lead.id)))


def _form(**fields: str) -> dict[str, str]:
    return {"name": "王小花", "phone": PHONE, "consent": "1", **fields}


# --- the channel reaches the lead -------------------------------------------------------------


def test_the_lead_keeps_the_channel_of_the_visit(engine: Engine, client: TestClient) -> None:
    _site(engine)
    plain = client.get(f"/p/{SLUG}")
    assert _action(plain.text) == f"/p/{SLUG}/lead"
    flyer = client.get(f"/p/{SLUG}?c=flyer")
    assert _action(flyer.text) == f"/p/{SLUG}/lead?c=flyer"
    # One version's HTML is shared; each channel gets its own form action.
    assert _action(client.get(f"/p/{SLUG}?c=shop.front").text) == f"/p/{SLUG}/lead?c=shop.front"
    assert _action(client.get(f"/p/{SLUG}?c=flyer").text) == f"/p/{SLUG}/lead?c=flyer"
    gz = client.get(f"/p/{SLUG}?c=flyer", headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and _action(gz.text).endswith("?c=flyer")

    r = client.post(_action(flyer.text), data=_form())
    assert r.status_code == 200 and "提交成功" in r.text
    r = client.post(_action(plain.text), data=_form(phone="13912345678"))
    assert r.status_code == 200
    assert [lead.channel for lead in _leads(engine)] == ["flyer", None]


def test_a_channel_code_on_a_landing_page_gives_its_channel_key(
    engine: Engine, client: TestClient
) -> None:
    from quanzi.acquisition import channels

    ids = _site(engine)
    with session_scope(engine) as s:
        code = channels.create_code(
            s, ids["ws"], name="Flyer", channel="flyer_2026", target_kind="landing",
            target={"page": SLUG},
        ).code  # fmt: skip
    page = client.get(f"/c/{code}?s=qr")  # followed to /p/<slug>?c=<channel key>
    assert page.status_code == 200
    client.post(_action(page.text), data=_form())
    assert [lead.channel for lead in _leads(engine)] == ["flyer_2026"]


# --- A/B ----------------------------------------------------------------------------------------


def _variant(client: TestClient, visitor: str) -> str:
    client.cookies.clear()
    r = client.get(f"/p/{SLUG}", headers={"cookie": f"qzv={visitor}"})
    assert r.status_code == 200 and "set-cookie" not in r.headers
    return "B" if "育儿资料包 B" in r.text else "A"


def test_ab_visitors_split_and_keep_their_variant(engine: Engine, client: TestClient) -> None:
    _site(engine, split_b=30)
    visitors = [f"visitor-{i:010d}-x" for i in range(400)]
    seen = {v: _variant(client, v) for v in visitors}
    b = sum(1 for v in seen.values() if v == "B")
    # Binomial(400, 0.3): mean 120, sd 9.2; five standard deviations either side.
    assert 74 <= b <= 166, b
    for v in visitors[:25]:
        assert _variant(client, v) == seen[v] == _variant(client, v)
    client.cookies.clear()
    fresh = client.get(f"/p/{SLUG}")
    assert re.match(r"qzv=[A-Za-z0-9_-]{16};", fresh.headers["set-cookie"])


def test_a_lead_records_the_version_its_form_came_from(engine: Engine, client: TestClient) -> None:
    ids = _site(engine, split_b=50)
    with session_scope(engine) as s:
        other = landing.create_page(s, ids["ws"], "other", CONTENT, slug="other-page")
        other_v = landing.publish(s, ids["ws"], other.id, None).id
    client.post(f"/p/{SLUG}/lead", data=_form(v=str(ids["b"]), phone="13800000001"))
    client.post(f"/p/{SLUG}/lead", data=_form(v=str(ids["a"]), phone="13800000002"))
    client.post(f"/p/{SLUG}/lead", data=_form(v=str(other_v), phone="13800000003"))  # forged
    client.post(f"/p/{SLUG}/lead", data=_form(v="999999", phone="13800000004"))  # no such
    client.post(f"/p/{SLUG}/lead", data=_form(phone="13800000005"))  # no v: A
    got = [(lead.page_id, lead.version_id) for lead in _leads(engine)]
    page = ids["page"]
    assert got == [(page, ids["b"]), *[(page, ids["a"])] * 4]
    # A B visitor's page carries B's version in its form.
    b_visitor = next(
        v for v in (f"visitor-{i:010d}-y" for i in range(50)) if _variant(client, v) == "B"
    )
    r = client.get(f"/p/{SLUG}", headers={"cookie": f"qzv={b_visitor}"})
    assert f'name="v" value="{ids["b"]}"' in r.text


# --- garbage is a 400 in the visitor's language, never a 500 ---------------------------------


def _error(page_html: str) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', page_html, re.S)
    assert found, page_html[:300]
    return html.unescape(found[1])


def _in_language(message: str, lang: str) -> bool:
    cjk = re.search(r"[\u4e00-\u9fff]", message) is not None
    return cjk if lang == "zh" else not cjk


GARBAGE: list[tuple[str, dict[str, str], bytes | dict[str, str]]] = [
    ("?c=%3Cscript%3E", {}, {}),  # a channel that is not a channel key
    ("?c=" + "x" * 31, {}, {}),
    ("?c=%FF", {}, {}),  # not UTF-8 in the query
    ("?c=flyer%0A", {}, {}),
    ("", {}, {"v": "abc"}),  # bad version
    ("", {}, {"v": "-1"}),
    ("", {}, {"v": "99999999999"}),
    ("", {}, {"v": "2147483648"}),  # one past the largest id a version can have
    ("", {}, {"name": "x" * 5000}),  # huge fields
    ("", {}, {"f_baby_age": "月" * 1200}),
    ("", {}, {"phone": "1" * 500}),
    ("", {}, {"consent": "maybe"}),  # wrong type
    ("", {}, {"phone": ""}),  # missing
    ("", {}, b""),  # nothing at all
    ("", {}, b"name=%FF%FE&phone=13812345678&consent=1"),  # bad UTF-8, percent-encoded
    ("", {}, b"name=\xff\xfe&phone=13812345678&consent=1"),  # bad UTF-8, raw
    ("", {}, b"a=1&" * 60),  # too many fields
    ("", {}, b"name=" + b"A" * 40_000),  # over the body limit
    ("", {"content-type": "application/json"}, b'{"phone": "13812345678"}'),  # not a form
    ("", {"content-type": "multipart/form-data; boundary=x"}, b"--x--"),
    ("", {"content-type": "text/plain"}, b"phone=13812345678"),
]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_garbage_is_a_400_page_in_the_visitors_language(
    engine: Engine, client: TestClient, lang: str
) -> None:
    _site(engine)
    accept = {"accept-language": "en-US,en;q=0.9" if lang == "en" else "zh-CN,zh;q=0.9"}
    for query, headers, body in GARBAGE:
        if isinstance(body, dict):
            r = client.post(f"/p/{SLUG}/lead{query}", data=_form(**body), headers=accept)
        else:
            kind = {"content-type": "application/x-www-form-urlencoded", **headers}
            r = client.post(f"/p/{SLUG}/lead{query}", content=body, headers={**accept, **kind})
        assert r.status_code == 400, (query, body, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("text/html")
        message = _error(r.text)
        assert _in_language(message, lang), (query, body, message)
        assert "Traceback" not in r.text
    for query in ("?c=%3Cscript%3E", "?c=" + "x" * 31):
        r = client.get(f"/p/{SLUG}{query}", headers=accept)
        assert r.status_code == 400 and _in_language(_error(r.text), lang)
        assert "<script>" not in r.text
    assert _leads(engine) == []
    # The channel is not carried by the 400's form, and a good submission still works.
    assert client.post(f"/p/{SLUG}/lead?c=ok", data=_form(), headers=accept).status_code == 200


FIELDS = st.sampled_from(["name", "phone", "consent", "website", "v", "f_baby_age", "f_x", "c"])
VALUES = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789 +-()", max_size=20),
    st.sampled_from(["1", "on", "", "13812345678", "+8613912345678", "0", "2147483648"]),
    st.text(min_size=990, max_size=1100),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    form=st.dictionaries(FIELDS, VALUES, max_size=8),
    raw=st.one_of(st.none(), st.binary(max_size=300)),
    lang=st.sampled_from(["en", "zh"]),
)
def test_fuzzed_forms_never_crash(
    engine: Engine, fuzz_client: TestClient, form: dict[str, str], raw: bytes | None, lang: str
) -> None:
    body = raw if raw is not None else urlencode(form).encode()
    r = fuzz_client.post(
        f"/p/{SLUG}/lead",
        content=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "accept-language": "en" if lang == "en" else "zh-CN",
        },
    )
    assert r.status_code in (200, 400), (body, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    if r.status_code == 400:
        assert _in_language(_error(r.text), lang), (body, _error(r.text))


@pytest.fixture
def fuzz_client(engine: Engine, client: TestClient) -> TestClient:
    _site(engine)
    return client


# --- visits: buffered, flushed, and written at shutdown ----------------------------------------


def test_visits_are_written_by_the_background_flush_and_at_shutdown(engine: Engine) -> None:
    ids = _site(engine)
    with VISITS.held(), TestClient(create_app(engine), client=(IP, 1)) as c:
        for channel in ("a", "b", "b"):
            assert c.get(f"/p/{SLUG}?c={channel}").status_code == 200
        with session_scope(engine, read_only=True) as s:
            assert s.scalars(select(LandingVisit)).all() == []  # not one transaction per view
        assert VISITS.pending(engine) == 3
    # The app shut down: its pending visits were written.
    assert VISITS.pending(engine) == 0
    with session_scope(engine, read_only=True) as s:
        visits = s.scalars(select(LandingVisit).order_by(LandingVisit.id)).all()
    assert [(v.channel, v.version_id, v.page_id) for v in visits] == [
        ("a", ids["a"], ids["page"]),
        ("b", ids["a"], ids["page"]),
        ("b", ids["a"], ids["page"]),
    ]
    assert all(v.day > 0 and v.net_digest and v.device_digest for v in visits)
    # Without holding, the background thread writes them within a fraction of a second.
    with TestClient(create_app(engine)) as c:
        c.get(f"/p/{SLUG}?c=later")
        for _ in range(200):
            with session_scope(engine, read_only=True) as s:
                later = s.scalar(select(LandingVisit.id).where(LandingVisit.channel == "later"))
            if later is not None:
                break
            threading.Event().wait(0.05)
        assert later is not None, "not written by the background flush within 10 s"


def test_a_visit_log_writes_what_it_holds_in_one_flush(engine: Engine) -> None:
    ids = _site(engine)
    log = VisitLog(interval=3600)
    page = landing.public_pages(engine).load_version(ids["a"], SLUG)
    for i in range(50):
        log.add(
            engine,
            PendingVisit(
                LandingVisit,
                ids["ws"],
                "Asia/Shanghai",
                1_767_225_600_000_000 + i,  # 2026-01-01 00:00 UTC = 08:00 in Shanghai
                {"page_id": page.page_id, "version_id": page.version_id, "channel": None,
                 "ua_class": "ios"},
                Visitor(IP, network_of(IP), UA),
            ),
        )  # fmt: skip
    assert log.pending(engine) == 50
    assert log.flush(engine) == 50 and log.pending(engine) == 0
    with session_scope(engine, read_only=True) as s:
        days = set(s.scalars(select(LandingVisit.day)))
    assert len(days) == 1


def test_group_commit_acknowledges_only_committed_work(engine: Engine) -> None:
    ids = _site(engine)
    writer: GroupCommit[int] = GroupCommit(engine)

    def ok(s: Any) -> int:
        return int(s.execute(text("SELECT 1")).scalar_one())

    def bad(s: Any) -> int:
        raise ValueError("this one fails")

    futures = [writer.submit(ok), writer.submit(bad), writer.submit(ok)]
    assert futures[0].result(10) == 1 and futures[2].result(10) == 1
    with pytest.raises(ValueError, match="this one fails"):
        futures[1].result(10)
    assert ids["ws"] > 0


# --- in-memory pages follow publish and unpublish ----------------------------------------------


def test_the_served_page_follows_publish_and_unpublish(engine: Engine, client: TestClient) -> None:
    ids = _site(engine)
    assert "育儿资料包 A" in client.get(f"/p/{SLUG}").text
    with session_scope(engine) as s:  # in this process: at once, after the commit
        landing.save_draft(s, ids["ws"], ids["page"], {**CONTENT, "headline": "新标题"})
        landing.publish(s, ids["ws"], ids["page"], None)
    assert "新标题" in client.get(f"/p/{SLUG}").text
    with session_scope(engine) as s:
        landing.unpublish(s, ids["ws"], ids["page"])
    assert client.get(f"/p/{SLUG}").status_code == 404
    assert client.post(f"/p/{SLUG}/lead", data=_form()).status_code == 404


def test_another_process_publishing_shows_within_the_staleness_bound(
    engine: Engine, client: TestClient
) -> None:
    ids = _site(engine)
    now = [1000.0]
    landing.public_pages(engine).live.clock = lambda: now[0]
    assert client.get(f"/p/{SLUG}").status_code == 200
    # Another web process takes the page offline: no message reaches this one.
    with engine.begin() as conn:
        conn.execute(text("UPDATE landing_pages SET published_version_id = NULL"))
    now[0] += landing.LIVE_S / 2
    assert client.get(f"/p/{SLUG}").status_code == 200  # served from memory meanwhile
    now[0] += landing.LIVE_S / 2
    assert client.get(f"/p/{SLUG}").status_code == 404  # no later than LIVE_S after
    with engine.begin() as conn:
        conn.execute(text("UPDATE landing_pages SET published_version_id = :v"), {"v": ids["a"]})
    assert client.get(f"/p/{SLUG}").status_code == 404  # "not published" is remembered too
    now[0] += landing.LIVE_S
    assert client.get(f"/p/{SLUG}").status_code == 200


# --- digests of network and device, never the address ----------------------------------------


def _plain_hits(engine: Engine, needles: list[str]) -> list[str]:
    hits = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for col, value in row.items():
                    if value is None:
                        continue
                    if isinstance(value, bytes):
                        shown = value.decode("latin-1")
                    elif isinstance(value, dict | list):
                        shown = json.dumps(value)
                    else:
                        shown = str(value)
                    hits += [f"{table.name}.{col}: {n}" for n in needles if n in shown]
    return hits


def test_digests_are_stored_and_no_address_anywhere(engine: Engine) -> None:
    ids = _site(engine)
    from quanzi.acquisition import channels

    with session_scope(engine) as s:
        code = channels.create_code(
            s, ids["ws"], name="Poster", channel="poster", target_kind="link",
            target={"url": "https://example.com/"},
        ).code  # fmt: skip
    headers = {"user-agent": UA}
    with TestClient(create_app(engine), client=(IP, 1)) as direct:
        direct.get(f"/p/{SLUG}?c=poster", headers=headers)
        direct.post(f"/p/{SLUG}/lead", data=_form(), headers=headers)
        direct.get(f"/c/{code}?m=m:1z", headers=headers, follow_redirects=False)
        direct.get(f"/c/{code}?m=junk", headers=headers, follow_redirects=False)
    # Behind a trusted proxy (loopback by default) the client is the forwarded address...
    proxied = {"user-agent": UA, "x-forwarded-for": f"198.51.100.1, {IP}"}
    with TestClient(create_app(engine), client=("127.0.0.1", 1)) as proxy:
        proxy.get(f"/p/{SLUG}", headers=proxied)
    # ...and from any other peer the header is ignored.
    with TestClient(create_app(engine), client=("192.0.2.9", 1)) as spoof:
        spoof.get(f"/p/{SLUG}", headers={"user-agent": UA, "x-forwarded-for": IP})

    with session_scope(engine, read_only=True) as s:
        key = workspace_key(s, ids["ws"])
        net = key.blind_index("network", "203.0.113.0/24")
        device = key.blind_index("device", f"203.0.113.0/24|{UA}")
        visits = s.execute(
            select(LandingVisit.net_digest, LandingVisit.device_digest).order_by(LandingVisit.id)
        ).all()
        assert visits[:2] == [(net, device), (net, device)]
        assert visits[2][0] == key.blind_index("network", "192.0.2.0/24")
        [lead] = s.scalars(select(Lead)).all()
        assert (lead.net_digest, lead.device_digest) == (net, device)
        from quanzi.acquisition.models import ChannelVisit

        code_visits = s.execute(
            select(ChannelVisit.ref, ChannelVisit.net_digest, ChannelVisit.device_digest)
        ).all()
        assert sorted(code_visits, key=str) == sorted(
            [("m:1z", net, device), (None, net, device)], key=str
        )
    assert _plain_hits(engine, [IP, "203.0.113.", "192.0.2.9", "198.51.100"]) == []


def test_a_repeat_lead_takes_the_new_networks_digests(engine: Engine) -> None:
    ids = _site(engine)
    for peer in ("203.0.113.7", "2001:db8:1:2::5"):
        with TestClient(create_app(engine), client=(peer, 1)) as c:
            assert c.post(f"/p/{SLUG}/lead", data=_form()).status_code == 200
    with session_scope(engine, read_only=True) as s:
        [lead] = s.scalars(select(Lead)).all()
        key = workspace_key(s, ids["ws"])
    assert lead.submissions == 2
    assert lead.net_digest == key.blind_index("network", "2001:db8:1::/48")


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    _site(engine)
    monkeypatch.setenv("QUANZI_TRUSTED_PROXIES", "10.0.0.0/8")
    get_settings.cache_clear()
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, "default").id
    with TestClient(create_app(engine), client=("10.1.2.3", 1)) as c:
        c.post(f"/p/{SLUG}/lead", data=_form(), headers={"x-forwarded-for": f"{IP}, 10.9.9.9"})
    with TestClient(create_app(engine), client=("127.0.0.1", 1)) as c:  # no longer trusted
        c.post(f"/p/{SLUG}/lead", data=_form(phone="13912345678"), headers={"x-forwarded-for": IP})
    with session_scope(engine, read_only=True) as s:
        key = workspace_key(s, ws)
        nets = [lead.net_digest for lead in s.scalars(select(Lead).order_by(Lead.id))]
    assert nets == [
        key.blind_index("network", "203.0.113.0/24"),
        key.blind_index("network", "127.0.0.0/24"),
    ]


def test_rate_limits_count_per_address_behind_the_proxy(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _site(engine)
    monkeypatch.setattr(landing, "PER_IP", landing.SlidingWindow(2, 600))
    with TestClient(create_app(engine), client=("127.0.0.1", 1)) as proxy:

        def post(ip: str, phone: str) -> int:
            r = proxy.post(
                f"/p/{SLUG}/lead", data=_form(phone=phone), headers={"x-forwarded-for": ip}
            )
            return r.status_code

        assert [post(IP, "13800000001"), post(IP, "13800000002")] == [200, 200]
        assert post(IP, "13800000003") == 429
        assert post("198.51.100.1", "13800000003") == 200  # another visitor is not blocked
        # IPv6: one subscriber's /64 counts as one client.
        assert [post("2001:db8::1", "13800000004"), post("2001:db8::2", "13800000005")] == [
            200,
            200,
        ]
        assert post("2001:db8::ffff", "13800000006") == 429


def test_the_sliding_window_forgets_the_least_recent_keys() -> None:
    window = landing.SlidingWindow(limit=1, window_s=60, max_keys=3)
    assert all(window.hit(k, now=0) for k in "abc")
    assert not window.hit("a", now=1)  # a is now the most recent
    assert window.hit("d", now=2)  # b, the least recently hit, is forgotten
    assert window.hit("b", now=3) and not window.hit("a", now=3)


def test_network_of() -> None:
    assert network_of("203.0.113.7") == "203.0.113.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_of("::ffff:203.0.113.7") == "203.0.113.0/24"
    assert network_of("testclient") is None and network_of("") is None
    assert Visitor("2001:db8::1", None, "").rate_key == "2001:db8::/64"
    assert writers.FLUSH_S <= 0.2


# --- the bench keeps working (no timing asserted) ----------------------------------------------


@pytest.mark.slow
def test_the_landing_bench_runs_and_loses_no_acknowledged_lead(tmp_path: Any) -> None:
    """bench/landing.py for a second per phase: its table, and after the SIGKILL every
    acknowledged lead is in the database (what the bench checks at any length)."""
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench" / "landing.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--seconds", "2", "--connections", "4",
         "--lead-connections", "4", "--calls", "50", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for route in ("hello-world", "GET /p/<slug>", "GET /c/<code> → link", "POST /p/<slug>/lead"):
        assert f"| {route}" in out, out
    found = re.search(r"Leads: ([\d,]+) acknowledged .* missing (\d+);", out)
    assert found, out
    assert int(found[1].replace(",", "")) > 0 and found[2] == "0", out
