"""The public side's speed, beside a hello-world route of the same server in the same run.

    .venv/bin/python bench/landing.py [--seconds 10] [--connections 16] [--check]

Starts the app as `quanzi serve` runs it (bench/landing_server.py: same app, same uvicorn
settings, plus GET /__bench/hello) on a fresh SQLite file, loads it over loopback with `wrk`
(a Python load generator when wrk is missing, which then shares the CPU with the server: said
in the output), one phase of --seconds each:

- hello-world, before and after the others (the baseline is their mean);
- GET /p/<slug>?c=flyer, the published landing page (plain, and gzip as browsers ask);
- GET /c/<code> of a link target and of a landing target (302);
- POST /p/<slug>/lead: distinct valid CN phone numbers, each from its own client address
  (X-Forwarded-For from loopback, a trusted proxy by default); the server is killed with
  SIGKILL at 60 % of the phase; then every acknowledged (200) lead must be in the database.

Server time of the redirects (and the page) is measured in-process as well: the ASGI app
called directly, no HTTP, median and 99th percentile of --calls calls each. See
bench/README.md for the figures and what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SLUG = "bench-page"
CONTENT: dict[str, Any] = {
    "headline": "0-3 岁育儿资料包免费领",
    "hook": "扫码进群，每周三晚 8 点儿科医生直播答疑，入群即送 100 页早教游戏合集",
    "benefits": [
        "早教游戏 100 例（按月龄分好）",
        "6-24 月辅食食谱与添加顺序表",
        "疫苗接种时间表与注意事项",
        "每周一次专家直播答疑",
        "群内宝妈互助打卡",
    ],
    "testimonials": [
        "资料很实用，宝宝 8 个月，辅食表直接照着做。——王女士",
        "直播答疑解决了我好几个问题，群里氛围也好。——李先生",
        "打卡 21 天，宝宝的作息规律多了。——陈女士",
    ],
    "stock_left": 37,
    "fields": [{"key": "baby_age", "label": "宝宝月龄", "required": False}],
    "group_qr_url": "/static/favicon.svg",
    "cta": "立即免费领取",
    "consent_text": "我已阅读并同意《隐私政策》，同意圈子使用我的手机号联系我发放资料（v1）",
}
PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152"]
PREFIXES += ["155", "156", "157", "158", "159", "177", "180", "186", "187", "188", "189"]


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad_status: int
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def valid_phones(n: int, seed: int = 7) -> list[str]:
    """n distinct CN mobile numbers that phonenumbers says are valid (not merely 11 digits)."""
    import phonenumbers

    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        raw = rng.choice(PREFIXES) + f"{rng.randrange(10**8):08d}"
        if raw not in out and phonenumbers.is_valid_number(phonenumbers.parse(raw, "CN")):
            out.add(raw)
    return sorted(out, key=lambda _p: rng.random())


def seed_database() -> dict[str, Any]:
    from quanzi.acquisition import channels, landing
    from quanzi.core.workspaces.service import get_or_create_workspace
    from quanzi.db.engine import get_engine, session_scope

    engine = get_engine()
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, "bench").id
        page = landing.create_page(s, ws, "育儿资料包", CONTENT, slug=SLUG)
        version = landing.publish(s, ws, page.id, "bench@example.com")
        link = channels.create_code(
            s,
            ws,
            name="Flyer",
            channel="flyer",
            target_kind="link",
            target={"url": "https://example.com/offer"},
        ).code
        to_page = channels.create_code(
            s, ws, name="Live", channel="live", target_kind="landing", target={"page": SLUG}
        ).code
        html_bytes = len(version.html.encode())
    return {"ws": ws, "link": link, "landing": to_page, "html_bytes": html_bytes}


def start_server(out: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (out / "server.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "landing_server.py"), str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {out / 'server.log'}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start within 90 s")


# --- load generators ---------------------------------------------------------------------------


def wrk(url: str, seconds: int, connections: int, script: str, *extra: str) -> Run:
    """One wrk run; its figures from the line the lua script's done() prints."""
    threads = connections if script == "leads.lua" else 1
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    cmd += ["-s", str(HERE / "wrk" / script), url]
    if extra:
        cmd += ["--", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return parse_wrk(done.stdout)


def parse_wrk(stdout: str) -> Run:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("QZ ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{stdout}")
    n, dur, p50, p99, bad, errors = (int(x) for x in line.split()[1:])
    return Run(n, dur / 1e6, p50 / 1000, p99 / 1000, bad, errors)


async def _py_load(
    url: str,
    seconds: float,
    connections: int,
    phones: list[list[str]] | None = None,
    acked: list[str] | None = None,
) -> Run:
    """The fallback generator: `connections` asyncio clients for `seconds` (GET, or POSTs of
    leads when `phones` is given, appending each acknowledged phone to `acked`)."""
    import httpx

    latencies: list[float] = []
    bad = errors = 0
    began = time.monotonic()
    stop = began + seconds

    async def client(i: int) -> None:
        nonlocal bad, errors
        sent = 0
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    if phones is None:
                        r = await http.get(url)
                    else:
                        phone = phones[i][sent % len(phones[i])]
                        sent += 1
                        r = await http.post(
                            url,
                            content=f"name=bench&phone={phone}&consent=1",
                            headers={
                                "content-type": "application/x-www-form-urlencoded",
                                "x-forwarded-for": f"198.18.{i}.{sent % 256}",
                            },
                        )
                        if r.status_code == 200 and acked is not None:
                            acked.append(phone)
                except httpx.HTTPError:
                    errors += 1
                    await asyncio.sleep(0.05)
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code >= 400:
                    bad += 1

    await asyncio.gather(*(client(i) for i in range(connections)))
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return Run(len(latencies), time.monotonic() - began, pick(0.5), pick(0.99), bad, errors)


def load(url: str, seconds: int, connections: int) -> Run:
    if shutil.which("wrk"):
        return wrk(url, seconds, connections, "report.lua")
    return asyncio.run(_py_load(url, seconds, connections))


def lead_phase(
    base: str, proc: subprocess.Popen[bytes], seconds: int, connections: int, out: Path
) -> tuple[Run, list[str], float]:
    """Fire leads, SIGKILL the server at 60 % of the phase; (run, acknowledged phones, time
    from the start to the kill)."""
    per = max(200, seconds * 2000 // connections)
    phones = valid_phones(per * connections)
    chunks = [phones[i * per : (i + 1) * per] for i in range(connections)]
    url = f"{base}/p/{SLUG}/lead?c=flyer"
    kill_after = seconds * 0.6
    if shutil.which("wrk"):
        folder = out / "leads"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for i, chunk in enumerate(chunks):
            (folder / f"phones-{i}.txt").write_text("\n".join(chunk) + "\n")
        cmd = ["wrk", f"-t{connections}", f"-c{connections}", f"-d{seconds}s"]
        cmd += ["--timeout", "5s", "-s", str(HERE / "wrk" / "leads.lua"), url, "--", str(folder)]
        began = time.monotonic()
        gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        time.sleep(kill_after)
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic() - began
        stdout, _ = gen.communicate()
        run = parse_wrk(stdout)
        acked = [
            line
            for i in range(connections)
            if (folder / f"acked-{i}.txt").exists()
            for line in (folder / f"acked-{i}.txt").read_text().split()
        ]
        return run, acked, killed_at

    acked_py: list[str] = []

    async def go() -> tuple[Run, float]:
        began = time.monotonic()
        task = asyncio.create_task(_py_load(url, seconds, connections, chunks, acked_py))
        await asyncio.sleep(kill_after)
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic() - began
        return await task, killed

    run, killed_at = asyncio.run(go())
    return run, acked_py, killed_at


def stored_phones(ws: int, phones: list[str]) -> tuple[int, int]:
    """(how many of `phones` have a lead in the database, leads in the database)."""
    from sqlalchemy import func, select

    from quanzi.acquisition.landing import valid_phone
    from quanzi.acquisition.models import Lead
    from quanzi.config import get_settings
    from quanzi.core.workspaces.service import workspace_key
    from quanzi.db.engine import make_engine, session_scope

    engine = make_engine(get_settings().resolved_database_url())  # a fresh look after the kill
    with session_scope(engine, read_only=True) as s:
        key = workspace_key(s, ws)
        digests = set(s.scalars(select(Lead.phone_digest).where(Lead.workspace_id == ws)))
        total = int(s.scalar(select(func.count()).select_from(Lead)) or 0)
    engine.dispose()
    found = sum(1 for p in phones if key.blind_index("phone", valid_phone(p) or p) in digests)
    return found, total


# --- server time, in-process ---------------------------------------------------------------------


def server_times(paths: list[str], calls: int) -> dict[str, tuple[float, float, float]]:
    """path -> (median, p99 wall time, p99 CPU time of the thread) in ms of the ASGI app called
    directly (no HTTP, no socket). On a busy machine the wall time includes waiting for a CPU;
    the CPU time is the server's own work."""
    from landing_server import with_hello

    from quanzi.db.engine import get_engine
    from quanzi.web.app import create_app

    app = create_app(get_engine())
    with_hello(app)

    async def call(path: str) -> int:
        raw, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": raw,
            "raw_path": raw.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"Mozilla/5.0 (iPhone)")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def measure() -> dict[str, tuple[float, float, float]]:
        out = {}
        for path in paths:
            for _ in range(200):
                await call(path)
            wall, cpu = [], []
            for _ in range(calls):
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                status = await call(path)
                cpu.append((time.thread_time_ns() - c0) / 1e6)
                wall.append((time.perf_counter_ns() - t0) / 1e6)
                assert status in (200, 302), (path, status)
            wall.sort()
            cpu.sort()
            p99 = int(0.99 * len(wall)) - 1
            out[path] = (statistics.median(wall), wall[p99], cpu[p99])
        return out

    return asyncio.run(measure())


# --- the run -------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="length of each phase (10)")
    ap.add_argument("--connections", type=int, default=16, help="concurrent connections (16)")
    ap.add_argument(
        "--lead-connections",
        type=int,
        default=64,
        help="concurrent lead submitters, one wrk thread each (64): many visitors at once",
    )
    ap.add_argument("--calls", type=int, default=3000, help="in-process calls per route (3000)")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "landing")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()

    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    (out / "data").mkdir(parents=True)
    env = {
        **os.environ,
        "QUANZI_DATA_DIR": str(out / "data"),
        "QUANZI_DATABASE_URL": f"sqlite:///{out / 'landing.sqlite3'}",
    }
    env.pop("QUANZI_TRUSTED_PROXIES", None)  # the default (loopback) is what the bench needs
    os.environ.update({k: env[k] for k in ("QUANZI_DATA_DIR", "QUANZI_DATABASE_URL")})
    sys.path.insert(0, str(HERE))

    import importlib.util

    import uvicorn

    fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m)]
    generator = "wrk" if shutil.which("wrk") else "Python asyncio + httpx (no wrk: shares the CPU)"
    seeded = seed_database()
    print(
        f"uvicorn {uvicorn.__version__} with {' + '.join(fast) or 'h11 + asyncio'}; "
        f"load: {generator}, {args.connections} connections, {args.seconds} s per phase; "
        f"page HTML {seeded['html_bytes']:,} bytes; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs",
        flush=True,
    )
    proc, base = start_server(out, env)
    s, c = args.seconds, args.connections
    page = f"/p/{SLUG}?c=flyer"
    runs: dict[str, Run] = {}
    try:
        runs["hello1"] = load(f"{base}/__bench/hello", s, c)
        print(f"  hello-world: {runs['hello1'].rate:,.0f}/s", flush=True)
        runs["page"] = load(f"{base}{page}", s, c)
        print(f"  landing page: {runs['page'].rate:,.0f}/s", flush=True)
        if shutil.which("wrk"):
            runs["page_gz"] = wrk_gzip(f"{base}{page}", s, c)
            print(f"  landing page, gzip: {runs['page_gz'].rate:,.0f}/s", flush=True)
        runs["link"] = load(f"{base}/c/{seeded['link']}", s, c)
        print(f"  /c/ link: {runs['link'].rate:,.0f}/s", flush=True)
        runs["to_page"] = load(f"{base}/c/{seeded['landing']}", s, c)
        print(f"  /c/ landing: {runs['to_page'].rate:,.0f}/s", flush=True)
        runs["hello2"] = load(f"{base}/__bench/hello", s, c)
        print(f"  hello-world again: {runs['hello2'].rate:,.0f}/s", flush=True)
        lead_run, acked, killed_at = lead_phase(base, proc, s, args.lead_connections, out)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    found, total = stored_phones(seeded["ws"], acked)
    lead_rate = len(acked) / killed_at if killed_at else 0.0
    print(f"  leads: {len(acked):,} acknowledged in {killed_at:.1f} s, then SIGKILL", flush=True)

    link, to_page = f"/c/{seeded['link']}", f"/c/{seeded['landing']}"
    times = server_times(["/__bench/hello", page, link, to_page], args.calls)
    hello = (runs["hello1"].rate + runs["hello2"].rate) / 2
    rows = [
        Row("hello-world GET /__bench/hello (baseline)", runs["hello1"], hello, "/__bench/hello"),
        Row(
            "GET /p/<slug>?c=flyer (landing page)",
            runs["page"],
            runs["page"].rate,
            page,
            "≥ 1,000/s and ≥ 0.5 × hello",
            runs["page"].rate >= max(1000, 0.5 * hello) and runs["page"].bad_status == 0,
        ),
    ]
    if "page_gz" in runs:
        gz = runs["page_gz"]
        rows.append(Row("GET /p/<slug>?c=flyer, Accept-Encoding: gzip", gz, gz.rate))
    for name, key, path in (
        ("GET /c/<code> → link (302)", "link", link),
        ("GET /c/<code> → landing page (302)", "to_page", to_page),
    ):
        good = times[path][2] < 5 and runs[key].bad_status == 0
        target = "server time < 5 ms (p99 CPU)"
        rows.append(Row(name, runs[key], runs[key].rate, path, target, good))
    rows.append(
        Row(
            "POST /p/<slug>/lead (until SIGKILL)",
            lead_run,
            lead_rate,
            target="≥ 300/s, every acked lead stored",
            good=lead_rate >= 300 and found == len(acked),
        )
    )

    print()
    print(
        "| route | req/s | latency p50 / p99 (wrk) | ratio to hello | "
        "server time p50 / p99 / p99 CPU (in-process) | target | result |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(r.line(hello, times))
    print()
    print(
        f"hello-world before / after: {runs['hello1'].rate:,.0f} / {runs['hello2'].rate:,.0f} "
        f"req/s. Leads: {len(acked):,} acknowledged (200) in the {killed_at:.1f} s before the "
        f"SIGKILL; {found:,} of them in the database after it, missing {len(acked) - found}; "
        f"{total - found:,} more stored but not acknowledged (in flight at the kill)."
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine)")
    bad = {k: (r.bad_status, r.socket_errors) for k, r in runs.items() if r.bad_status}
    if bad:
        print(f"non-2xx/3xx answers (count, socket errors): {bad}")
    ok = all(r.good is not False for r in rows)
    return 1 if args.check and not ok else 0


@dataclass
class Row:
    name: str
    run: Run
    rate: float
    path: str | None = None  # measured in-process too
    target: str = "—"
    good: bool | None = None

    def line(self, hello: float, times: dict[str, tuple[float, float, float]]) -> str:
        lat = f"{self.run.p50_ms:.2f} / {self.run.p99_ms:.2f} ms"
        inproc = "—"
        if self.path is not None:
            p50, p99, cpu99 = times[self.path]
            inproc = f"{p50:.2f} / {p99:.2f} / {cpu99:.2f} ms"
        verdict = "—" if self.good is None else ("PASS" if self.good else "FAIL")
        return (
            f"| {self.name} | {self.rate:,.0f} | {lat} | {self.rate / hello:.2f} | {inproc} "
            f"| {self.target} | {verdict} |"
        )


def wrk_gzip(url: str, seconds: int, connections: int) -> Run:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    cmd += ["-H", "Accept-Encoding: gzip, deflate, br", "-s", str(HERE / "wrk" / "report.lua")]
    done = subprocess.run([*cmd, url], capture_output=True, text=True, check=False)
    return parse_wrk(done.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
