"""Personal data (phone, unionid, real name) is sealed at rest, searchable by digest, masked
for roles that may not see it, erasable (PIPL), and survives `quanzi rebuild` sealed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from community import Community, line
from snapshot import projections
from sqlalchemy import Engine, select, text

import quanzi.models  # noqa: F401  (every table in Base.metadata)
from quanzi.config import get_settings
from quanzi.core.events.models import EventRecord
from quanzi.core.events.projections import rebuild
from quanzi.core.events.service import ingest_lines
from quanzi.core.members import personal
from quanzi.core.members.models import Member
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.base import Base
from quanzi.db.engine import session_scope
from quanzi.kit.crypto import DecryptionFailed, WorkspaceKey, is_sealed, new_data_key

PHONE = "13812345678"
UNIONID = "oUnion_Zx9Qw7Er5Ty3"
REAL_NAME = "王晓明"
SECRETS = (PHONE, "12345678", UNIONID, REAL_NAME)


def _profile(eid: str, ts: str, member: str = "wm_1", **fields: Any) -> str:
    return line(id=eid, type="profile.updated", ts=ts, platform="wecom", member=member, **fields)


P1 = _profile(
    "p1",
    "2026-10-02T10:00:00+08:00",
    phone=PHONE,
    unionid=UNIONID,
    name=REAL_NAME,
    gender="female",
    city="杭州",
    attrs={"会员等级": "金卡", "kids": 2},
    extra_field="kept",
)


def _community(engine: Engine) -> Community:
    c = Community(engine)
    rep = c.ingest(
        [
            line(
                id="j1",
                type="member.joined",
                ts="2026-10-01T10:00:00+08:00",
                platform="wecom",
                group="g1",
                member="wm_1",
                name="小明妈妈",
            ),
            P1,
        ]
    )
    assert (rep.applied, rep.refused, rep.warnings) == (2, [], [])
    return c


def _plaintext_hits(engine: Engine) -> list[str]:
    """Every (table, column) of every table whose text holds a personal value."""
    needles = set(SECRETS) | {json.dumps(s)[1:-1] for s in SECRETS}  # \uXXXX forms too
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
                        shown = json.dumps(value) + json.dumps(value, ensure_ascii=False)
                    else:
                        shown = str(value)
                    hits += [f"{table.name}.{col}: {n}" for n in needles if n in shown]
    return hits


def _member(engine: Engine, key: str = "wm_1") -> Any:
    with engine.connect() as conn:
        return conn.execute(select(Member).where(Member.member_key == key)).one()


def _key(engine: Engine, ws: int) -> WorkspaceKey:
    with engine.connect() as conn:
        return workspace_key(conn, ws)


def _raw(engine: Engine, eid: str) -> dict[str, Any]:
    with engine.connect() as conn:
        raw = conn.execute(select(EventRecord.raw).where(EventRecord.event_id == eid)).scalar_one()
    return dict(json.loads(raw))


def test_no_table_holds_plain_personal_data(engine: Engine) -> None:
    c = _community(engine)
    assert _plaintext_hits(engine) == []
    m = _member(engine)
    profile = m.profile if isinstance(m.profile, dict) else json.loads(m.profile)
    for field in ("phone", "unionid", "name"):
        assert is_sealed(profile["p:" + field][0])
    assert profile["p:city"][0] == "杭州"
    assert profile["a:kids"][0] == 2
    # The real name is personal data, not the display name.
    assert m.name == "小明妈妈"
    raw = _raw(engine, "p1")
    assert raw["extra_field"] == "kept" and raw["city"] == "杭州"
    assert all(is_sealed(raw[f]) for f in ("phone", "unionid", "name"))
    assert personal.open_profile(_key(engine, c.ws_id), m.profile) == {
        "phone": PHONE,
        "unionid": UNIONID,
        "name": REAL_NAME,
        "gender": "female",
        "city": "杭州",
        "attrs.kids": "2",
        "attrs.会员等级": "金卡",
    }


def test_digests_follow_the_current_value_and_find_the_member(engine: Engine) -> None:
    c = _community(engine)
    key = _key(engine, c.ws_id)
    m = _member(engine)
    assert m.phone_digest == personal.phone_digest(key, "+86 138 1234 5678")
    assert m.unionid_digest == personal.unionid_digest(key, UNIONID)
    with engine.connect() as conn:
        found = conn.execute(
            select(Member.member_key).where(
                Member.workspace_id == c.ws_id,
                Member.phone_digest == personal.phone_digest(key, "138-1234-5678"),
            )
        ).all()
    assert found == [("wm_1",)]
    # A later phone wins, an earlier one arriving late does not.
    c.ingest([_profile("p3", "2026-10-05T10:00:00+08:00", phone="13900001111")])
    c.ingest([_profile("p2", "2026-10-03T10:00:00+08:00", phone="13700002222")])
    m = _member(engine)
    assert m.phone_digest == personal.phone_digest(key, "13900001111")
    assert m.unionid_digest == personal.unionid_digest(key, UNIONID)


def test_rebuild_gives_identical_members_and_log(engine: Engine) -> None:
    c = _community(engine)
    c.ingest([_profile("p2", "2026-10-01T09:00:00+08:00", phone="13700002222", name="旧名")])
    before = projections(engine, c.ws_id)
    digests = (_member(engine).phone_digest, _member(engine).unionid_digest)
    raw_before = _raw(engine, "p1")
    rebuild(engine, c.ws_id)
    assert projections(engine, c.ws_id) == before
    assert (_member(engine).phone_digest, _member(engine).unionid_digest) == digests
    assert _raw(engine, "p1") == raw_before
    assert _plaintext_hits(engine) == []


@pytest.mark.parametrize("parallel", [False, True])
def test_resent_profile_is_a_duplicate_and_a_changed_one_warns(
    engine: Engine, parallel: bool
) -> None:
    c = _community(engine)
    same = P1
    changed = _profile("p1", "2026-10-02T10:00:00+08:00", phone="13900001111")
    rep = ingest_lines(engine, c.ws_id, [same, changed], parallel=parallel, batch_lines=1)
    assert (rep.applied, rep.duplicates) == (0, 2)
    assert [n for n, _ in rep.warnings] == [2]
    # Within one input too: the first line of an id is stored, the rest compared with it.
    fresh = _profile("p9", "2026-10-09T10:00:00+08:00", phone=PHONE)
    rep = ingest_lines(engine, c.ws_id, [fresh, fresh, fresh.replace(PHONE, "13900001111")])
    assert (rep.applied, rep.duplicates, [n for n, _ in rep.warnings]) == (1, 2, [3])
    assert _plaintext_hits(engine) == []


def test_masked_unless_the_role_may_see(engine: Engine) -> None:
    c = _community(engine)
    key = _key(engine, c.ws_id)
    m = _member(engine)
    masked = personal.masked_profile(m.profile, key, reveal=False)
    assert masked["phone"] == "138****5678"
    assert masked["name"] == "王**"
    assert masked["unionid"] == "oUni****5Ty3"
    assert masked["city"] == "杭州"
    shown = personal.masked_profile(m.profile, key, reveal=True)
    assert (shown["phone"], shown["unionid"], shown["name"]) == (PHONE, UNIONID, REAL_NAME)
    # One stored value (an export row's), as each role sees it.
    sealed_phone = m.profile["p:phone"][0]
    assert personal.shown_value(key, "phone", sealed_phone, reveal=False) == "138****5678"
    assert personal.shown_value(key, "phone", sealed_phone, reveal=True) == PHONE
    # Written with spaces and a country code, still masked the same way.
    c.ingest([_profile("p2", "2026-10-03T10:00:00+08:00", phone="+86 138 1234 5678")])
    assert personal.masked_profile(_member(engine).profile, key, False)["phone"] == "138****5678"


def test_erasure_removes_everything_and_survives_rebuild(engine: Engine) -> None:
    c = _community(engine)
    other = _profile("q1", "2026-10-02T10:00:00+08:00", member="wm_2", phone="13900001111")
    c.ingest([other, _profile("p2", "2026-10-04T10:00:00+08:00", name=REAL_NAME, city="上海")])
    key = _key(engine, c.ws_id)
    mid = _member(engine).id
    with session_scope(engine) as s:
        assert personal.erase_personal_data(s, c.ws_id, mid) == 2

    def check() -> None:
        m = _member(engine)
        opened = personal.open_profile(key, m.profile)
        assert not {"phone", "unionid", "name"} & set(opened)
        assert opened["city"] == "上海" and opened["gender"] == "female"
        assert (m.phone_digest, m.unionid_digest) == (None, None)
        assert m.name == "小明妈妈"
        raw = _raw(engine, "p1")
        assert [raw[f] for f in ("phone", "unionid", "name")] == [personal.TOMBSTONE] * 3
        assert _member(engine, "wm_2").phone_digest == personal.phone_digest(key, "13900001111")

    check()
    before = projections(engine, c.ws_id)
    rebuild(engine, c.ws_id)
    check()
    assert projections(engine, c.ws_id) == before
    # Re-sending the original line changes nothing and is a plain duplicate.
    rep = c.ingest([_profile("p2", "2026-10-04T10:00:00+08:00", name=REAL_NAME, city="上海")])
    assert (rep.applied, rep.duplicates, rep.warnings) == (0, 1, [])
    check()
    # New personal data after the erasure is kept (sealed) again.
    c.ingest([_profile("p5", "2026-10-06T10:00:00+08:00", phone="13600003333")])
    assert personal.open_profile(key, _member(engine).profile)["phone"] == "13600003333"
    assert _plaintext_hits(engine) == []


def test_rebuild_seals_plain_data_left_by_an_older_version(engine: Engine) -> None:
    c = Community(engine)
    c.add("member.joined", "2026-10-01T10:00:00Z", group="g1", member="wm_1", name="小明妈妈")
    old = _profile("old1", "2026-10-02T10:00:00Z", phone=PHONE, unionid=UNIONID, name=REAL_NAME)
    plain_profile = {
        "p:phone": [PHONE, 1, "old1"],
        "p:unionid": [UNIONID, 1, "old1"],
        "p:name": [REAL_NAME, 1, "old1"],
    }
    with engine.begin() as conn:
        conn.execute(
            EventRecord.__table__.insert().values(
                workspace_id=c.ws_id,
                event_id="old1",
                type="profile.updated",
                platform="wecom",
                ts_us=1,
                raw=old,
                received_at_us=1,
            )
        )
        conn.execute(
            Member.__table__.update()
            .where(Member.member_key == "wm_1")
            .values(profile=plain_profile, name=REAL_NAME)
        )
    assert _plaintext_hits(engine) != []
    # A re-send of the plain logged line is a plain duplicate.
    rep = c.ingest([old])
    assert (rep.duplicates, rep.warnings) == (1, [])
    rebuild(engine, c.ws_id)
    assert _plaintext_hits(engine) == []
    key = _key(engine, c.ws_id)
    m = _member(engine)
    assert m.name == "小明妈妈"
    assert m.phone_digest == personal.phone_digest(key, PHONE)
    opened = personal.open_profile(key, m.profile)
    assert (opened["phone"], opened["unionid"], opened["name"]) == (PHONE, UNIONID, REAL_NAME)
    snap = projections(engine, c.ws_id)
    rebuild(engine, c.ws_id)  # the log is sealed now: the same bytes again
    assert projections(engine, c.ws_id) == snap


def test_a_wrong_secret_key_is_a_clear_error_not_a_crash(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = _community(engine)
    profile = _member(engine).profile
    # A value that does not open shows as a marker.
    stranger = WorkspaceKey(new_data_key())
    for reveal in (False, True):
        shown = personal.masked_profile(profile, stranger, reveal=reveal)
        assert shown["phone"] == shown["name"] == personal.UNREADABLE
        assert shown["city"] == "杭州"
    # The secret key changed: the workspace key does not unwrap, and says why.
    monkeypatch.setenv("QUANZI_SECRET_KEY", "not-the-secret-the-data-was-sealed-with")
    get_settings.cache_clear()
    with pytest.raises(DecryptionFailed, match="QUANZI_SECRET_KEY"):
        c.ingest([_profile("p7", "2026-10-07T10:00:00Z", phone="13900001111")])
    # Events without personal data are still ingested.
    rep = c.ingest(
        [
            line(
                id="m1",
                type="message.posted",
                ts=1790000000,
                platform="wecom",
                group="g1",
                member="wm_1",
            )
        ]
    )
    assert rep.applied == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 3
