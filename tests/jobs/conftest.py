"""Job-engine fixtures: the queue on this test's SQLite file, and a throwaway Redis server.

`redis_url` finds Debian's `redis-server` (installing the package with apt when it is
missing, as tests/pg.py does for PostgreSQL), starts it on 127.0.0.1 on a free port with
persistence off, and stops it at the end of the session; a watchdog stops it if the test
process dies first.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from quanzi.config import get_settings
from quanzi.jobs import huey, reset_backend

INSTALL_LOCK = Path(tempfile.gettempdir()) / "quanzi-test-redis-install.lock"

_WATCHDOG = r"""
import os, signal, sys, time
parent, child = int(sys.argv[1]), int(sys.argv[2])
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(0.5)
try:
    os.kill(child, signal.SIGTERM)
except ProcessLookupError:
    pass
"""


@pytest.fixture
def sqlite_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The job queue in this test's data directory (the embedded backend), emptied after."""
    monkeypatch.delenv("QUANZI_REDIS_URL", raising=False)
    get_settings.cache_clear()
    reset_backend()
    yield
    huey.flush()
    reset_backend()


def _install_redis() -> str:
    with open(INSTALL_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers: one apt-get at a time
        found = shutil.which("redis-server")
        if found:
            return found
        if not shutil.which("apt-get") or os.geteuid() != 0:
            pytest.fail(
                "redis-server is missing and cannot be installed here (needs apt-get as root)"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
        for cmd in (install, ["apt-get", "update", "-q"], install):
            print(f"[quanzi tests] {' '.join(cmd)}", file=sys.stderr, flush=True)
            done = subprocess.run(
                cmd, check=False, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
            )
            if cmd is install and done.returncode == 0:
                break
        else:
            pytest.fail(f"apt-get install redis-server failed:\n{done.stdout}\n{done.stderr}")
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        pytest.fail("installed redis-server but found no binary")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], client: redis.Redis, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server") or _install_redis()
    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(5):  # the free port may be taken before the server binds it
        port = _free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--daemonize",
                "no",
                "--logfile",
                str(workdir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        if _wait_ready(proc, client):
            break
        client.close()
        proc.kill()
        proc.wait()
    else:
        log = (
            (workdir / "redis.log").read_text(errors="replace")
            if (workdir / "redis.log").exists()
            else ""
        )
        pytest.fail(f"redis-server did not start:\n{log}")
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(proc.pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        watchdog.kill()
        watchdog.wait()


@pytest.fixture
def redis_queue(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The job queue on the session's Redis (QUANZI_REDIS_URL set), emptied after."""
    monkeypatch.setenv("QUANZI_REDIS_URL", redis_url)
    get_settings.cache_clear()
    reset_backend()
    huey.flush()
    yield redis_url
    huey.flush()
    reset_backend()
