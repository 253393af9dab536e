"""WecomClient against the stand-in: tokens, errcodes, retries, backoff and our rate limit."""

from __future__ import annotations

import logging

import pytest
from standin import Scenario, StandIn

from quanzi.connectors.wecom.client import (
    TOKEN_MARGIN_S,
    TokenBucket,
    WecomClient,
    WecomError,
    errcode_meaning,
    redact,
)


class FakeTime:
    """A clock and a sleep that only move when told: no test waits for real."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client(wecom: StandIn, t: FakeTime | None = None, **kw: object) -> WecomClient:
    t = t or FakeTime()
    return WecomClient(
        wecom.sc.corp_id,
        wecom.sc.secret,
        api_base=wecom.api_base,
        sleep=t.sleep,
        clock=t,
        **kw,  # type: ignore[arg-type]
    )


def test_token_is_fetched_once_and_reused(wecom: StandIn) -> None:
    c = client(wecom)
    assert c.get("externalcontact/get_follow_user_list")["follow_user"] == [
        "staff_00",
        "staff_01",
        "staff_02",
    ]
    c.post("externalcontact/get_corp_tag_list", {})
    assert wecom.token_fetches == 1


def test_token_refreshed_five_minutes_before_expiry(wecom: StandIn) -> None:
    t = FakeTime()
    c = client(wecom, t)
    c.get("externalcontact/get_follow_user_list")
    t.now += 7200 - TOKEN_MARGIN_S - 1
    c.get("externalcontact/get_follow_user_list")
    assert wecom.token_fetches == 1
    t.now += 2
    c.get("externalcontact/get_follow_user_list")
    assert wecom.token_fetches == 2


@pytest.mark.parametrize("code", [42001, 40014])
def test_revoked_token_is_refetched_once(wecom: StandIn, code: int) -> None:
    c = client(wecom)
    c.get("externalcontact/get_follow_user_list")
    wecom.faults.revoke_after, wecom.faults.revoke_code = 0, code
    assert c.get("externalcontact/get_follow_user_list")["follow_user"]
    assert wecom.token_fetches == 2


def test_token_refused_twice_in_one_call_is_raised(corp: Scenario) -> None:
    # Every token the stand-in gives is already expired: one refetch per call, then raised.
    with StandIn(corp, token_lifetime=0) as wecom:
        c = client(wecom)
        with pytest.raises(WecomError) as err:
            c.post("externalcontact/groupchat/get", {"chat_id": "x"})
        assert err.value.errcode == 42001
        assert wecom.token_fetches == 2


def test_bad_secret_is_surfaced_with_its_meaning(wecom: StandIn) -> None:
    c = WecomClient(wecom.sc.corp_id, "wrong", api_base=wecom.api_base)
    with pytest.raises(WecomError) as err:
        c.get("externalcontact/get_follow_user_list")
    assert err.value.errcode == 40001
    assert "invalid secret" in err.value.meaning
    assert "wrong" not in str(err.value)


def test_busy_is_retried_three_times_then_raised(wecom: StandIn) -> None:
    t = FakeTime()
    c = client(wecom, t)
    wecom.faults.busy = 3
    assert c.get("externalcontact/get_follow_user_list")["follow_user"]
    wecom.faults.busy = 4
    with pytest.raises(WecomError) as err:
        c.get("externalcontact/get_follow_user_list")
    assert err.value.errcode == -1
    assert wecom.faults.busy == 0


@pytest.mark.parametrize("code", [45009, 45033])
def test_frequency_limit_backs_off_exponentially_with_jitter(wecom: StandIn, code: int) -> None:
    t = FakeTime()
    c = client(wecom, t)
    wecom.faults.throttle, wecom.faults.throttle_code = 4, code
    assert c.post("externalcontact/get_corp_tag_list", {})["tag_group"]
    waits = t.slept
    assert len(waits) == 4
    for i, w in enumerate(waits):  # base 2 s doubling, jitter within [50 %, 100 %]
        assert 2.0 * 2**i * 0.5 <= w <= 2.0 * 2**i


def test_frequency_limit_gives_up_after_the_retries(wecom: StandIn) -> None:
    t = FakeTime()
    c = client(wecom, t, throttle_retries=2)
    wecom.faults.throttle = 10
    with pytest.raises(WecomError) as err:
        c.post("externalcontact/get_corp_tag_list", {})
    assert err.value.errcode == 45009
    assert len(t.slept) == 2
    assert wecom.faults.throttle == 7


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        (
            "externalcontact/mark_tag",
            {"userid": "staff_00", "external_userid": "nobody", "add_tag": ["et_vip"]},
            84061,
        ),
        ("externalcontact/batch/get_by_user", {"userid_list": ["ghost"], "limit": 10}, 60011),
        ("externalcontact/groupchat/list", {"limit": 0}, 40058),
    ],
)
def test_other_errcodes_are_raised_not_swallowed(
    wecom: StandIn, path: str, body: dict[str, object], code: int
) -> None:
    with pytest.raises(WecomError) as err:
        client(wecom).post(path, body)
    assert err.value.errcode == code
    assert err.value.meaning == errcode_meaning(code)
    assert f"errcode {code}" in str(err.value)


def test_forbidden_api_and_owner_filter(wecom: StandIn) -> None:
    c = client(wecom)
    wecom.faults.forbidden.add("externalcontact/get_corp_tag_list")
    with pytest.raises(WecomError, match="48002"):
        c.post("externalcontact/get_corp_tag_list", {})
    wecom.faults.owner_filter_required = True
    with pytest.raises(WecomError) as err:
        c.post("externalcontact/groupchat/list", {"limit": 10})
    assert err.value.errcode == 81017


def test_unreachable_wecom_is_a_clear_error() -> None:
    t = FakeTime()
    c = WecomClient("ww1", "s", api_base="http://127.0.0.1:9/cgi-bin/", sleep=t.sleep, clock=t)
    with pytest.raises(WecomError) as err:
        c.get("externalcontact/get_follow_user_list")
    assert err.value.errcode is None
    assert "could not be reached" in str(err.value)
    assert len(t.slept) == 3


def test_token_bucket_keeps_below_the_limit() -> None:
    t = FakeTime()
    bucket = TokenBucket(per_minute=600, burst=5, sleep=t.sleep, clock=t)
    start = t.now
    for _ in range(25):
        bucket.take("externalcontact/groupchat/get")
    # 5 at once, then 10 a second: 20 more take 2 s.
    assert t.now - start == pytest.approx(2.0)
    bucket.take("externalcontact/get_corp_tag_list")  # another API has its own bucket
    assert t.now - start == pytest.approx(2.0)


def test_stand_in_rate_limit_is_met_by_backoff(corp: Scenario) -> None:
    t = FakeTime()
    with StandIn(corp, per_minute=5, clock=t) as wecom:
        c = client(wecom, t)
        for _ in range(8):  # calls 6..8 meet 45009 until the fake minute has passed
            c.get("externalcontact/get_follow_user_list")
        assert any(s >= 1 for s in t.slept)
        assert wecom.calls_to("externalcontact/get_follow_user_list") > 8


def test_secrets_never_logged(wecom: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = client(wecom)
    c.get("externalcontact/get_follow_user_list")
    token = c.tokens.load()
    assert token is not None
    text = caplog.text
    assert "HTTP Request" in text
    assert wecom.sc.secret not in text
    assert token[0] not in text
    assert wecom.sc.secret not in repr(c)
    assert redact("x?corpsecret=abc&access_token=def") == "x?corpsecret=***&access_token=***"
