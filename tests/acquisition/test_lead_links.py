"""Leads linked to members: by phone (the earliest joined member of a shared phone), at once
when the member exists, after an ingest that brought phones (its queued job), idempotently;
phone links dropped when the member's phone is erased (and moved to the next member with the
phone); state links kept; the first link wins."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from quanzi.acquisition import landing, lead_jobs
from quanzi.acquisition.lead_links import link_by_state, link_leads
from quanzi.acquisition.models import Lead
from quanzi.config import get_settings
from quanzi.core.events.service import ingest_lines
from quanzi.core.members.models import Member
from quanzi.core.members.personal import erase_personal_data
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.jobs import huey, reset_backend
from quanzi.jobs.tasks import PHONE_FOLLOWUPS
from quanzi.web.app import create_app

PHONE = "13812345678"
OTHER = "13912345678"
T0 = 1_790_000_000  # 2026-09-21
CONTENT: dict[str, Any] = {
    "headline": "育儿资料包免费领",
    "consent_text": "我同意按《隐私政策》使用我的手机号联系我（v1）",
}


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(landing, "PER_IP", landing.SlidingWindow(1000, 600))
    monkeypatch.setattr(landing, "PER_PHONE", landing.SlidingWindow(1000, 3600))
    if hasattr(landing, "_PUBLISHED"):  # published versions cached by id: ids repeat across tests
        monkeypatch.setattr(landing, "_PUBLISHED", {})
    reset_backend()
    yield
    huey.flush()
    reset_backend()


def workspace(engine: Engine, name: str = "default") -> int:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, name).id
        page = landing.create_page(s, ws_id, "资料包", CONTENT, slug=f"pack-{name}")
        landing.publish(s, ws_id, page.id, None)
    return ws_id


def submit(client: TestClient, phone: str, name: str = "default") -> None:
    r = client.post(f"/p/pack-{name}/lead?c=xhs_note", data={"phone": phone, "consent": "1"})
    assert r.status_code == 200, r.text


def ingest(engine: Engine, ws_id: int, *events: dict[str, Any]) -> int:
    lines = [orjson.dumps({"platform": "wecom", **e}) for e in events]
    report = ingest_lines(engine, ws_id, lines)
    assert not report.refused, report.refused
    return report.phones


def joined(member: str, ts: int) -> dict[str, Any]:
    return {"id": f"j-{member}-{ts}", "type": "member.joined", "ts": ts, "group": "g1",
            "member": member}  # fmt: skip


def phone_of(member: str, phone: str, ts: int = T0) -> dict[str, Any]:
    return {"id": f"p-{member}-{phone}", "type": "profile.updated", "ts": ts, "member": member,
            "phone": phone}  # fmt: skip


def member_id(engine: Engine, ws_id: int, key: str) -> int:
    with session_scope(engine, read_only=True) as s:
        found = s.scalar(
            select(Member.id).where(Member.workspace_id == ws_id, Member.member_key == key)
        )
    assert found is not None
    return found


def links(engine: Engine, ws_id: int) -> list[tuple[int | None, str | None]]:
    with session_scope(engine, read_only=True) as s:
        return [
            (r.member_id, r.linked_by)
            for r in s.execute(
                select(Lead.member_id, Lead.linked_by)
                .where(Lead.workspace_id == ws_id)
                .order_by(Lead.id)
            )
        ]


def relink(engine: Engine, ws_id: int) -> int:
    with session_scope(engine) as s:
        return link_leads(s, ws_id)


def test_a_shared_phone_goes_to_the_earliest_joined_member_and_follows_erasure(
    engine: Engine,
) -> None:
    ws_id = workspace(engine)
    # Three members with one phone, made in this order (ids c < a < b): c never joined, a
    # joined after b.
    ingest(engine, ws_id, phone_of("wm_c", PHONE))
    ingest(engine, ws_id, joined("wm_a", T0 + 3600), phone_of("wm_a", PHONE))
    ingest(engine, ws_id, joined("wm_b", T0), phone_of("wm_b", PHONE))
    a, b, c = (member_id(engine, ws_id, k) for k in ("wm_a", "wm_b", "wm_c"))
    assert c < a < b
    with TestClient(create_app(engine)) as client:
        submit(client, PHONE)  # linked at once: the members are there already
        submit(client, OTHER)  # nobody has this phone
    assert links(engine, ws_id) == [(b, "phone"), (None, None)]
    with session_scope(engine, read_only=True) as s:
        first = s.scalars(select(Lead).order_by(Lead.id)).first()
        assert first is not None and first.linked_at_us is not None
    assert relink(engine, ws_id) == 0  # idempotent: nothing moves
    assert links(engine, ws_id) == [(b, "phone"), (None, None)]

    # PIPL erasure of b clears its phone: the link goes, and the lead goes to a, then to c.
    with session_scope(engine) as s:
        erase_personal_data(s, ws_id, b)
    assert relink(engine, ws_id) == 1
    assert links(engine, ws_id) == [(a, "phone"), (None, None)]
    with session_scope(engine) as s:
        erase_personal_data(s, ws_id, a)
    assert relink(engine, ws_id) == 1
    assert links(engine, ws_id) == [(c, "phone"), (None, None)]
    with session_scope(engine) as s:
        erase_personal_data(s, ws_id, c)
    assert relink(engine, ws_id) == 0
    assert links(engine, ws_id) == [(None, None), (None, None)]


def test_an_ingest_with_phones_queues_the_linking_and_the_job_links(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_id = workspace(engine)
    with TestClient(create_app(engine)) as client:
        submit(client, PHONE)
    assert [t.name for t in huey.pending()] == []
    # An ingest without a phone queues nothing; one with phones queues one job per ingest.
    assert ingest(engine, ws_id, joined("wm_a", T0)) == 0
    assert [t.name for t in huey.pending()] == []
    assert ingest(engine, ws_id, phone_of("wm_a", PHONE), phone_of("wm_z", OTHER)) == 2
    assert [(t.name, tuple(t.args)) for t in huey.pending()] == [("new_phones", (ws_id,))]
    assert links(engine, ws_id) == [(None, None)]  # not inside the ingest: after it

    monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    assert lead_jobs.link_workspace_leads in PHONE_FOLLOWUPS  # registered by lead_jobs
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
    assert links(engine, ws_id) == [(member_id(engine, ws_id, "wm_a"), "phone")]
    # A re-sent ingest (duplicates) queues nothing: no new phone arrived.
    assert ingest(engine, ws_id, phone_of("wm_a", PHONE)) == 0
    assert list(huey.pending()) == []


def test_the_periodic_pass_links_every_workspace_and_only_within_it(engine: Engine) -> None:
    one, two = workspace(engine, "one"), workspace(engine, "two")
    with TestClient(create_app(engine)) as client:
        submit(client, PHONE, "one")
        submit(client, PHONE, "two")
    ingest(engine, one, joined("wm_a", T0), phone_of("wm_a", PHONE))
    # The same phone in workspace two belongs to nobody there: its lead stays unlinked.
    assert lead_jobs.link_all_leads(engine) == {one: 1, two: 0}
    assert links(engine, one) == [(member_id(engine, one, "wm_a"), "phone")]
    assert links(engine, two) == [(None, None)]
    assert lead_jobs.link_all_leads(engine) == {one: 0, two: 0}


def test_state_links_stay_and_the_first_link_wins(engine: Engine) -> None:
    ws_id = workspace(engine)
    ingest(engine, ws_id, joined("wm_a", T0), phone_of("wm_a", PHONE), joined("wm_s", T0 + 9))
    with TestClient(create_app(engine)) as client:
        submit(client, PHONE)  # linked by phone to wm_a at once
        submit(client, OTHER)
    with session_scope(engine, read_only=True) as s:
        first, second = s.scalars(select(Lead.id).order_by(Lead.id)).all()
    a, st = member_id(engine, ws_id, "wm_a"), member_id(engine, ws_id, "wm_s")
    with session_scope(engine) as s:
        # wm_s came through both leads' personal codes; wm_nobody is not a member; an unknown
        # lead and another platform's key are ignored.
        pairs = [(first, "wm_s"), (second, "wm_s"), (second, "wm_nobody"), (10**9, "wm_s")]
        assert link_by_state(s, ws_id, "wecom", pairs) == 1
        assert link_by_state(s, ws_id, "telegram", [(second, "wm_a")]) == 0
    assert links(engine, ws_id) == [(a, "phone"), (st, "state")]
    # The state-linked member's phone changing or being erased does not undo a state link;
    # the phone-linked one does.
    with session_scope(engine) as s:
        erase_personal_data(s, ws_id, st)
        erase_personal_data(s, ws_id, a)
    relink(engine, ws_id)
    assert links(engine, ws_id) == [(None, None), (st, "state")]
    # Another member takes the phone later: the lead links to them.
    ingest(engine, ws_id, joined("wm_n", T0 + 99), phone_of("wm_n", "+86 138-1234-5678"))
    assert relink(engine, ws_id) == 1
    assert links(engine, ws_id)[0] == (member_id(engine, ws_id, "wm_n"), "phone")
