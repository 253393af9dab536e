"""The WeCom REST client: access tokens, errcodes, retries, backoff and our own rate limit.

One path for the real service and the tests' stand-in: only `api_base` differs. WeCom answers
errors as HTTP 200 with `{"errcode": n, "errmsg": "…"}`, so everything here branches on the
errcode (contracts/wecom.md, REST).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.orm import Session

from quanzi.connectors.wecom.models import API_BASE, WecomConnection
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit.errors import QuanziError

_T = TypeVar("_T")

# contracts/wecom.md, "Error codes"; 40058 and 40068 from WeCom's global errcode page.
ERRCODE_MEANINGS: dict[int, str] = {
    -1: "WeCom is busy (retry later)",
    0: "ok",
    40001: "invalid secret (check the customer-contact secret)",
    40013: "invalid corp id",
    40014: "invalid access token",
    40058: "invalid parameter",
    40068: "invalid tag id",
    41001: "access token missing",
    41051: "welcome code already used or expired",
    42001: "access token expired",
    45009: "API call frequency limit exceeded",
    45033: "too many concurrent calls",
    48002: "API not permitted for this secret (grant it in the WeCom admin)",
    60011: "no permission for this staff member or object",
    81017: "groupchat/list needs owner_filter for this corp",
    84061: "no customer-contact relation between this staff member and the customer",
}
TOKEN_ERRCODES = frozenset({40014, 42001})
THROTTLE_ERRCODES = frozenset({45009, 45033})
BUSY_ERRCODE = -1
# A token is refetched this long before WeCom says it expires.
TOKEN_MARGIN_S = 300
# Below WeCom's 10,000 calls a minute per API (and its 150,000 an hour: 2,500/min).
CALLS_PER_MINUTE = 2_400
BURST = 100

log = logging.getLogger(__name__)

_SECRET_PARAMS = re.compile(r"((?:access_token|corpsecret)=)[^&\s\"']+")


def redact(text: str) -> str:
    """`text` with access tokens and corp secrets in URLs replaced by ***."""
    return _SECRET_PARAMS.sub(r"\1***", text)


class _RedactSecrets(logging.Filter):
    """httpx logs each request URL at INFO: the token and the secret travel in the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                redact(str(a)) if isinstance(a, (str, httpx.URL)) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        record.msg = redact(str(record.msg))
        return True


_httpx_log = logging.getLogger("httpx")
if not any(isinstance(f, _RedactSecrets) for f in _httpx_log.filters):
    _httpx_log.addFilter(_RedactSecrets())


def errcode_meaning(errcode: int | None) -> str:
    if errcode is None:
        return "WeCom could not be reached"
    return ERRCODE_MEANINGS.get(errcode, "see WeCom's global error code list")


class WecomError(QuanziError):
    """WeCom refused a call (an errcode other than 0) or could not be reached (errcode None)."""

    status_code = 502

    def __init__(self, path: str, errcode: int | None, errmsg: str) -> None:
        self.path = path
        self.errcode = errcode
        self.errmsg = errmsg
        self.meaning = errcode_meaning(errcode)
        code = "no answer" if errcode is None else f"errcode {errcode}"
        super().__init__(f"WeCom {path}: {code} ({self.meaning}): {redact(errmsg)}")


class TokenCache(Protocol):
    """Where an access token lives between calls (and, for a connection, between processes)."""

    def load(self) -> tuple[str, float] | None:
        """The token and its expiry (Unix seconds), or None."""

    def store(self, token: str, expires_at: float) -> None: ...

    def clear(self) -> None: ...


class MemoryTokenCache:
    """A token kept in this process only."""

    def __init__(self) -> None:
        self._value: tuple[str, float] | None = None

    def load(self) -> tuple[str, float] | None:
        return self._value

    def store(self, token: str, expires_at: float) -> None:
        self._value = (token, expires_at)

    def clear(self) -> None:
        self._value = None


class TokenBucket:
    """Our own rate limit per API path, so a long sync never meets WeCom's 45009."""

    def __init__(
        self,
        per_minute: int = CALLS_PER_MINUTE,
        burst: int = BURST,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._sleep = sleep
        self._clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # path -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, path: str) -> float:
        """Take one call's token for `path`, sleeping if none is left; returns the wait."""
        with self._lock:
            now = self._clock()
            tokens, at = self._levels.get(path, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            # The wait is paid for now: the next caller sees the bucket as it will be then.
            self._levels[path] = (tokens - 1, now) if not wait else (0.0, now + wait)
        if wait:
            self._sleep(wait)
        return wait


class WecomClient:
    """Calls `api_base` + path with the access token; see the module docstring for the rules."""

    def __init__(
        self,
        corp_id: str,
        secret: str,
        *,
        api_base: str = API_BASE,
        http: httpx.Client | None = None,
        token_cache: TokenCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        bucket: TokenBucket | None = None,
        throttle_retries: int = 6,
        busy_retries: int = 3,
        backoff_base: float = 2.0,
        backoff_cap: float = 60.0,
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        self.api_base = api_base if api_base.endswith("/") else api_base + "/"
        self._http = http or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
        self._owns_http = http is None
        self.tokens: TokenCache = token_cache or MemoryTokenCache()
        self._sleep = sleep
        self._clock = clock
        self.bucket = bucket or TokenBucket(sleep=sleep)
        self.throttle_retries = throttle_retries
        self.busy_retries = busy_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.calls = 0  # HTTP requests made, gettoken included

    def __repr__(self) -> str:  # never the secret or the token
        return f"WecomClient(corp_id={self.corp_id!r}, api_base={self.api_base!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> WecomClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- public calls ---------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET `path` (relative to cgi-bin/) with the access token; the answer without errors."""
        return self._call("GET", path, params or {}, None)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body to `path` with the access token; the answer without errors."""
        return self._call("POST", path, {}, body)

    def access_token(self) -> str:
        """A token valid for at least TOKEN_MARGIN_S more seconds, fetched when needed."""
        cached = self.tokens.load()
        if cached is not None and cached[1] - TOKEN_MARGIN_S > self._clock():
            return cached[0]
        answer = self._send(
            "GET", "gettoken", {"corpid": self.corp_id, "corpsecret": self._secret}, None
        )
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise WecomError("gettoken", answer.get("errcode"), "no access_token in the answer")
        expires_in = answer.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int) and expires_in > 0 else 7200.0
        self.tokens.store(token, self._clock() + lifetime)
        return token

    # --- the rules ------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, params: dict[str, Any], body: dict[str, Any] | None
    ) -> dict[str, Any]:
        refreshed = False
        while True:
            token = self.access_token()
            try:
                return self._send(method, path, {**params, "access_token": token}, body)
            except WecomError as exc:
                if exc.errcode in TOKEN_ERRCODES and not refreshed:
                    # Revoked early or expired under us: one fresh token per call.
                    refreshed = True
                    self.tokens.clear()
                    continue
                raise

    def _send(
        self, method: str, path: str, params: dict[str, Any], body: dict[str, Any] | None
    ) -> dict[str, Any]:
        """One logical call: our rate limit, -1 and transport failures retried, 45009/45033
        backed off; any other errcode raised."""
        busy = throttled = 0
        while True:
            self.bucket.take(path)
            self.calls += 1
            try:
                resp = self._http.request(method, self.api_base + path, params=params, json=body)
            except httpx.HTTPError as exc:
                answer: dict[str, Any] | None = None
                failure = f"{type(exc).__name__}: {redact(str(exc))}"
            else:
                answer, failure = _decode(resp)
            if answer is None:
                busy += 1
                if busy > self.busy_retries:
                    raise WecomError(path, None, failure)
                self._sleep(0.5 * busy)
                continue
            errcode = answer.get("errcode", 0)
            if not isinstance(errcode, int):
                raise WecomError(path, None, f"errcode is not a number: {errcode!r}")
            if errcode == 0:
                return answer
            errmsg = str(answer.get("errmsg", ""))
            if errcode == BUSY_ERRCODE and busy < self.busy_retries:
                busy += 1
                self._sleep(0.5 * busy)
                continue
            if errcode in THROTTLE_ERRCODES and throttled < self.throttle_retries:
                delay = min(self.backoff_cap, self.backoff_base * 2**throttled)
                throttled += 1
                log.warning("WeCom %s: errcode %d, retrying in %.1fs", path, errcode, delay)
                self._sleep(delay * (0.5 + random.random() / 2))
                continue
            raise WecomError(path, errcode, errmsg)


def _decode(resp: httpx.Response) -> tuple[dict[str, Any] | None, str]:
    """The JSON object of a 200 answer, or None and why (then the call is retried)."""
    if resp.status_code != 200:
        return None, f"HTTP {resp.status_code}"
    try:
        data = resp.json()
    except ValueError:
        return None, "the answer is not JSON"
    if not isinstance(data, dict):
        return None, "the answer is not a JSON object"
    return data, ""


# --- a connection's client ----------------------------------------------------------------


class ConnectionTokenCache:
    """The token kept sealed in WecomConnection.access_token_*, so processes share it.

    While the caller's session is in a transaction, reads and writes go through it (durable
    when the caller commits; no second writer to wait for on SQLite); otherwise through a short
    transaction of their own on the session's engine."""

    FIELD = "wecom_access_token"

    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.engine: Engine = session.get_bind()  # type: ignore[assignment]
        self.workspace_id = workspace_id
        self._memory: tuple[str, float] | None = None
        self._loaded = False

    def load(self) -> tuple[str, float] | None:
        if not self._loaded:
            self._loaded = True
            self._memory = self._with_conn(self._read)
        return self._memory

    def store(self, token: str, expires_at: float) -> None:
        self._memory = (token, expires_at)
        self._loaded = True
        self._with_conn(lambda c: self._write(c, token, int(expires_at * 1_000_000)))

    def clear(self) -> None:
        self._memory = None
        self._loaded = True
        self._with_conn(lambda c: self._write(c, None, None))

    def _with_conn(self, fn: Callable[[Connection | Session], _T]) -> _T:
        if self.session.in_transaction():
            return fn(self.session)
        with self.engine.connect() as conn:
            result = fn(conn)
            conn.commit()
            return result

    def _read(self, conn: Connection | Session) -> tuple[str, float] | None:
        row = conn.execute(
            select(
                WecomConnection.access_token_sealed, WecomConnection.access_token_expires_at_us
            ).where(WecomConnection.workspace_id == self.workspace_id)
        ).one_or_none()
        if row is None or not row[0] or not row[1]:
            return None
        try:
            token = workspace_key(conn, self.workspace_id).open(self.FIELD, row[0])
        except QuanziError:
            return None  # a key change: fetch a new one
        return token, row[1] / 1_000_000

    def _write(self, conn: Connection | Session, token: str | None, expires_us: int | None) -> None:
        sealed = workspace_key(conn, self.workspace_id).seal(self.FIELD, token) if token else None
        conn.execute(
            update(WecomConnection)
            .where(WecomConnection.workspace_id == self.workspace_id)
            .values(access_token_sealed=sealed, access_token_expires_at_us=expires_us)
        )


def client_for(session: Session, workspace_id: int, **options: Any) -> WecomClient:
    """A client for the workspace's connection (NotFound when it is not connected)."""
    from quanzi.connectors.wecom.service import secrets

    s = secrets(session, workspace_id)
    return WecomClient(
        s.corp_id,
        s.secret,
        api_base=s.api_base,
        token_cache=ConnectionTokenCache(session, workspace_id),
        **options,
    )
