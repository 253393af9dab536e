"""WeCom callback crypto: the published vectors decrypt exactly; hostile inputs are refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from wechatpy.enterprise.crypto import WeChatCrypto

from quanzi.connectors.wecom.crypto import (
    MAX_BODY_BYTES,
    REPLAY_WINDOW_S,
    BadCallback,
    CallbackCrypto,
    CallbackRefused,
    CallbackTooLarge,
    signature,
    xml_fields,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wecom"
VECTORS: dict[str, Any] = json.loads((FIXTURES / "crypto_vectors.json").read_text())


def crypto_of(name: str) -> CallbackCrypto:
    v = VECTORS[name]
    return CallbackCrypto(v["token"], v["encoding_aes_key"], v["receive_id"])


@pytest.mark.parametrize("name", ["A", "B", "C"])
def test_published_url_checks_decrypt_exactly(name: str) -> None:
    g = VECTORS[name]["get"]
    plain = crypto_of(name).verify_url(
        g["msg_signature"], g["timestamp"], g["nonce"], g["echostr"], now=int(g["timestamp"])
    )
    v = VECTORS[name]
    expected = WeChatCrypto(v["token"], v["encoding_aes_key"], v["receive_id"]).check_signature(
        g["msg_signature"], g["timestamp"], g["nonce"], g["echostr"]
    )
    assert plain == expected
    if "plain" in g:
        assert plain == g["plain"]
    assert plain.isdigit()  # the bare echostr: no quotes, newline or BOM


@pytest.mark.parametrize("name", ["A", "B", "C"])
def test_published_deliveries_decrypt_exactly(name: str) -> None:
    p = VECTORS[name]["post"]
    xml = crypto_of(name).open_delivery(
        p["body"].encode(), p["msg_signature"], p["timestamp"], p["nonce"], now=int(p["timestamp"])
    )
    v = VECTORS[name]
    theirs = WeChatCrypto(v["token"], v["encoding_aes_key"], v["receive_id"]).decrypt_message(
        p["body"], p["msg_signature"], p["timestamp"], p["nonce"]
    )
    assert xml == theirs
    if "plain" in p:
        assert xml == p["plain"]
    fields = xml_fields(xml)
    assert {"A": "hello", "B": "你好", "C": "test"}[name] == fields["Content"]


def test_the_deterministic_encrypt_vector() -> None:
    e = VECTORS["C"]["encrypt"]
    c = crypto_of("C")
    encrypt = c.encrypt(e["plain"], random16=e["random16"].encode())
    assert encrypt == e["encrypt"]
    assert signature(c.token, e["timestamp"], e["nonce"], encrypt) == e["msg_signature"]


def test_round_trip_with_wechatpy_both_ways() -> None:
    c = crypto_of("B")
    body, sig = c.seal_delivery(
        "<xml><Content><![CDATA[圈子]]></Content></xml>", "n1", "1700000000"
    )
    theirs = WeChatCrypto(c.token, c.encoding_aes_key, c.receive_id)
    assert "圈子" in theirs.decrypt_message(body.decode(), sig, "1700000000", "n1")
    sealed = xml_fields(theirs.encrypt_message("<xml><A>1</A></xml>", "n2", "1700000001"))
    assert (
        c.open_delivery(
            f"<xml><Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>".encode(),
            sealed["MsgSignature"],
            "1700000001",
            "n2",
            now=1700000001,
        )
        == "<xml><A>1</A></xml>"
    )


NOW = 1_800_000_000
TS = str(NOW)


def delivery(c: CallbackCrypto, xml: str = "<xml><Event>x</Event></xml>") -> tuple[bytes, str]:
    return c.seal_delivery(xml, "nonce1", TS)


def test_forged_signature_is_refused() -> None:
    c = crypto_of("B")
    body, sig = delivery(c)
    forged = ("0" if sig[0] != "0" else "1") + sig[1:]
    with pytest.raises(CallbackRefused, match="signature") as info:
        c.open_delivery(body, forged, TS, "nonce1", now=NOW)
    assert info.value.status_code == 403
    # A signature made with another token is forged too.
    other = CallbackCrypto("othertoken", c.encoding_aes_key, c.receive_id)
    body, sig = delivery(other)
    with pytest.raises(CallbackRefused, match="signature"):
        c.open_delivery(body, sig, TS, "nonce1", now=NOW)


def test_tampered_ciphertext_is_refused_even_when_re_signed() -> None:
    c = crypto_of("B")
    encrypt = c.encrypt("<xml><Event>x</Event></xml>", random16=b"0123456789abcdef")
    raw = bytearray(base64.b64decode(encrypt))
    raw[-1] ^= 0x55  # breaks the padding of the last block
    tampered = base64.b64encode(bytes(raw)).decode()
    body = f"<xml><Encrypt><![CDATA[{tampered}]]></Encrypt></xml>".encode()
    # Even an attacker who knew the token (so the signature holds) cannot get it through.
    sig = signature(c.token, TS, "n", tampered)
    with pytest.raises(BadCallback):
        c.open_delivery(body, sig, TS, "n", now=NOW)
    for bad in ("not base64!!", base64.b64encode(b"short").decode(), ""):
        body = f"<xml><Encrypt><![CDATA[{bad}]]></Encrypt></xml>".encode()
        with pytest.raises(BadCallback):
            c.open_delivery(body, signature(c.token, TS, "n", bad), TS, "n", now=NOW)


def test_a_message_for_another_corp_is_refused() -> None:
    ours = crypto_of("B")
    theirs = CallbackCrypto(ours.token, ours.encoding_aes_key, "ww0000000000000000")
    body, sig = delivery(theirs)
    with pytest.raises(CallbackRefused, match="receiveid") as info:
        ours.open_delivery(body, sig, TS, "nonce1", now=NOW)
    assert info.value.status_code == 403


@pytest.mark.parametrize("skew", [REPLAY_WINDOW_S + 1, -(REPLAY_WINDOW_S + 1), 86_400 * 30])
def test_old_or_future_timestamps_are_refused(skew: int) -> None:
    c = crypto_of("B")
    body, sig = delivery(c)
    with pytest.raises(CallbackRefused, match="timestamp"):
        c.open_delivery(body, sig, TS, "nonce1", now=NOW + skew)
    # Inside the window it passes.
    assert c.open_delivery(body, sig, TS, "nonce1", now=NOW + REPLAY_WINDOW_S - 1)


def test_a_non_numeric_timestamp_is_refused() -> None:
    c = crypto_of("B")
    encrypt = c.encrypt("<xml/>")
    with pytest.raises(CallbackRefused, match="timestamp"):
        c.verify_url(signature(c.token, "soon", "n", encrypt), "soon", "n", encrypt, now=NOW)


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<xml><Encrypt>&lol3;</Encrypt></xml>"
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><Encrypt>&xxe;</Encrypt></xml>"
)


@pytest.mark.parametrize("payload", [BOMB, EXTERNAL], ids=["xml-bomb", "external-entity"])
def test_hostile_xml_is_refused_in_the_envelope_and_inside(payload: str) -> None:
    c = crypto_of("B")
    with pytest.raises(BadCallback, match="XML refused") as info:
        c.open_delivery(payload.encode(), "0" * 40, TS, "n", now=NOW)
    assert info.value.status_code == 400
    # Inside a correctly signed and encrypted delivery, the decrypted XML is refused on parse.
    body, sig = delivery(c, payload)
    xml = c.open_delivery(body, sig, TS, "nonce1", now=NOW)
    with pytest.raises(BadCallback, match="XML refused"):
        xml_fields(xml)


def test_oversized_and_malformed_bodies_are_refused() -> None:
    c = crypto_of("B")
    with pytest.raises(CallbackTooLarge) as info:
        c.open_delivery(b"<xml>" + b" " * MAX_BODY_BYTES + b"</xml>", "0" * 40, TS, "n", now=NOW)
    assert info.value.status_code == 413
    for body in (b"not xml", b"<xml><ToUserName>x</ToUserName></xml>", b"<xml><Encrypt/></xml>"):
        with pytest.raises(BadCallback):
            c.open_delivery(body, "0" * 40, TS, "n", now=NOW)


def test_fields_of_a_member_change_list() -> None:
    fields = xml_fields((FIXTURES / "cb_chat_add_member.xml").read_text())
    assert fields["MemChangeList"] == ["Jack", "Rose"]
    assert fields["ChatId"] == "CHAT_ID"
    assert fields["CreateTime"] == "1403610513"
