"""The shared_device fraud signal: leads of one inviter's invitees from one device or network,
or a device hammering the inviter's poster; families, offices and kiosks stay unflagged."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from community import Community
from sqlalchemy import Engine, select

from quanzi.acquisition import fraud
from quanzi.acquisition.models import Lead
from quanzi.core.members.models import InviteFlag, Member
from quanzi.db.engine import session_scope
from quanzi.demo.fraud_leads import load_planted_acquisition
from quanzi.kit.clock import LocalCalendar, to_us
from quanzi.web.console.pages.invite_review import _explain
from quanzi.web.i18n import current_locale

CAL = LocalCalendar("Asia/Shanghai")
T0 = datetime.fromisoformat("2026-03-02T10:00:00+08:00")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Plant:
    """Joins through Community; leads and poster visits through the demo's loader (real Lead
    and ChannelVisit rows with keyed digests)."""

    def __init__(self, engine: Engine) -> None:
        self.c = Community(engine)
        self.leads: list[dict[str, str]] = []
        self.visits: list[dict[str, str]] = []
        self.c.add("member.joined", at(-3 * 24 * 60).isoformat(), group="g1", member="anchor")

    def invite(self, inviter: str, member: str, minute: float) -> None:
        if inviter not in self.known():
            self.c.add("member.joined", at(-2 * 24 * 60).isoformat(), group="g1", member=inviter)
        self.c.add(
            "member.joined",
            at(minute).isoformat(),
            group="g1",
            member=member,
            inviter=inviter,
            via="invite",
        )
        # They talk, so no sybil_burst; this is about devices only.
        self.c.add("message.posted", at(minute + 5).isoformat(), group="g1", member=member)

    def lead(self, member: str, minute: float, device: str, net: str) -> None:
        self.leads.append(
            {"member": member, "at": at(minute).isoformat(), "device": device, "net": net}
        )

    def scan(self, inviter: str, minute: float, device: str, net: str = "n-home") -> None:
        self.visits.append(
            {"inviter": inviter, "at": at(minute).isoformat(), "device": device, "net": net}
        )

    def known(self) -> set[str]:
        with session_scope(self.c.engine, read_only=True) as s:
            return set(s.scalars(select(Member.member_key)))

    def detect(self) -> dict[str, dict[str, object]]:
        """member key → the shared_device detail, for everyone flagged with it."""
        load_planted_acquisition(self.c.engine, self.c.ws_id, self.doc())
        self.leads, self.visits = [], []
        with session_scope(self.c.engine) as s:
            keys = dict(s.execute(select(Member.id, Member.member_key)).all())
            out = {}
            for sus in fraud.detect(s, self.c.ws_id, CAL, as_of_us=to_us(at(10 * 24 * 60))):
                for sig in sus.signals:
                    if sig["kind"] == "shared_device":
                        out[keys[sus.member_id]] = sig["detail"]
            return out

    def doc(self) -> dict[str, list[dict[str, str]]]:
        return {"leads": self.leads, "poster_visits": self.visits}


@pytest.fixture
def p(engine: Engine) -> Plant:
    return Plant(engine)


def test_one_phone_for_four_invitees_of_one_inviter_is_flagged_three_is_a_family(
    p: Plant,
) -> None:
    for k in range(4):  # a farm: 4 accounts from one phone within 3 hours
        p.invite("boss", f"f{k}", 40 * k)
        p.lead(f"f{k}", 40 * k - 2, "d-farm", "n-farm")
    for k in range(3):  # a family of three on mum's phone
        p.invite("mum", f"fam{k}", 10 * k)
        p.lead(f"fam{k}", 10 * k - 1, "d-home", "n-home")
    found = p.detect()
    assert set(found) == {"f0", "f1", "f2", "f3"}
    assert found["f0"] == {"via": "device", "invitees": 4, "span_min": 120, "window_h": 24}


def test_device_needs_one_inviter_and_one_day(p: Plant) -> None:
    for k in range(4):  # four from one phone, but two inviters (two each)
        p.invite("a" if k % 2 else "b", f"x{k}", 20 * k)
        p.lead(f"x{k}", 20 * k, "d-shared", "n-1")
    for k in range(4):  # one inviter, one phone, but 13 hours apart: never 4 within 24 h
        p.invite("slow", f"y{k}", 13 * 60 * k)
        p.lead(f"y{k}", 13 * 60 * k, "d-slow", "n-2")
    p.lead("anchor", 0, "d-shared", "n-1")  # a lead of a member nobody invited
    assert p.detect() == {}


def test_ten_phones_on_one_network_within_an_hour(p: Plant) -> None:
    for k in range(10):  # ten phones on one network, one inviter, within 45 minutes
        p.invite("net_boss", f"n{k}", 5 * k)
        p.lead(f"n{k}", 5 * k, f"d-n{k}", "n-farm")
    for k in range(12):  # an office: twelve colleagues' phones on one network over two days
        p.invite("colleague", f"o{k}", 4 * 60 * k)
        p.lead(f"o{k}", 4 * 60 * k, f"d-o{k}", "n-office")
    for k in range(9):  # nine within the hour is not enough
        p.invite("nine", f"q{k}", 3 * k)
        p.lead(f"q{k}", 3 * k, f"d-q{k}", "n-nine")
    found = p.detect()
    assert set(found) == {f"n{k}" for k in range(10)}
    assert found["n3"] == {"via": "network", "invitees": 10, "span_min": 45, "window_h": 1}


def test_a_phone_hammering_an_inviters_poster(p: Plant) -> None:
    for k in range(8):  # eight scans of "poster"'s code from one phone within 3.5 hours
        p.scan("poster", 30 * k, "d-scan")
    for k in range(2):
        p.invite("poster", f"p{k}", 60 + 30 * k)
        p.lead(f"p{k}", 60 + 30 * k, "d-scan", "n-home")
    for k in range(7):  # seven scans are not enough (a family scanning again and again)
        p.scan("grandpa", 20 * k, "d-fam")
    for k in range(3):
        p.invite("grandpa", f"g{k}", 10 * k)
        p.lead(f"g{k}", 10 * k, "d-fam", "n-home")
    for k in range(9):  # many scans, but only one invitee's lead came from that phone
        p.scan("solo", 10 * k, "d-solo")
    p.invite("solo", "s0", 30)
    p.lead("s0", 30, "d-solo", "n-x")
    found = p.detect()
    assert set(found) == {"p0", "p1"}
    assert found["p1"] == {
        "via": "poster",
        "visits": 8,
        "invitees": 2,
        "span_min": 210,
        "window_h": 24,
    }


def test_staff_are_never_suspects_and_the_detail_is_explained_in_both_languages(
    p: Plant,
) -> None:
    for k in range(4):
        p.invite("boss", f"f{k}", 40 * k)
        p.lead(f"f{k}", 40 * k, "d-farm", "n-farm")
    p.c.add("member.joined", at(-1).isoformat(), group="g1", member="staff1", is_staff=True)
    for k in range(4):  # a staff member registering customers on the shop's tablet
        p.invite("staff1", f"c{k}", 10 * k + 1)
        p.lead(f"c{k}", 10 * k + 1, "d-tablet", "n-shop")
    found = p.detect()
    assert set(found) == {"f0", "f1", "f2", "f3"}
    sig = {"kind": "shared_device", "detail": found["f0"]}
    token = current_locale.set("en")
    try:
        assert _explain(sig) == (
            "One of 4 invitees of the same inviter whose leads came from one device "
            "within 120 minutes."
        )
        net = {
            "kind": "shared_device",
            "detail": {"via": "network", "invitees": 11, "span_min": 50},
        }
        assert "one network within 50 minutes" in _explain(net)
        poster = {
            "kind": "shared_device",
            "detail": {"via": "poster", "visits": 9, "invitees": 2, "span_min": 30},
        }
        assert _explain(poster).startswith("The inviter's poster was opened 9 times")
    finally:
        current_locale.reset(token)
    assert _explain(sig) == "同一邀请人的 4 个被邀请人在 120 分钟内从同一设备提交了线索，此为其一。"


def test_strict_mode_flags_shared_device_suspects_at_once(p: Plant, engine: Engine) -> None:
    for k in range(5):
        p.invite("boss", f"f{k}", 30 * k)
        p.lead(f"f{k}", 30 * k, "d-farm", "n-farm")
    p.detect()
    with session_scope(engine) as s:
        fraud.set_review_mode(s, p.c.ws_id, "strict")
        res = fraud.refresh_suspects(s, p.c.ws_id, CAL, as_of_us=to_us(at(3 * 24 * 60)))
    assert (res.found, res.added) == (5, 5)
    with session_scope(engine, read_only=True) as s:
        flags = dict(
            s.execute(
                select(Member.member_key, InviteFlag.reason).join(
                    Member, Member.id == InviteFlag.member_id
                )
            ).all()
        )
        digests = set(s.scalars(select(Lead.device_digest)))
    assert flags == {f"f{k}": "auto: shared_device" for k in range(5)}
    assert len(digests) == 1 and "d-farm" not in digests  # a keyed digest, never the label
