"""WeCom callback crypto: signature, AES-256-CBC, receiveid check, and XML parsed with defusedxml.

The scheme (shared/contracts/wecom.md): signature = sha1 of the sorted concatenation of
(token, timestamp, nonce, encrypt); key = b64decode(EncodingAESKey + "="), IV = its first 16
bytes; plaintext = 16 random bytes ‖ 4-byte big-endian length ‖ msg ‖ receiveid, PKCS#7
padded to 32 bytes. Same result as `wechatpy.enterprise.crypto.WeChatCrypto` (the tests check
both against the published vectors), but stricter: the padding, the length and the receiveid
are all checked, signatures are compared in constant time, a timestamp more than
`REPLAY_WINDOW_S` from now is refused, and any failure is one `CallbackRefused` (4xx), never a
stray exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from quanzi.kit.errors import QuanziError

# A delivery is a few hundred bytes; WeCom's largest callbacks stay far below this.
MAX_BODY_BYTES = 1_000_000
# WeCom signs each request with the time it sent it; older ones are replays (or clocks that
# are badly off: keep the server's clock synchronised).
REPLAY_WINDOW_S = 300
BLOCK = 32
AES_KEY_RE = re.compile(r"^[A-Za-z0-9+/]{43}$")


class CallbackRefused(QuanziError):
    """A callback that is not WeCom's, or not for us: answered 4xx, nothing stored."""

    status_code = 403


class BadCallback(CallbackRefused):
    """A callback whose body or ciphertext is malformed."""

    status_code = 400


class CallbackTooLarge(CallbackRefused):
    status_code = 413


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    if not AES_KEY_RE.match(encoding_aes_key):
        raise ValueError("EncodingAESKey must be 43 characters of letters and digits")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise ValueError("EncodingAESKey is not valid base64") from None
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """Lowercase hex sha1 over the four values sorted and joined (WeCom's msg_signature)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def parse_xml(text: str | bytes) -> Element:
    """An XML document parsed with defusedxml: DTDs, entities and external references refused."""
    try:
        root: Element = fromstring(
            text, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        return root
    except DefusedXmlException as exc:
        raise BadCallback(f"XML refused ({type(exc).__name__})") from None
    except (ParseError, ValueError) as exc:
        raise BadCallback(f"not well-formed XML ({exc})") from None


def xml_fields(text: str | bytes) -> dict[str, Any]:
    """The children of a WeCom XML document's root as a dict: text for leaves, a list of the
    `<Item>` texts for lists (MemChangeList), a dict for other nested elements."""
    return _fields(parse_xml(text))


def _fields(elem: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in elem:
        if len(child):
            if all(c.tag == "Item" for c in child):
                out[child.tag] = [(c.text or "").strip() for c in child]
            else:
                out[child.tag] = _fields(child)
        else:
            out[child.tag] = (child.text or "").strip()
    return out


@dataclass(frozen=True)
class CallbackCrypto:
    """One connection's callback keys: verifies and decrypts what WeCom sends to its hook."""

    token: str
    encoding_aes_key: str
    receive_id: str

    @property
    def key(self) -> bytes:
        return aes_key(self.encoding_aes_key)

    def check(
        self, msg_signature: str, timestamp: str, nonce: str, encrypt: str, now: float | None
    ) -> None:
        """Signature and freshness; `now=None` is the current time."""
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode()):
            raise CallbackRefused("signature does not match (wrong token, or not from WeCom)")
        try:
            sent = int(timestamp)
        except ValueError:
            raise CallbackRefused("timestamp is not an integer") from None
        current = time.time() if now is None else now
        if abs(current - sent) > REPLAY_WINDOW_S:
            raise CallbackRefused(
                f"timestamp is more than {REPLAY_WINDOW_S} s away from now (replayed or stale)"
            )

    def decrypt(self, encrypt: str) -> str:
        """The message inside a ciphertext, refused unless padding, length and receiveid hold."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise BadCallback("ciphertext is not base64") from None
        if not raw or len(raw) % 16:
            raise BadCallback("ciphertext length is not a whole number of AES blocks")
        key = self.key
        dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = dec.update(raw) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise BadCallback("ciphertext does not decrypt (bad padding: wrong key or tampered)")
        content = plain[16:-pad]
        if len(content) < 4:
            raise BadCallback("decrypted message is too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise BadCallback("decrypted message length is inconsistent (tampered)")
        msg, receive_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise CallbackRefused("the message is addressed to another corp (receiveid)")
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError:
            raise BadCallback("decrypted message is not UTF-8") from None

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        """Base64 ciphertext of `message` (what WeCom sends; used by the tests' sender)."""
        body = message.encode()
        plain = (
            (random16 if random16 is not None else os.urandom(16))
            + struct.pack(">I", len(body))
            + body
            + self.receive_id.encode()
        )
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        key = self.key
        enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def verify_url(
        self,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        echostr: str,
        *,
        now: float | None = None,
    ) -> str:
        """The plaintext echostr to answer WeCom's URL check with."""
        self.check(msg_signature, timestamp, nonce, echostr, now)
        return self.decrypt(echostr)

    def open_delivery(
        self,
        body: bytes,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        *,
        now: float | None = None,
    ) -> str:
        """The decrypted XML of a POSTed delivery."""
        if len(body) > MAX_BODY_BYTES:
            raise CallbackTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
        envelope = xml_fields(body)
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise BadCallback("no <Encrypt> element in the body")
        self.check(msg_signature, timestamp, nonce, encrypt, now)
        return self.decrypt(encrypt)

    def seal_delivery(
        self, message: str, nonce: str, timestamp: str, random16: bytes | None = None
    ) -> tuple[bytes, str]:
        """(body, msg_signature) of a delivery of `message`, as WeCom would POST it."""
        encrypt = self.encrypt(message, random16)
        body = (
            f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            "<AgentID><![CDATA[]]></AgentID></xml>"
        )
        return body.encode(), signature(self.token, timestamp, nonce, encrypt)
