"""A workspace's WeCom connection: setup, sealed secrets, health, and the callback inbox.

Services take the session and never commit (the request or the job does).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.connectors.wecom.crypto import CallbackCrypto, aes_key
from quanzi.connectors.wecom.models import API_BASE, WecomCallback, WecomConnection
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, NotFound

# In-house corps have ids like ww1436e0e65a779aee (older 企业号: wx…).
CORP_ID_RE = re.compile(r"^w[wx][0-9a-f]{16}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9]{3,32}$")
SECRET_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
API_BASE_RE = re.compile(r"^https?://[^\s/]+(/[^\s]*)?/$")
# Sealed with the field name as associated data: a value cannot be moved to another field.
SECRET_FIELD = "wecom_secret"
TOKEN_FIELD = "wecom_token"
AES_KEY_FIELD = "wecom_aes_key"
ERROR_MAX_CHARS = 2000


@dataclass(frozen=True)
class WecomSecrets:
    """A connection's credentials, opened for one use; never logged or shown."""

    corp_id: str
    secret: str
    token: str
    encoding_aes_key: str
    api_base: str

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"WecomSecrets(corp_id={self.corp_id!r}, api_base={self.api_base!r})"

    def callback_crypto(self) -> CallbackCrypto:
        return CallbackCrypto(self.token, self.encoding_aes_key, self.corp_id)


def _check(corp_id: str, secret: str, token: str, encoding_aes_key: str, api_base: str) -> None:
    if not CORP_ID_RE.match(corp_id):
        raise InvalidParameter(
            "corp id: use the 企业ID from the WeCom admin (My Company), like ww1436e0e65a779aee"
        )
    if not SECRET_RE.match(secret):
        raise InvalidParameter(
            "secret: paste the customer-contact Secret (1-128 visible characters, no spaces)"
        )
    if not TOKEN_RE.match(token):
        raise InvalidParameter("token: use 3-32 letters or digits")
    try:
        aes_key(encoding_aes_key)
    except ValueError:
        raise InvalidParameter(
            "EncodingAESKey: use the 43 letters and digits generated in the WeCom admin"
        ) from None
    if not API_BASE_RE.match(api_base):
        raise InvalidParameter("api base: an http(s) URL ending with '/'")


def connection(session: Session, ws_id: int) -> WecomConnection | None:
    """The workspace's connection, or None when WeCom is not connected."""
    return session.scalar(select(WecomConnection).where(WecomConnection.workspace_id == ws_id))


def connect(
    session: Session,
    ws_id: int,
    *,
    corp_id: str,
    secret: str,
    token: str,
    encoding_aes_key: str,
    api_base: str = API_BASE,
) -> WecomConnection:
    """Connect (or re-connect) the workspace to a corp; the secrets are sealed, never shown."""
    corp_id, secret, token = corp_id.strip(), secret.strip(), token.strip()
    encoding_aes_key = encoding_aes_key.strip()
    _check(corp_id, secret, token, encoding_aes_key, api_base)
    key = workspace_key(session, ws_id)
    now = now_us()
    conn = connection(session, ws_id)
    if conn is None:
        conn = WecomConnection(workspace_id=ws_id, created_at_us=now)
        session.add(conn)
    conn.corp_id = corp_id
    conn.secret_sealed = key.seal(SECRET_FIELD, secret)
    conn.token_sealed = key.seal(TOKEN_FIELD, token)
    conn.aes_key_sealed = key.seal(AES_KEY_FIELD, encoding_aes_key)
    conn.api_base = api_base
    # A token fetched with the old secret is not this connection's.
    conn.access_token_sealed = None
    conn.access_token_expires_at_us = None
    conn.updated_at_us = now
    session.flush()
    return conn


def disconnect(session: Session, ws_id: int) -> bool:
    """Forget the connection and its secrets; False when there was none. Stored callbacks
    and the events already made from them stay."""
    done = session.execute(delete(WecomConnection).where(WecomConnection.workspace_id == ws_id))
    return bool(getattr(done, "rowcount", 0))


def secrets(session: Session, ws_id: int) -> WecomSecrets:
    """The connection's credentials, opened; NotFound when the workspace is not connected."""
    conn = connection(session, ws_id)
    if conn is None:
        raise NotFound("WeCom is not connected in this workspace")
    key = workspace_key(session, ws_id)
    return WecomSecrets(
        corp_id=conn.corp_id,
        secret=key.open(SECRET_FIELD, conn.secret_sealed),
        token=key.open(TOKEN_FIELD, conn.token_sealed),
        encoding_aes_key=key.open(AES_KEY_FIELD, conn.aes_key_sealed),
        api_base=conn.api_base,
    )


def _health(session: Session, ws_id: int, **values: object) -> None:
    session.execute(
        update(WecomConnection)
        .where(WecomConnection.workspace_id == ws_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def record_callback(session: Session, ws_id: int, at_us: int | None = None) -> None:
    """A verified callback arrived."""
    _health(session, ws_id, last_callback_at_us=at_us or now_us())


def record_sync(session: Session, ws_id: int, at_us: int | None = None) -> None:
    """A sync finished."""
    _health(session, ws_id, last_sync_at_us=at_us or now_us())


def record_error(session: Session, ws_id: int, message: str, at_us: int | None = None) -> None:
    """Something failed (a fetch, a sync, processing a callback): shown on the console.
    The message must hold no secret or personal data."""
    _health(
        session,
        ws_id,
        last_error=message[:ERROR_MAX_CHARS],
        last_error_at_us=at_us or now_us(),
    )


def callback_url(base_url: str, workspace_name: str) -> str:
    """The URL to paste into the WeCom admin as the customer-contact callback (接收事件服务器)."""
    return f"{base_url.rstrip('/')}/hooks/wecom/{quote(workspace_name, safe='')}"


# --- The callback inbox ---------------------------------------------------------------------


def callback_digest(xml: str) -> str:
    """SHA-256 of the decrypted XML: WeCom's retries of one event have the same one."""
    return hashlib.sha256(xml.encode()).hexdigest()


def store_callback(
    session: Session, ws_id: int, xml: str, event: str, change_type: str | None
) -> tuple[WecomCallback, bool]:
    """Store a verified callback once: (row, True) the first time; a retried delivery adds
    to `deliveries` and returns (row, False)."""
    digest = callback_digest(xml)
    found = session.scalar(
        select(WecomCallback).where(
            WecomCallback.workspace_id == ws_id, WecomCallback.digest == digest
        )
    )
    if found is None:
        row = WecomCallback(
            workspace_id=ws_id,
            digest=digest,
            event=event[:64],
            change_type=change_type[:64] if change_type else None,
            xml=xml,
            received_at_us=now_us(),
            deliveries=1,
            attempts=0,
        )
        try:
            with session.begin_nested():
                session.add(row)
            return row, True
        except IntegrityError:  # the same delivery, stored by a concurrent request
            pass
    session.execute(
        update(WecomCallback)
        .where(WecomCallback.workspace_id == ws_id, WecomCallback.digest == digest)
        .values(deliveries=WecomCallback.deliveries + 1)
        .execution_options(synchronize_session=False)
    )
    row = session.scalars(
        select(WecomCallback)
        .where(WecomCallback.workspace_id == ws_id, WecomCallback.digest == digest)
        .execution_options(populate_existing=True)
    ).one()
    return row, False


def pending_callbacks(session: Session, ws_id: int, limit: int = 200) -> list[WecomCallback]:
    """Callbacks not yet turned into events, in order of receipt."""
    return list(
        session.scalars(
            select(WecomCallback)
            .where(WecomCallback.workspace_id == ws_id, WecomCallback.processed_at_us.is_(None))
            .order_by(WecomCallback.received_at_us, WecomCallback.id)
            .limit(limit)
        )
    )


def mark_processed(session: Session, ws_id: int, callback_id: int) -> None:
    session.execute(
        update(WecomCallback)
        .where(WecomCallback.workspace_id == ws_id, WecomCallback.id == callback_id)
        .values(processed_at_us=now_us(), last_error=None, attempts=WecomCallback.attempts + 1)
        .execution_options(synchronize_session=False)
    )


def mark_failed(session: Session, ws_id: int, callback_id: int, message: str) -> None:
    session.execute(
        update(WecomCallback)
        .where(WecomCallback.workspace_id == ws_id, WecomCallback.id == callback_id)
        .values(last_error=message[:ERROR_MAX_CHARS], attempts=WecomCallback.attempts + 1)
        .execution_options(synchronize_session=False)
    )
