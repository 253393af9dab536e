"""A stand-in for WeCom's REST API and callback sender, on loopback, driven by a scenario.

Implements the endpoints of shared/contracts/wecom.md with WeCom's field names, errcodes
(HTTP 200 + errcode), access-token expiry and revocation, cursor paging, per-API rate limits
and injectable faults. `Scenario` holds the corp (staff, customers, contact relations, groups
with members, tags); `build_scenario` makes a large one deterministically and `Scenario.expect_*`
say what Quanzi's reports must show once it has synced that corp.

Import it as `from standin import ...` (tests add this folder to sys.path).
"""

from __future__ import annotations

import base64
import json
import random
import secrets as pysecrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

SHANGHAI = timezone(timedelta(hours=8))
PREFIX = "/cgi-bin/"

# REST join_scene (groupchat/get) → what Quanzi's member.joined says in `via`.
JOIN_SCENES = {1: "invite", 2: "link", 3: "qrcode"}


def errmsg(code: int) -> str:
    return {
        0: "ok",
        -1: "system busy",
        40001: "invalid credential",
        40013: "invalid corpid",
        40014: "invalid access_token",
        40058: "invalid Parameter",
        40068: "invalid tagid",
        41001: "access_token missing",
        41051: "welcome code used or expired",
        42001: "access_token expired",
        45009: "api freq out of limit",
        45033: "api concurrent out of limit",
        48002: "api forbidden",
        60011: "no privilege to access/modify contact/party/agent",
        81017: "chat list need owner filter",
        84061: "not exist contact",
    }.get(code, "error")


class WecomFault(Exception):
    """Raised inside a handler: answered as HTTP 200 with this errcode."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# --- the corp -------------------------------------------------------------------------------


@dataclass
class Member:
    userid: str
    type: int  # 1 staff, 2 external
    join_time: int
    join_scene: int  # 1 direct invite, 2 invite link, 3 QR
    invitor: str | None = None
    state: str | None = None
    name: str = ""
    unionid: str | None = None


@dataclass
class Chat:
    chat_id: str
    name: str
    owner: str
    create_time: int
    notice: str = ""
    status: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    member_version: int = 1


@dataclass
class Customer:
    external_userid: str
    name: str
    unionid: str | None = None
    gender: int = 0
    type: int = 1  # 1 WeChat user, 2 WeCom user


@dataclass
class Relation:
    userid: str
    external_userid: str
    createtime: int
    state: str = ""
    remark: str = ""
    tag_id: list[str] = field(default_factory=list)
    add_way: int = 1


@dataclass
class Scenario:
    """A corp as WeCom holds it. Change it between syncs with the helpers below."""

    corp_id: str = "ww5a7c0e1f2b3d4e6f"
    secret: str = "standin-secret-0123456789"
    staff: list[str] = field(default_factory=list)
    customers: dict[str, Customer] = field(default_factory=dict)
    relations: dict[tuple[str, str], Relation] = field(default_factory=dict)
    chats: dict[str, Chat] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    # What happened, for the expected reports: (kind, chat_id, userid, unix seconds).
    history: list[tuple[str, str, str, int]] = field(default_factory=list)

    def join(self, chat_id: str, m: Member) -> None:
        chat = self.chats[chat_id]
        chat.members[m.userid] = m
        chat.member_version += 1
        self.history.append(("join", chat_id, m.userid, m.join_time))

    def leave(self, chat_id: str, userid: str, at: int) -> None:
        chat = self.chats[chat_id]
        del chat.members[userid]
        chat.member_version += 1
        self.history.append(("leave", chat_id, userid, at))

    def dismiss(self, chat_id: str) -> None:
        del self.chats[chat_id]

    def add_contact(self, rel: Relation) -> None:
        self.relations[(rel.userid, rel.external_userid)] = rel

    def del_contact(self, userid: str, external_userid: str) -> None:
        del self.relations[(userid, external_userid)]

    def staff_ids(self) -> set[str]:
        return {
            m.userid for c in self.chats.values() for m in c.members.values() if m.type == 1
        } | set(self.staff)

    # What Quanzi's reports must say once synced (contracts/metrics.md), from the scenario's
    # own record of joins; leaves are dated when a sync sees them, so `leave_day` says that.

    def members_now(self) -> set[str]:
        staff = self.staff_ids()
        return {
            m.userid
            for c in self.chats.values()
            for m in c.members.values()
            if m.userid not in staff
        }

    def expect_overview(self, day: date, *, leaves: int = 0) -> dict[str, Any]:
        """The overview report of `day`, for a corp synced after every join of that day and
        whose only leaves (`leaves` of them) were seen by a sync on `day` itself."""
        staff = self.staff_ids()
        end = int(
            datetime.combine(day + timedelta(days=1), datetime.min.time(), SHANGHAI).timestamp()
        )
        start = end - 86400
        first: dict[str, int] = {}
        for kind, _chat, user, at in self.history:
            if kind == "join" and user not in staff:
                first[user] = min(first.get(user, at), at)
        in_groups: set[str] = set()
        for c in self.chats.values():
            for m in c.members.values():
                if m.userid not in staff and m.join_time < end:
                    in_groups.add(m.userid)
        return {
            "date": day.isoformat(),
            "members": len(in_groups),
            "new_members": sum(1 for t in first.values() if start <= t < end),
            "leaves": leaves,
            "messages": 0,
            "member_messages": 0,
            "staff_messages": 0,
            "active_members": 0,
            "groups": sum(1 for c in self.chats.values() if c.create_time < end),
        }

    def expect_group_sizes(self, day: date) -> dict[str, int]:
        """Group id → non-staff members at the end of `day` (every group that exists then)."""
        staff = self.staff_ids()
        end = int(
            datetime.combine(day + timedelta(days=1), datetime.min.time(), SHANGHAI).timestamp()
        )
        return {
            c.chat_id: sum(
                1 for m in c.members.values() if m.userid not in staff and m.join_time < end
            )
            for c in self.chats.values()
            if c.create_time < end
        }


def local_ts(day: date, seconds: int) -> int:
    """Unix seconds of `seconds` after local (Asia/Shanghai) midnight of `day`."""
    return int(datetime.combine(day, datetime.min.time(), SHANGHAI).timestamp()) + seconds


def build_scenario(
    *,
    groups: int = 50,
    customers: int = 5000,
    staff: int = 10,
    day: date = date(2026, 10, 1),
    seed: int = 5,
) -> Scenario:
    """A corp of `staff` staff, `customers` customers (each a contact of one staff member,
    added on `day` - 1 or `day`) and `groups` groups (created on `day` - 1) whose owner is a staff
    member; each customer joins one or two groups on `day` - 1 or `day`, by invitation of
    another member, by link or by QR code, with a channel `state` on some."""
    rnd = random.Random(seed)
    sc = Scenario()
    sc.staff = [f"staff_{i:02d}" for i in range(staff)]
    sc.tags = [
        {
            "group_id": "etg_1",
            "group_name": "客户等级",
            "create_time": local_ts(day, 0) - 86400 * 30,
            "order": 1,
            "tag": [
                {
                    "id": "et_vip",
                    "name": "VIP",
                    "create_time": local_ts(day, 0) - 86400 * 30,
                    "order": 1,
                },
                {
                    "id": "et_new",
                    "name": "新客",
                    "create_time": local_ts(day, 0) - 86400 * 30,
                    "order": 2,
                },
            ],
        }
    ]
    prev = day - timedelta(days=1)
    for g in range(groups):
        owner = sc.staff[g % staff]
        chat_id = f"wrOgQhDgAA{g:06d}"
        created = local_ts(prev, 8 * 3600 + g)
        sc.chats[chat_id] = Chat(chat_id, f"宝妈交流{g + 1}群", owner, created, notice=f"群公告{g}")
        sc.join(chat_id, Member(owner, 1, created, 1, name=owner))
    chat_ids = list(sc.chats)
    channels = ["douyin_live", "xhs_note", "store_poster", ""]
    for c in range(customers):
        ext = f"wmEXT{c:07d}"
        sc.customers[ext] = Customer(ext, f"客户{c}", unionid=f"oUNION{c:07d}" if c % 3 else None)
        which = day if c % 2 else prev
        added = local_ts(which, 9 * 3600 + rnd.randrange(0, 10 * 3600))
        state = channels[c % len(channels)]
        sc.add_contact(Relation(sc.staff[c % staff], ext, added, state=state))
        for chat_id in rnd.sample(chat_ids, 1 + (c % 5 == 0)):
            chat = sc.chats[chat_id]
            scene = (1, 2, 3)[c % 3]
            others = [m.userid for m in chat.members.values()]
            invitor = rnd.choice(others) if scene == 1 else chat.owner
            sc.join(
                chat_id,
                Member(
                    ext,
                    2,
                    added + 60 + rnd.randrange(0, 600),
                    scene,
                    invitor=invitor,
                    state=state or None,
                    name=f"客户{c}",
                    unionid=sc.customers[ext].unionid,
                ),
            )
    return sc


# --- faults ---------------------------------------------------------------------------------


@dataclass
class Faults:
    """What the stand-in does wrong, on purpose. All counters count API calls (not gettoken)."""

    # After this many more calls, the current token is revoked: the next call answers this.
    revoke_after: int | None = None
    revoke_code: int = 42001
    # The next `throttle` calls (of `throttle_path`, or any) answer `throttle_code`.
    throttle: int = 0
    throttle_code: int = 45009
    throttle_path: str | None = None
    # The next `busy` calls answer -1.
    busy: int = 0
    # Paths answered 48002 (the secret lacks the permission).
    forbidden: set[str] = field(default_factory=set)
    # groupchat/list without owner_filter answers 81017.
    owner_filter_required: bool = False
    # Seconds each API call takes (to make a crash land mid-sync).
    delay: float = 0.0
    # Called with (path, body) before each API call is answered; may raise or sleep.
    hook: Callable[[str, dict[str, Any]], None] | None = None


# --- the server -----------------------------------------------------------------------------


class StandIn:
    """WeCom on http://127.0.0.1:<port>/cgi-bin/ ; `api_base` is what Quanzi is configured with."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        token_lifetime: int = 7200,
        per_minute: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sc = scenario
        self.faults = Faults()
        self.token_lifetime = token_lifetime
        self.per_minute = per_minute
        self.clock = clock
        self.tokens: dict[str, float] = {}  # token -> expires at
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (path, params + body)
        self.token_fetches = 0
        self._calls: dict[str, deque[float]] = {}
        self._welcome: dict[str, bool] = {}  # welcome_code -> used
        self._join_ways: dict[str, dict[str, Any]] = {}  # config_id -> join_way
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A client killed mid-request (the crash tests do that) is not the stand-in's error.
        self._server.handle_error = lambda *_a: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def api_base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PREFIX}"

    def start(self) -> StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def calls_to(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def new_welcome_code(self) -> str:
        code = "WELCOMECODE" + pysecrets.token_hex(8)
        self._welcome[code] = False
        return code

    # --- dispatch -----------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *_args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                url = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                body: dict[str, Any] = {}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if method == "POST":
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        body = {"__bad_json__": True}
                if not url.path.startswith(PREFIX):
                    self._send(404, b"not found")
                    return
                path = url.path[len(PREFIX) :]
                answer = standin.dispatch(method, path, params, body)
                self._send(200, json.dumps(answer, ensure_ascii=False).encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        return Handler

    def dispatch(
        self, method: str, path: str, params: dict[str, str], body: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            if path == "gettoken":
                return self._gettoken(params)
            handler = ROUTES.get((method, path))
            if handler is None:
                return {
                    "errcode": 404 if (method, path) not in _ANY_METHOD else 43001,
                    "errmsg": "not found",
                }
            self._check_call(path, params, body)
            result = handler(self, params, body)
        except WecomFault as fault:
            return {"errcode": fault.code, "errmsg": errmsg(fault.code)}
        return {"errcode": 0, "errmsg": "ok", **result}

    def _gettoken(self, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            if params.get("corpid") != self.sc.corp_id:
                raise WecomFault(40013)
            if params.get("corpsecret") != self.sc.secret:
                raise WecomFault(40001)
            self.token_fetches += 1
            token = pysecrets.token_urlsafe(48)
            self.tokens[token] = self.clock() + self.token_lifetime
            return {
                "errcode": 0,
                "errmsg": "ok",
                "access_token": token,
                "expires_in": self.token_lifetime,
            }

    def _check_call(self, path: str, params: dict[str, str], body: dict[str, Any]) -> None:
        f = self.faults
        if f.delay:
            time.sleep(f.delay)
        with self._lock:
            self.requests.append((path, {**params, **body}))
            token = params.get("access_token")
            if not token:
                raise WecomFault(41001)
            expires = self.tokens.get(token)
            if expires is None:
                raise WecomFault(40014)
            if expires <= self.clock():
                raise WecomFault(42001)
            if f.revoke_after is not None:
                if f.revoke_after <= 0:
                    f.revoke_after = None
                    self.tokens.clear()
                    raise WecomFault(f.revoke_code)
                f.revoke_after -= 1
            if f.busy > 0:
                f.busy -= 1
                raise WecomFault(-1)
            if f.throttle > 0 and f.throttle_path in (None, path):
                f.throttle -= 1
                raise WecomFault(f.throttle_code)
            if path in f.forbidden:
                raise WecomFault(48002)
            window = self._calls.setdefault(path, deque())
            now = self.clock()
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.per_minute:
                raise WecomFault(45009)
            window.append(now)
        if f.hook is not None:
            f.hook(path, body)

    # --- endpoints ----------------------------------------------------------------------

    def follow_user_list(self, _p: dict[str, str], _b: dict[str, Any]) -> dict[str, Any]:
        return {"follow_user": list(self.sc.staff)}

    def batch_get_by_user(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        users = b.get("userid_list")
        if not isinstance(users, list) or not 1 <= len(users) <= 100:
            raise WecomFault(40058)
        limit = _limit(b.get("limit", 50), 100)
        for u in users:
            if u not in self.sc.staff:
                raise WecomFault(60011)
        with self._lock:
            rows = sorted(
                (r for r in self.sc.relations.values() if r.userid in set(users)),
                key=lambda r: (r.userid, r.external_userid),
            )
        start = _cursor(b.get("cursor"))
        page = rows[start : start + limit]
        nxt = _encode_cursor(start + limit) if start + limit < len(rows) else ""
        out = []
        for r in page:
            c = self.sc.customers[r.external_userid]
            contact: dict[str, Any] = {
                "external_userid": c.external_userid,
                "name": c.name,
                "avatar": f"http://wx.qlogo.cn/mmhead/{c.external_userid}/0",
                "type": c.type,
                "gender": c.gender,
            }
            if c.unionid:
                contact["unionid"] = c.unionid
            out.append(
                {
                    "external_contact": contact,
                    "follow_info": {
                        "userid": r.userid,
                        "remark": r.remark,
                        "description": "",
                        "createtime": r.createtime,
                        "tag_id": list(r.tag_id),
                        "remark_mobiles": [],
                        "add_way": r.add_way,
                        "oper_userid": r.userid,
                        **({"state": r.state} if r.state else {}),
                    },
                }
            )
        return {"external_contact_list": out, "next_cursor": nxt}

    def groupchat_list(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        limit = b.get("limit")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise WecomFault(40058)
        status_filter = b.get("status_filter", 0)
        owners = (b.get("owner_filter") or {}).get("userid_list")
        if self.faults.owner_filter_required and not owners:
            raise WecomFault(81017)
        with self._lock:
            chats = sorted(self.sc.chats.values(), key=lambda c: c.chat_id)
        chats = [
            c
            for c in chats
            if (status_filter == 0 or c.status == status_filter)
            and (not owners or c.owner in owners)
        ]
        start = _cursor(b.get("cursor"))
        page = chats[start : start + limit]
        nxt = _encode_cursor(start + limit) if start + limit < len(chats) else ""
        return {
            "group_chat_list": [{"chat_id": c.chat_id, "status": c.status} for c in page],
            "next_cursor": nxt,
        }

    def groupchat_get(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            chat = self.sc.chats.get(str(b.get("chat_id")))
            if chat is None:
                raise WecomFault(40050)  # invalid chat id
            members = []
            for m in chat.members.values():
                row: dict[str, Any] = {
                    "userid": m.userid,
                    "type": m.type,
                    "join_time": m.join_time,
                    "join_scene": m.join_scene,
                    "group_nickname": "",
                }
                if m.invitor:
                    row["invitor"] = {"userid": m.invitor}
                if b.get("need_name") == 1:
                    row["name"] = m.name
                if m.type == 2 and m.unionid:
                    row["unionid"] = m.unionid
                if m.state:
                    row["state"] = m.state
                members.append(row)
            return {
                "group_chat": {
                    "chat_id": chat.chat_id,
                    "name": chat.name,
                    "owner": chat.owner,
                    "create_time": chat.create_time,
                    "notice": chat.notice,
                    "member_list": members,
                    "admin_list": [],
                    "member_version": str(chat.member_version),
                }
            }

    def corp_tag_list(self, _p: dict[str, str], _b: dict[str, Any]) -> dict[str, Any]:
        return {"tag_group": json.loads(json.dumps(self.sc.tags))}

    def add_contact_way(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        if b.get("type") not in (1, 2) or b.get("scene") not in (1, 2):
            raise WecomFault(40058)
        if len(str(b.get("state", ""))) > 30:
            raise WecomFault(40058)
        for u in b.get("user") or []:
            if u not in self.sc.staff:
                raise WecomFault(60011)
        cid = "cw" + pysecrets.token_hex(12)
        qr = f"http://p.qpic.cn/wwhead/{cid}/0" if b.get("scene") == 2 else ""
        return {"config_id": cid, **({"qr_code": qr} if qr else {})}

    def add_join_way(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        ids = b.get("chat_id_list")
        if b.get("scene") not in (1, 2) or not isinstance(ids, list) or not 1 <= len(ids) <= 5:
            raise WecomFault(40058)
        if len(str(b.get("state", ""))) > 30:
            raise WecomFault(40058)
        for c in ids:
            if c not in self.sc.chats:
                raise WecomFault(60011)
        cid = "jw" + pysecrets.token_hex(12)
        with self._lock:
            self._join_ways[cid] = {
                "config_id": cid,
                "scene": b["scene"],
                "remark": b.get("remark", ""),
                "auto_create_room": b.get("auto_create_room", 1),
                "room_base_name": b.get("room_base_name", ""),
                "room_base_id": b.get("room_base_id", 0),
                "chat_id_list": list(ids),
                "qr_code": f"https://wework.qpic.cn/wwpic/{cid}/0" if b["scene"] == 2 else "",
                "state": b.get("state", ""),
            }
        return {"config_id": cid}

    def get_join_way(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            way = self._join_ways.get(str(b.get("config_id", "")))
        if way is None:
            raise WecomFault(40058)
        return {"join_way": dict(way)}

    def send_welcome_msg(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        code = str(b.get("welcome_code", ""))
        with self._lock:
            if self._welcome.get(code, True):
                raise WecomFault(41051)
            self._welcome[code] = True
        return {}

    def add_msg_template(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        chat_type = b.get("chat_type", "single")
        sender = b.get("sender")
        if len(b.get("attachments") or []) > 9 or chat_type not in ("single", "group"):
            raise WecomFault(40058)
        if sender is not None and sender not in self.sc.staff:
            raise WecomFault(60011)
        fail: list[str] = []
        if chat_type == "single":
            for ext in b.get("external_userid") or []:
                if sender and (sender, ext) not in self.sc.relations:
                    fail.append(ext)
        return {"fail_list": fail, "msgid": "msg" + pysecrets.token_hex(10)}

    def mark_tag(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        rel = self.sc.relations.get((str(b.get("userid")), str(b.get("external_userid"))))
        if rel is None:
            raise WecomFault(84061)
        known = {t["id"] for g in self.sc.tags for t in g["tag"]}
        add, remove = b.get("add_tag") or [], b.get("remove_tag") or []
        if not add and not remove:
            raise WecomFault(40058)
        for t in [*add, *remove]:
            if t not in known:
                raise WecomFault(40068)
        rel.tag_id = sorted((set(rel.tag_id) | set(add)) - set(remove))
        return {}

    def groupchat_statistic(self, _p: dict[str, str], b: dict[str, Any]) -> dict[str, Any]:
        begin, end = b.get("day_begin_time"), b.get("day_end_time", b.get("day_begin_time"))
        if not isinstance(begin, int) or not isinstance(end, int) or end < begin:
            raise WecomFault(40058)
        owners = (b.get("owner_filter") or {}).get("userid_list") or self.sc.staff
        stop = end + 86400
        items = []
        for owner in owners:
            chats = [c for c in self.sc.chats.values() if c.owner == owner]
            joins = [m for c in chats for m in c.members.values() if begin <= m.join_time < stop]
            items.append(
                {
                    "owner": owner,
                    "data": {
                        "new_chat_cnt": sum(1 for c in chats if begin <= c.create_time < stop),
                        "chat_total": len(chats),
                        "chat_has_msg": 0,
                        "new_member_cnt": len(joins),
                        "member_total": sum(len(c.members) for c in chats),
                        "member_has_msg": 0,
                        "msg_total": 0,
                        "migrate_trainee_chat_cnt": 0,
                    },
                }
            )
        return {"total": len(items), "next_offset": len(items), "items": items}


def _limit(value: Any, most: int) -> int:
    if not isinstance(value, int) or not 1 <= value <= most:
        raise WecomFault(40058)
    return value


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _cursor(value: Any) -> int:
    if not value:
        return 0
    try:
        text = base64.urlsafe_b64decode(str(value).encode()).decode()
        if not text.startswith("o:"):
            raise ValueError
        return int(text[2:])
    except ValueError:
        raise WecomFault(40058) from None


Route = Callable[[StandIn, dict[str, str], dict[str, Any]], dict[str, Any]]
ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "externalcontact/get_follow_user_list"): StandIn.follow_user_list,
    ("POST", "externalcontact/batch/get_by_user"): StandIn.batch_get_by_user,
    ("POST", "externalcontact/groupchat/list"): StandIn.groupchat_list,
    ("POST", "externalcontact/groupchat/get"): StandIn.groupchat_get,
    ("POST", "externalcontact/get_corp_tag_list"): StandIn.corp_tag_list,
    ("POST", "externalcontact/add_contact_way"): StandIn.add_contact_way,
    ("POST", "externalcontact/groupchat/add_join_way"): StandIn.add_join_way,
    ("POST", "externalcontact/groupchat/get_join_way"): StandIn.get_join_way,
    ("POST", "externalcontact/send_welcome_msg"): StandIn.send_welcome_msg,
    ("POST", "externalcontact/add_msg_template"): StandIn.add_msg_template,
    ("POST", "externalcontact/mark_tag"): StandIn.mark_tag,
    ("POST", "externalcontact/groupchat/statistic"): StandIn.groupchat_statistic,
}
_ANY_METHOD = {(m, p) for _m, p in ROUTES for m in ("GET", "POST")}


# --- the callback sender --------------------------------------------------------------------


def encrypt_callback(
    xml: str, *, token: str, encoding_aes_key: str, corp_id: str, timestamp: int | None = None
) -> tuple[dict[str, str], str]:
    """The query (msg_signature, timestamp, nonce) and body WeCom POSTs for the plaintext `xml`."""
    from wechatpy.enterprise.crypto import WeChatCrypto
    from wechatpy.utils import to_text

    crypto = WeChatCrypto(token, encoding_aes_key, corp_id)
    nonce = str(random.randrange(10**8, 10**9))
    ts = str(timestamp if timestamp is not None else int(time.time()))
    envelope = crypto.encrypt_message(xml, nonce, ts)
    # encrypt_message answers the passive-reply shape; WeCom's POST carries ToUserName,
    # Encrypt and AgentID, with the signature in the query.
    from defusedxml import ElementTree

    root = ElementTree.fromstring(envelope)
    encrypt = to_text(root.findtext("Encrypt"))
    signature = to_text(root.findtext("MsgSignature"))
    body = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    )
    return {"msg_signature": signature, "timestamp": ts, "nonce": nonce}, body


def send_callback(
    url: str,
    xml: str,
    *,
    token: str,
    encoding_aes_key: str,
    corp_id: str,
    http: httpx.Client | None = None,
    retries: int = 3,
    timeout: float = 5.0,
) -> list[int]:
    """Deliver `xml` like WeCom: encrypted, signed, POSTed; re-sent (the same envelope) up to
    `retries` times while the answer is not HTTP 200 within `timeout` s. Returns each attempt's
    status (0 = no answer in time)."""
    params, body = encrypt_callback(
        xml, token=token, encoding_aes_key=encoding_aes_key, corp_id=corp_id
    )
    client = http or httpx.Client()
    statuses: list[int] = []
    try:
        for _ in range(1 + retries):
            try:
                resp = client.post(
                    url,
                    params=params,
                    content=body.encode(),
                    timeout=timeout,
                    headers={"Content-Type": "text/xml"},
                )
                statuses.append(resp.status_code)
            except httpx.HTTPError:
                statuses.append(0)
            if statuses[-1] == 200:
                break
    finally:
        if http is None:
            client.close()
    return statuses


def _cdata(**fields: str | int | None) -> str:
    """XML elements in WeCom's style: strings in CDATA, numbers bare, None left out."""
    out = []
    for name, value in fields.items():
        if value is None:
            continue
        text = str(value) if isinstance(value, int) else f"<![CDATA[{value}]]>"
        out.append(f"<{name}>{text}</{name}>")
    return "".join(out)


def event_xml(corp_id: str, create_time: int, event: str, change_type: str, body: str) -> str:
    """A decrypted customer-contact event: the header, then `body` (already XML)."""
    head = _cdata(ToUserName=corp_id, FromUserName="sys", CreateTime=create_time, MsgType="event")
    return f"<xml>{head}{_cdata(Event=event, ChangeType=change_type)}{body}</xml>"


def external_contact_xml(
    change_type: str,
    *,
    corp_id: str,
    userid: str,
    external_userid: str,
    create_time: int,
    state: str | None = None,
    welcome_code: str | None = None,
) -> str:
    """A change_external_contact event as WeCom sends it (decrypted)."""
    body = _cdata(
        UserID=userid, ExternalUserID=external_userid, State=state, WelcomeCode=welcome_code
    )
    return event_xml(corp_id, create_time, "change_external_contact", change_type, body)


def external_chat_xml(
    change_type: str,
    *,
    corp_id: str,
    chat_id: str,
    create_time: int,
    update_detail: str | None = None,
    join_scene: int | None = None,
    quit_scene: int | None = None,
    members: list[str] | None = None,
    last_ver: str = "",
    cur_ver: str = "",
) -> str:
    """A change_external_chat event as WeCom sends it (decrypted)."""
    body = _cdata(
        ChatId=chat_id, UpdateDetail=update_detail, JoinScene=join_scene, QuitScene=quit_scene
    )
    if members is not None:
        items = "".join(_cdata(Item=m) for m in members)
        body += f"<MemChangeCnt>{len(members)}</MemChangeCnt><MemChangeList>{items}</MemChangeList>"
        body += _cdata(LastMemVer=last_ver, CurMemVer=cur_ver)
    return event_xml(corp_id, create_time, "change_external_chat", change_type, body)


def running(scenario: Scenario, **options: Any) -> Iterator[StandIn]:
    """A started stand-in for a `with`-less fixture: `yield from running(sc)`."""
    server = StandIn(scenario, **options).start()
    try:
        yield server
    finally:
        server.stop()
