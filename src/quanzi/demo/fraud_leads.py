"""Storing the landing-page leads and poster visits a --fraud demo community planted.

Leads and channel visits are not events (they come from the public pages, not from a platform),
so `plant_fraud` returns them beside the events and this module writes them after the ingest:
each lead is a real Lead row (phone and name sealed with the workspace key, consent stored,
linked to its member by `state`), each visit a ChannelVisit through a "demo poster" channel code
with the inviter's member state in `ref`. Device and network labels become keyed digests, as
the public endpoints store them. Idempotent: a lead whose phone is already stored and a code
that already has visits are skipped, so a second `quanzi demo --fraud` changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, func, select

from quanzi.acquisition import channels
from quanzi.acquisition.models import ChannelCode, ChannelVisit, Lead
from quanzi.acquisition.states import member_state
from quanzi.core.members.models import Member
from quanzi.core.workspaces.models import Workspace
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, to_us
from quanzi.kit.crypto import WorkspaceKey

POSTER_CHANNEL = "demo_poster"
CONSENT = "我同意禾木按《个人信息保护说明》使用我的手机号联系我（演示数据）。"


def _phone(member: str) -> str:
    """A stable, distinct CN mobile number per planted lead's member."""
    n = int.from_bytes(hashlib.blake2b(member.encode(), digest_size=8).digest(), "big")
    return f"+86139{n % 100_000_000:08d}"


def _digest(key: WorkspaceKey, kind: str, label: str) -> str:
    return key.blind_index(kind, label)


def load_planted_acquisition(engine: Engine, ws_id: int, doc: dict[str, Any]) -> tuple[int, int]:
    """Store the planted leads and poster visits; (leads added, visits added)."""
    with session_scope(engine) as s:
        key = workspace_key(s, ws_id)
        tz = s.scalar(select(Workspace.timezone).where(Workspace.id == ws_id)) or "Asia/Shanghai"
        cal = LocalCalendar(tz)
        ids = {
            str(k): int(i)
            for k, i in s.execute(
                select(Member.member_key, Member.id).where(Member.workspace_id == ws_id)
            )
        }
        have = set(s.scalars(select(Lead.phone_digest).where(Lead.workspace_id == ws_id)))
        leads = 0
        for row in doc.get("leads", []):
            member_id = ids.get(row["member"])
            phone = _phone(row["member"])
            digest = key.blind_index("phone", phone)
            if member_id is None or digest in have:
                continue
            have.add(digest)
            at = to_us(datetime.fromisoformat(row["at"]))
            s.add(
                Lead(
                    workspace_id=ws_id,
                    channel="referral",
                    phone_digest=digest,
                    phone_sealed=key.seal("phone", phone),
                    name_sealed=None,
                    consent_text=CONSENT,
                    consent_version=1,
                    submissions=1,
                    member_id=member_id,
                    linked_by="state",
                    linked_at_us=at,
                    net_digest=_digest(key, "net", row["net"]),
                    device_digest=_digest(key, "device", row["device"]),
                    created_at_us=at,
                    updated_at_us=at,
                )
            )
            leads += 1
        code = s.scalar(
            select(ChannelCode).where(
                ChannelCode.workspace_id == ws_id, ChannelCode.channel == POSTER_CHANNEL
            )
        )
        if code is None:
            code = channels.create_code(
                s,
                ws_id,
                name="演示：成员海报",
                channel=POSTER_CHANNEL,
                target_kind="link",
                target={"url": "https://example.com/demo-poster"},
            )
            s.flush()
        done = s.scalar(select(func.count()).where(ChannelVisit.code_id == code.id))
        visits = 0
        for row in [] if done else doc.get("poster_visits", []):
            inviter = ids.get(row["inviter"])
            if inviter is None:
                continue
            at = to_us(datetime.fromisoformat(row["at"]))
            s.add(
                ChannelVisit(
                    workspace_id=ws_id,
                    code_id=code.id,
                    at_us=at,
                    day=cal.day_of(at),
                    kind="scan",
                    ua_class="wechat",
                    ref=member_state(inviter),
                    net_digest=_digest(key, "net", row["net"]),
                    device_digest=_digest(key, "device", row["device"]),
                )
            )
            visits += 1
    return leads, visits


def load_planted_file(engine: Engine, ws_id: int, path: Path) -> tuple[int, int]:
    """`load_planted_acquisition` of a file written by `write_fraud_events`."""
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    return load_planted_acquisition(engine, ws_id, doc)
