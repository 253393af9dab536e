"""A throwaway PostgreSQL server for the test suite, installed (apt) and started when absent.

`PostgresServer.start()` finds Debian's server binaries (installing the `postgresql`
package when there are none), runs `initdb` into a temporary directory as the `postgres`
system user (initdb refuses root), and starts it on 127.0.0.1 on a free port with settings
that trade durability for speed. A watchdog process stops the server and removes its
directory if the test process dies without cleaning up (kill -9, a crashed xdist worker).

`python tests/pg.py` starts one by hand and prints its URL, for poking at it with psql.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

ROLE = "quanzi"
ROLE_PASSWORD = "quanzi"
SUPERUSER = "postgres"
SYSTEM_USER = "postgres"
INSTALL_LOCK = Path(tempfile.gettempdir()) / "quanzi-test-postgresql-install.lock"

# Durability is worthless for a server that lives as long as one test run.
TEST_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
    "timezone": "'UTC'",
}

# Run by the watchdog: waits for the test process to exit, then stops the server and
# deletes its directory, so nothing is left behind whatever way the test process ended.
_WATCHDOG = r"""
import os, shutil, subprocess, sys, time
parent, base, *stop = sys.argv[1:]
while True:
    try:
        os.kill(int(parent), 0)
    except ProcessLookupError:
        break
    except PermissionError:
        pass
    time.sleep(0.5)
subprocess.run(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=base)
shutil.rmtree(base, ignore_errors=True)
"""


class PostgresUnavailable(RuntimeError):
    """The server could not be installed or started; the message says why and what to do."""


def _is_root() -> bool:
    return os.geteuid() == 0


def _privileged(cmd: list[str]) -> list[str]:
    """`cmd` run as root: directly when we are root, else through passwordless sudo."""
    if _is_root():
        return cmd
    if shutil.which("sudo"):
        return ["sudo", "-n", *cmd]
    raise PostgresUnavailable(
        f"need root to run {' '.join(cmd)!r} and sudo is not available; install Debian's "
        "postgresql package by hand or set QUANZI_TEST_PG_URL to an existing server"
    )


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl."""
    found = []
    for pg_ctl in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        bindir = Path(pg_ctl).parent
        version = bindir.parent.name
        if (bindir / "initdb").exists() and version.split(".")[0].isdigit():
            found.append((int(version.split(".")[0]), bindir))
    return max(found)[1] if found else None


def install_postgresql() -> Path:
    """Install Debian's `postgresql` package; one process at a time (xdist workers race)."""
    with open(INSTALL_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bindir = find_bindir()
        if bindir is not None:  # another worker installed it while we waited
            return bindir
        if not shutil.which("apt-get"):
            raise PostgresUnavailable("no PostgreSQL server found and no apt-get to install one")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
        ):
            print(f"[quanzi tests] {' '.join(cmd)}", file=sys.stderr, flush=True)
            done = subprocess.run(
                _privileged(cmd), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise PostgresUnavailable(
                    f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                )
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("installed postgresql but found no /usr/lib/postgresql/*/bin")
    return bindir


def _ensure_system_user() -> None:
    """The `postgres` user exists when Debian's package is installed; create it otherwise."""
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _temp_base() -> str:
    """Where the server's files go: memory when it can (CREATE DATABASE is 4-7x faster on
    /dev/shm than on disk here), else a temp dir the `postgres` user can reach."""
    for base in ("/dev/shm", tempfile.gettempdir(), "/tmp"):
        try:
            st, fs = os.stat(base), os.statvfs(base)
        except OSError:
            continue
        reachable = not _is_root() or st.st_mode & 0o001  # TMPDIR may be root-only
        if reachable and os.access(base, os.W_OK) and fs.f_bavail * fs.f_frsize > 2 << 30:
            return base
    return tempfile.gettempdir()


def url_for(
    host: str, port: int, dbname: str, user: str = ROLE, password: str = ROLE_PASSWORD
) -> str:
    return f"postgresql+psycopg://{user}:{password}@{host}:{port}/{dbname}"


@dataclass
class PostgresServer:
    """One server: ours (started by `start()`) or an existing one given by QUANZI_TEST_PG_URL."""

    admin_conninfo: dict[str, object]
    url_prefix: str  # "postgresql+psycopg://role:pw@host:port/" — append a database name
    base: Path | None = None
    _stop_cmd: list[str] = field(default_factory=list)
    _watchdog: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls) -> PostgresServer:
        bindir = find_bindir() or install_postgresql()
        as_user: list[str] = []
        if _is_root():
            _ensure_system_user()
            as_user = ["runuser", "-u", SYSTEM_USER, "--"]
        base = Path(tempfile.mkdtemp(prefix="quanzi-pg-", dir=_temp_base()))
        data, sockets, log = base / "data", base / "sockets", base / "server.log"
        sockets.mkdir(mode=0o700)
        if _is_root():
            entry = pwd.getpwnam(SYSTEM_USER)
            for path in (base, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)

        def run(cmd: list[str]) -> None:
            done = subprocess.run(
                [*as_user, *cmd], cwd=base, stdin=subprocess.DEVNULL, capture_output=True, text=True
            )
            if done.returncode != 0:
                logtext = log.read_text(errors="replace") if log.exists() else ""
                raise PostgresUnavailable(
                    f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{logtext}"
                )

        # immediate: no shutdown checkpoint, the files are deleted next anyway.
        stop_cmd = [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]
        watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(base), *stop_cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ]
        )
        # A free port can be taken between our probe and the server's bind: try a few.
        for attempt in range(5):
            port = _free_port()
            settings = {
                **TEST_SETTINGS,
                "port": str(port),
                "unix_socket_directories": f"'{sockets}'",
            }
            # Appended: on a retry the later port line wins.
            with open(data / "postgresql.conf", "a") as conf:
                conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
            try:
                run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-l",
                        str(log),
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ]
                )
                break
            except PostgresUnavailable:
                if attempt == 4:
                    raise
        server = cls(
            admin_conninfo={
                "host": str(sockets),
                "port": port,
                "user": SUPERUSER,
                "dbname": "postgres",
                "autocommit": True,
            },
            url_prefix=url_for("127.0.0.1", port, ""),
            base=base,
            _stop_cmd=stop_cmd,
            _watchdog=watchdog,
        )
        with server.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(ROLE_PASSWORD)
                )
            )
        return server

    @classmethod
    def existing(cls, url: str) -> PostgresServer:
        """An existing server; `url`'s role must be allowed to create databases."""
        from sqlalchemy.engine import make_url

        u = make_url(url).set(drivername="postgresql+psycopg")
        conninfo = {
            "host": u.host or "localhost",
            "port": u.port or 5432,
            "user": u.username,
            "password": u.password,
            "dbname": u.database or "postgres",
            "autocommit": True,
        }
        prefix = u.set(database="").render_as_string(hide_password=False).rstrip("/") + "/"
        return cls(
            admin_conninfo={k: v for k, v in conninfo.items() if v is not None}, url_prefix=prefix
        )

    def stop(self) -> None:
        if self.base is None:
            return
        subprocess.run(self._stop_cmd, cwd=self.base, stdin=subprocess.DEVNULL, capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
        self.base = None

    @contextlib.contextmanager
    def admin(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        with psycopg.connect(**self.admin_conninfo) as conn:  # type: ignore[arg-type]
            yield conn

    def url(self, dbname: str) -> str:
        return self.url_prefix + dbname

    def create_database(self, prefix: str = "quanzi_test_", template: str = "template0") -> str:
        """A new, uniquely named database owned by the test role; returns its name."""
        name = f"{prefix}{uuid.uuid4().hex[:16]}"
        owner = ROLE if self.base is not None else self.admin_conninfo["user"]
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(template), sql.Identifier(str(owner))
                )
            )
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    server = PostgresServer.start()
    name = server.create_database("quanzi_")
    print(server.url(name), flush=True)
    print(
        f"psql: psql -h {server.admin_conninfo['host']} -p {server.admin_conninfo['port']} "
        f"-U {SUPERUSER} {name}   (Ctrl-C stops the server)",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
