"""Landing-page figures: Wilson and Newcombe intervals against the published worked examples,
the A/B verdicts, and the funnel view → lead → contact → join, per version, per channel and
per day on a small hand-made data set (local days in the workspace's time zone)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from quanzi.acquisition import landing
from quanzi.acquisition import landing_stats as stats
from quanzi.acquisition.models import LandingVisit, Lead
from quanzi.core.members.models import ContactEvent, Member
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, day_number, to_us, zone
from quanzi.kit.errors import InvalidParameter

TZ = "Asia/Shanghai"
CAL = LocalCalendar(TZ)
CONTENT: dict[str, Any] = {
    "headline": "育儿资料包",
    "consent_text": "我同意运营方联系我（隐私政策 v1）",
}


# --- intervals: Newcombe (1998), Statistics in Medicine 17, 857-872 and 873-890 ---------------


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # "Two-sided confidence intervals for the single proportion", Table I, method 3 (score).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_matches_newcombes_table(x: int, n: int, low: float, high: float) -> None:
    ci = stats.wilson(x, n)
    assert (round(ci.low, 4), round(ci.high, 4)) == (low, high)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        # "Interval estimation for the difference between independent proportions",
        # Table II, method 10 (hybrid score), examples (a)-(h).
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0),
        (10, 10, 0, 10, 0.6075, 1.0),
    ],
)
def test_newcombe_matches_his_table(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    ci = stats.newcombe_difference(x1, n1, x2, n2)
    assert (round(ci.low, 4), round(ci.high, 4)) == (low, high)


def test_interval_edges() -> None:
    assert stats.wilson(0, 0) == stats.Interval(0.0, 1.0)
    with pytest.raises(InvalidParameter):
        stats.wilson(5, 3)
    # 10% vs 12%: the textbook 3,841 per group (two-sided 5%, 80% power).
    assert stats.sample_size_per_variant(0.10, 0.12) == 3841
    assert stats.sample_size_per_variant(0.1, 0.1) is None


def _version(variant: str, views: int, leads: int, number: int) -> stats.VersionFigures:
    return stats.VersionFigures(number, number, variant, None, 0, True, views, leads)


def test_ab_verdicts() -> None:
    def verdict(a: tuple[int, int], b: tuple[int, int]) -> stats.ABResult:
        result = stats.ab_result([_version("B", *b, 2), _version("A", *a, 1)])
        assert result is not None
        return result

    better = verdict((1000, 50), (1000, 100))
    assert better.verdict == "b_better" and better.difference == pytest.approx(0.05)
    assert better.interval is not None and better.interval.low > 0
    assert verdict((1000, 100), (1000, 50)).verdict == "a_better"
    unclear = verdict((1000, 50), (1000, 55))
    assert unclear.verdict == "unclear" and unclear.interval is not None
    assert unclear.interval.contains(0.0)
    # 5% vs 5.5% needs about 31,000 per variant; 1,000 have been seen.
    assert unclear.views_needed is not None and 29_000 < unclear.views_needed < 33_000
    same = verdict((500, 25), (500, 25))
    assert same.verdict == "unclear" and same.views_needed is None
    early = verdict((40, 1), (40, 8))
    assert early.verdict == "too_early" and early.views_needed is not None
    assert early.views_needed >= stats.MIN_VIEWS_PER_VARIANT - 40
    assert stats.ab_result([_version("A", 10, 1, 1)]) is None


# --- the funnel on hand-made data -------------------------------------------------------------


def _at(text: str) -> int:
    return to_us(datetime.fromisoformat(text).replace(tzinfo=zone(TZ)))


def _day(text: str) -> int:
    return day_number(datetime.fromisoformat(text).date())


def _community(engine: Engine) -> dict[str, int]:
    """Page P (versions A1, B2) and page Q; visits, leads and members on 2026-11-01..03.

    Page P, channel flyer: 6 views (4 on v1, 2 on v2), leads L1 (v1, linked to a member who
    added staff and joined), L2 (v2, linked to a member with only a contact.added event), L3
    (v1, linked to a member who joined only), L4 (v1, not linked).
    Page P, no channel: 2 views, lead L5 (linked to a member who did neither).
    Page P, douyin: 1 view on 11-03, lead L6 created 2026-11-03 23:30 local (in range) and
    lead L7 created 2026-11-04 00:10 local (out of range).
    Page Q: 3 views and a lead, never counted for P.
    """
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, "default").id
        p = landing.create_page(s, ws, "P", CONTENT, slug="page-p")
        q = landing.create_page(s, ws, "Q", CONTENT, slug="page-q")
        v1 = landing.publish(s, ws, p.id, "o@x").id
        landing.save_draft(s, ws, p.id, {**CONTENT, "headline": "B"}, "B")
        v2 = landing.publish(s, ws, p.id, "o@x", "B").id
        vq = landing.publish(s, ws, q.id, "o@x").id

        def visit(page: int, version: int, channel: str | None, when: str) -> None:
            s.add(
                LandingVisit(
                    workspace_id=ws,
                    page_id=page,
                    version_id=version,
                    channel=channel,
                    ua_class="ios",
                    at_us=_at(when),
                    day=CAL.day_of(_at(when)),
                )
            )

        for when in (
            "2026-11-01T10:00",
            "2026-11-01T11:00",
            "2026-11-02T10:00",
            "2026-11-02T12:00",
        ):
            visit(p.id, v1, "flyer", when)
        visit(p.id, v2, "flyer", "2026-11-01T12:00")
        visit(p.id, v2, "flyer", "2026-11-02T09:00")
        visit(p.id, v1, None, "2026-11-02T13:00")
        visit(p.id, v1, None, "2026-11-03T08:00")
        visit(p.id, v1, "douyin", "2026-11-03T23:50")
        for when in ("2026-11-01T10:00", "2026-11-02T10:00", "2026-11-03T10:00"):
            visit(q.id, vq, "flyer", when)

        def member(key: str, contact: bool = False, join: bool = False) -> int:
            m = Member(
                workspace_id=ws,
                platform="wecom",
                member_key=key,
                first_contact_us=_at("2026-11-02T15:00") if contact else None,
                first_join_us=_at("2026-11-02T16:00") if join else None,
            )
            s.add(m)
            s.flush()
            return m.id

        m1, m2 = member("m1", contact=True, join=True), member("m2")
        m3, m5 = member("m3", join=True), member("m5")
        s.add(
            ContactEvent(
                workspace_id=ws,
                event_id="ev-c2",
                member_id=m2,
                staff_key="staff1",
                kind="added",
                ts_us=_at("2026-11-02T15:00"),
            )
        )
        n = iter(range(100))

        def lead(page: int, version: int, channel: str | None, when: str, mid: int | None) -> None:
            s.add(
                Lead(
                    workspace_id=ws,
                    page_id=page,
                    version_id=version,
                    channel=channel,
                    phone_digest=f"digest-{next(n)}",
                    phone_sealed="x",
                    consent_text=CONTENT["consent_text"],
                    consent_version=1,
                    member_id=mid,
                    linked_by="phone" if mid else None,
                    created_at_us=_at(when),
                    updated_at_us=_at(when),
                )
            )

        lead(p.id, v1, "flyer", "2026-11-01T10:05", m1)
        lead(p.id, v2, "flyer", "2026-11-01T12:05", m2)
        lead(p.id, v1, "flyer", "2026-11-02T10:05", m3)
        lead(p.id, v1, "flyer", "2026-11-02T12:05", None)
        lead(p.id, v1, None, "2026-11-02T13:05", m5)
        lead(p.id, v1, "douyin", "2026-11-03T23:30", None)
        lead(p.id, v1, "douyin", "2026-11-04T00:10", None)
        lead(q.id, vq, "flyer", "2026-11-01T10:05", m1)
        return {"ws": ws, "p": p.id, "q": q.id, "v1": v1, "v2": v2}


def _counts(steps: list[stats.FunnelStep]) -> list[int]:
    return [st.count for st in steps]


def test_the_funnel_counts_match_the_hand_made_data(engine: Engine) -> None:
    ids = _community(engine)
    first, last = _day("2026-11-01"), _day("2026-11-03")
    with session_scope(engine, read_only=True) as s:
        steps = stats.funnel(s, ids["ws"], CAL, first, last, page_id=ids["p"])
        # views 9, leads L1-L6 (L7 is the next local day), contact L1 L2, join L1 L3.
        assert _counts(steps) == [9, 6, 2, 2]
        assert [st.rate for st in steps] == [None, pytest.approx(6 / 9), 2 / 6, 2 / 6]
        assert [st.base for st in steps] == [None, "view", "lead", "lead"]
        flyer = stats.funnel(s, ids["ws"], CAL, first, last, page_id=ids["p"], channel="flyer")
        assert _counts(flyer) == [6, 4, 2, 2]
        by_channel = {
            cf.channel: _counts(cf.steps)
            for cf in stats.funnel_by_channel(s, ids["ws"], CAL, first, last, page_id=ids["p"])
        }
        assert by_channel == {"flyer": [6, 4, 2, 2], None: [2, 1, 0, 0], "douyin": [1, 1, 0, 0]}
        # The whole workspace adds page Q: 3 views, a lead linked to m1 (contact and join).
        assert _counts(stats.funnel(s, ids["ws"], CAL, first, last)) == [12, 7, 3, 3]
        # One day only: 2026-11-02.
        day2 = _day("2026-11-02")
        assert _counts(stats.funnel(s, ids["ws"], CAL, day2, day2, page_id=ids["p"])) == [
            4,
            3,
            0,
            1,
        ]
        # Including 2026-11-04 brings L7 in.
        assert stats.funnel(s, ids["ws"], CAL, first, last + 1, page_id=ids["p"])[1].count == 7
        with pytest.raises(InvalidParameter, match="before its start"):
            stats.funnel(s, ids["ws"], CAL, last, first)


def test_per_day_per_version_and_per_page(engine: Engine) -> None:
    ids = _community(engine)
    first, last = _day("2026-11-01"), _day("2026-11-03")
    with session_scope(engine, read_only=True) as s:
        days = stats.daily(s, ids["ws"], CAL, first, last, page_id=ids["p"])
        assert days == [(first, 3, 2), (first + 1, 4, 3), (last, 2, 1)]
        page = landing.page_of(s, ids["ws"], ids["p"])
        versions = {v.version: v for v in stats.version_figures(s, ids["ws"], page)}
        assert (versions[1].views, versions[1].leads, versions[1].variant) == (7, 6, "A")
        assert (versions[2].views, versions[2].leads, versions[2].variant) == (2, 1, "B")
        assert versions[1].live and versions[2].live
        ab = stats.ab_result(list(versions.values()))
        assert ab is not None and ab.verdict == "too_early"
        assert ab.difference == pytest.approx(1 / 2 - 6 / 7)
        rows = {r.slug: r for r in stats.pages_overview(s, ids["ws"])}
        assert (rows["page-p"].views, rows["page-p"].leads) == (9, 7)
        assert rows["page-p"].status == "published" and rows["page-p"].live_b_version == 2
        assert (rows["page-q"].views, rows["page-q"].leads) == (3, 1)
        assert stats.channels_seen(s, ids["ws"], ids["p"]) == ["douyin", "flyer"]
