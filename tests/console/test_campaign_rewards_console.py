"""Rewards in the console: each kind created, a coupon pool pasted and uploaded (duplicates and
a header skipped), bad input shown beside its field with nothing stored; per campaign the
claims with the fulfilment of a physical gift (pending → shipped → delivered, revoke), its
sealed address masked and revealed by an audited POST, and the audited shipping list."""

from __future__ import annotations

import html
import re
from typing import Any

from consolekit import LoginAs, Team
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from quanzi.campaigns import rewards, service
from quanzi.campaigns.models import Reward, RewardClaim
from quanzi.core.members.models import Member
from quanzi.db.engine import session_scope
from quanzi.kit.clock import now_us
from quanzi.team.models import AuditEntry

ADDRESS = {
    "name": "王小花",
    "phone": "13812345678",
    "region": "浙江省杭州市西湖区",
    "detail": "文三路 100 号 5 幢",
}


def _post(client: TestClient, to: str, upload: Any = None, /, **data: str) -> Any:
    data["csrf_token"] = client.csrf  # type: ignore[attr-defined]
    return client.post(to, data=data, files=upload, follow_redirects=False)


def _rewards(engine: Engine) -> dict[str, Reward]:
    with session_scope(engine, read_only=True) as s:
        found = {r.name: r for r in s.scalars(select(Reward))}
        for r in found.values():
            s.expunge(r)
        return found


def _audit(engine: Engine, action: str) -> list[dict[str, Any]]:
    with session_scope(engine, read_only=True) as s:
        return [
            a.detail or {} for a in s.scalars(select(AuditEntry).where(AuditEntry.action == action))
        ]


def _error(page: str, field: str) -> str:
    m = re.search(rf'<p class="field-error" id="err-{field}"[^>]*>(.*?)</p>', page, re.S)
    assert m, f"no error beside {field}"
    return html.unescape(m.group(1))


def test_rewards_of_every_kind_and_a_code_pool(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    url = "/w/default/rewards/create"
    # A CSV as Excel in Chinese saves it (GB18030), with a header and a second column.
    pool = "券码,批次\nB1,第一批\nB2,第一批\nA1,重复\n".encode("gb18030")
    upload = {"codes_file": ("codes.csv", pool, "text/csv")}
    res = _post(owner, url, upload, name="满减券", kind="coupon_code", unit_cost="2",
                value="10", codes="A1\nA2\n\nA2\nA3")  # fmt: skip
    assert res.status_code == 303, res.text[-2000:]
    made = [
        dict(name="保温杯", kind="physical", unit_cost="35.5", stock="10", sku="CUP-1"),
        dict(name="月卡", kind="membership_days", unit_cost="10", days="30"),
        dict(name="积分", kind="points", unit_cost="0.5", points="200"),
        dict(name="电子书", kind="content_link", unit_cost="0", url="https://example.com/b"),
    ]
    for form in made:
        assert _post(owner, url, **form).status_code == 303, form
    found = _rewards(engine)
    coupon = found["满减券"]
    assert (coupon.stock, coupon.unit_cost_fen, coupon.config) == (5, 200, {"value_fen": 1000})
    cup = found["保温杯"]
    assert (cup.kind, cup.stock, cup.unit_cost_fen, cup.config) == ("physical", 10, 3550,
                                                                    {"sku": "CUP-1"})  # fmt: skip
    assert found["月卡"].config == {"days": 30} and found["积分"].config == {"points": 200}
    assert found["电子书"].stock is None
    # Grow the pool: the code already there is skipped.
    res = _post(owner, f"/w/default/rewards/{coupon.id}/codes", codes="C1\nA1")
    assert res.status_code == 303
    assert _rewards(engine)["满减券"].stock == 6
    assert _audit(engine, "reward.created")[0]["codes"] == 5
    assert _audit(engine, "reward.codes_added") == [{"id": coupon.id, "given": 2, "added": 1}]
    page = owner.get("/w/default/rewards").text
    row = re.search(rf'<tr data-reward="{coupon.id}">(.*?)</tr>', page, re.S)
    assert row is not None and re.search(r"data-left>6<", row.group(1))
    # Codes go to a coupon pool only.
    res = _post(owner, f"/w/default/rewards/{cup.id}/codes", codes="X1")
    assert res.status_code == 400 and "不是券码奖励" in res.text
    # Switched off, and on again.
    assert _post(owner, f"/w/default/rewards/{cup.id}/active", active="0").status_code == 303
    assert not _rewards(engine)["保温杯"].active


def test_bad_reward_input_is_shown_and_nothing_is_stored(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    url = "/w/default/rewards/create"
    cases = [
        (dict(name="保温杯", kind="physical", unit_cost="35"), "stock", "实物奖品必须填写库存"),
        (dict(name="书", kind="content_link", url="ftp://x.example"), "url", "内容链接"),
        (dict(name="券", kind="coupon_code", codes="A B"), "codes", "不能有空格"),
        (dict(name="卡", kind="membership_days", days="0"), "days", "不能小于 1"),
        (dict(name="杯", kind="physical", stock="ten"), "stock", "不是整数"),
        (dict(name="杯", kind="physical", stock="1", unit_cost="1.234"), "unit_cost", "两位小数"),
        (dict(name="", kind="points", points="5"), "name", "1-100"),
    ]
    for form, field, words in cases:
        res = _post(owner, url, **form)
        assert res.status_code == 400, form
        assert words in _error(res.text, field), form
        assert f'value="{form["name"]}"' in res.text  # what they typed is kept
    assert _rewards(engine) == {}
    analyst = login_as("analyst")
    assert _post(analyst, url, name="x", kind="points", points="1").status_code == 403
    page = analyst.get("/w/default/rewards")
    assert page.status_code == 200 and 'data-testid="new-reward"' not in page.text
    assert _rewards(engine) == {}


def _claims(engine: Engine) -> tuple[int, int, int]:
    """A live 任务宝 whose participant m1 gave an address, holding a physical gift (pending)
    and an e-book (granted): (campaign, gift claim, e-book claim)."""
    with session_scope(engine) as s:
        gift = rewards.create_reward(
            s, 1, name="保温杯", kind="physical", unit_cost_fen=3500, stock=10, config={}
        )
        book = rewards.create_reward(
            s, 1, name="电子书", kind="content_link", unit_cost_fen=0, stock=None,
            config={"url": "https://example.com/b"},
        )  # fmt: skip
        now = now_us()
        c = service.create_campaign(
            s, 1, kind="invite_task", name="春季任务宝", key="spring",
            starts_at_us=now - 3_600_000_000, ends_at_us=now + 86_400_000_000,
            rules={"tiers": [{"invites": 1, "reward_id": book.id},
                             {"invites": 3, "reward_id": gift.id}]},
            copy={}, by="pytest",
        )  # fmt: skip
        service.launch(s, 1, c.id, "pytest")
        m1 = s.scalar(select(Member).where(Member.member_key == "m1"))
        assert m1 is not None
        who = service.join(s, c, member_id=m1.id).participant
        rewards.set_address(s, who, ADDRESS)
        first = rewards.grant(s, c, who, book.id, "tier:1")
        second = rewards.grant(s, c, who, gift.id, "tier:3")
        return c.id, second.id, first.id


def _status(engine: Engine, claim_id: int) -> str:
    with session_scope(engine, read_only=True) as s:
        claim = s.get(RewardClaim, claim_id)
        assert claim is not None
        return claim.status


def test_physical_fulfilment_with_a_sealed_address(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    cid, gift_claim, book_claim = _claims(engine)
    owner = login_as("owner")
    base = f"/w/default/campaigns/{cid}/claims"
    page = owner.get(base).text
    row = re.search(rf'<tr data-claim="{gift_claim}"[^>]*>(.*?)</tr>', page, re.S)
    assert row is not None
    cell = row.group(1)
    assert "王**" in cell and "138****5678" in cell and "文三****" in cell
    assert "13812345678" not in page and "文三路 100 号" not in page
    # Bad tracking number: refused, nothing moves.
    res = _post(owner, f"{base}/ship", claim_id=str(gift_claim), tracking_no="x")
    assert res.status_code == 400 and "快递单号" in res.text
    assert _status(engine, gift_claim) == "pending"
    assert _post(owner, f"{base}/deliver", claim_id=str(gift_claim)).status_code == 400
    res = _post(owner, f"{base}/ship", claim_id=str(gift_claim), tracking_no="SF1234567890")
    assert res.status_code == 303 and _status(engine, gift_claim) == "shipped"
    assert _post(owner, f"{base}/deliver", claim_id=str(gift_claim)).status_code == 303
    assert _status(engine, gift_claim) == "delivered"
    assert _post(owner, f"{base}/revoke", claim_id=str(gift_claim)).status_code == 400
    assert _post(owner, f"{base}/revoke", claim_id=str(book_claim)).status_code == 303
    assert _status(engine, book_claim) == "revoked"
    assert [d["tracking_no"] for d in _audit(engine, "claim.shipped")] == ["SF1234567890"]
    assert len(_audit(engine, "claim.delivered")) == len(_audit(engine, "claim.revoked")) == 1
    # A claim of another campaign, or none, is refused.
    assert _post(owner, f"{base}/ship", claim_id="999999", tracking_no="SF1").status_code == 400
    # The analyst reads the claims masked and moves nothing.
    analyst = login_as("analyst")
    page = analyst.get(base).text
    assert "138****5678" in page and "13812345678" not in page and "/claims/reveal" not in page
    assert _post(analyst, f"{base}/reveal", claim_id=str(gift_claim)).status_code == 403
    assert _post(analyst, f"{base}/revoke", claim_id=str(gift_claim)).status_code == 403
    assert _audit(engine, "claim.address_revealed") == []
    # Revealed by an audited POST, answered with the page itself.
    res = _post(owner, f"{base}/reveal", claim_id=str(gift_claim))
    assert res.status_code == 200
    assert "13812345678" in res.text and "文三路 100 号 5 幢" in res.text
    (entry,) = _audit(engine, "claim.address_revealed")
    assert entry == {"claim": gift_claim, "participant": entry["participant"], "found": True}


def test_shipping_list_export_is_audited_and_masked_unless_asked(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    cid, gift_claim, _book = _claims(engine)
    owner = login_as("owner")
    url = f"/w/default/campaigns/{cid}/claims/export"
    masked = owner.get(url)
    assert masked.status_code == 200 and masked.headers["content-type"].startswith("text/csv")
    text = masked.content.decode("utf-8-sig")
    assert "138****5678" in text and "13812345678" not in text
    assert str(gift_claim) in text and "电子书" not in text  # physical claims only
    opened = owner.get(url + "?personal=open").content.decode("utf-8-sig")
    assert "13812345678" in opened and "文三路 100 号 5 幢" in opened
    xlsx = owner.get(url + "?format=xlsx&personal=open")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert [d["personal"] for d in _audit(engine, "claims.export")] == ["masked", "open", "open"]
    assert owner.get(url + "?format=pdf").status_code == 400
    for role in ("analyst", "operator"):
        assert login_as(role).get(url).status_code == 403
    assert len(_audit(engine, "claims.export")) == 3
    with session_scope(engine, read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(RewardClaim)) == 2
