"""A throwaway PostgreSQL cluster for the test suite (``initdb`` + ``pg_ctl`` on 127.0.0.1).

PostgreSQL refuses to run as root. When the tests run as root (they do in CI) the cluster is
initialised and run as the unprivileged system user ``mmsqtest``, created on first use with
``useradd --system --no-create-home``. The switch is made with ``runuser -u USER --``, else
``setpriv``, else (no util-linux at all) ``setgid``/``setuid`` in the child before ``exec``.

This module is plain Python (no pytest) so it can also be used by hand::

    with ThrowawayPostgres() as pg:
        url = pg.create_database("scratch")
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

__all__ = ["ExistingPostgres", "ThrowawayPostgres", "pg_available"]

TEST_USER = "mmsqtest"
_BINARIES = ("initdb", "pg_ctl", "postgres")
_LOG_TAIL = 3000
# Unix socket paths are limited to 107 bytes; "/.s.PGSQL.65535.lock" takes 20 of them.
_MAX_SOCKET_DIR = 80


# --------------------------------------------------------------------------------------------
# Finding the binaries
# --------------------------------------------------------------------------------------------


def _bin_dir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: $PATH first, then the Debian layout."""
    on_path = shutil.which("initdb")
    candidates = [Path(os.path.realpath(on_path)).parent] if on_path else []

    def version(p: str) -> tuple[int, ...]:
        digits = Path(p).parent.parent.name
        return tuple(int(x) for x in digits.split(".") if x.isdigit())

    candidates += [
        Path(p).parent
        for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    ]
    for d in candidates:
        if all(os.access(d / name, os.X_OK) for name in _BINARIES):
            return d
    return None


def pg_available() -> tuple[bool, str]:
    """Whether a throwaway cluster can be started here; when not, the reason."""
    d = _bin_dir()
    if d is None:
        missing = [n for n in _BINARIES if shutil.which(n) is None]
        return False, (
            "PostgreSQL server binaries not found on PATH or in /usr/lib/postgresql/*/bin "
            f"(missing: {', '.join(missing) or 'a directory with all of ' + ', '.join(_BINARIES)}); "
            "install the 'postgresql' package or set MMSQ_TEST_PG_URL"
        )
    if os.geteuid() == 0 and not _user_exists(TEST_USER) and shutil.which("useradd") is None:
        return False, f"running as root, user {TEST_USER!r} is missing and 'useradd' is not found"
    return True, ""


# --------------------------------------------------------------------------------------------
# Running as an unprivileged user
# --------------------------------------------------------------------------------------------


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _ensure_test_user() -> pwd.struct_passwd:
    for attempt in range(5):
        if _user_exists(TEST_USER):
            break
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", TEST_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        # Exit status 9: created meanwhile by a concurrent run (e.g. another xdist worker);
        # 10: the password files were locked by one (tried again).
        if done.returncode == 10 and attempt < 4:
            time.sleep(0.5)
            continue
        if done.returncode not in (0, 9) or not _user_exists(TEST_USER):
            raise RuntimeError(
                f"could not create the unprivileged user {TEST_USER!r} to run PostgreSQL as "
                f"(PostgreSQL refuses to run as root): {done.stderr.strip()}"
            )
    return pwd.getpwnam(TEST_USER)


class _Runner:
    """Runs commands as ``user`` (None: as ourselves)."""

    def __init__(self, user: pwd.struct_passwd | None) -> None:
        self.user = user
        self.prefix: list[str] = []
        self.preexec: Callable[[], None] | None = None
        self.how = "as the current user"
        if user is None:
            return
        if runuser := shutil.which("runuser"):
            self.prefix = [runuser, "-u", user.pw_name, "--"]
            self.how = f"runuser -u {user.pw_name}"
        elif setpriv := shutil.which("setpriv"):
            self.prefix = [
                setpriv,
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                "--",
            ]
            self.how = f"setpriv --reuid={user.pw_uid}"
        else:
            uid, gid = user.pw_uid, user.pw_gid

            def drop() -> None:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)

            self.preexec = drop
            self.how = f"setuid({uid}) in the child"

    def run(
        self, args: list[str], cwd: Path, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        # PG* variables from the caller's environment (PGDATA, PGPORT, PGHOST...) must not
        # steer initdb/pg_ctl; everything needed is passed explicitly.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self.user is not None:
            env["HOME"] = str(cwd)
            env["USER"] = env["LOGNAME"] = self.user.pw_name
        try:
            return subprocess.run(
                [*self.prefix, *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                preexec_fn=self.preexec,  # only when neither runuser nor setpriv exists
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{Path(args[0]).name} timed out after {timeout:g} s") from exc


# --------------------------------------------------------------------------------------------
# Databases on a server
# --------------------------------------------------------------------------------------------


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _DatabaseFactory:
    """CREATE/DROP DATABASE on the server at ``self.url`` (a SQLAlchemy URL)."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    def _with_database(self, name: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        libpq = make_url(self.url).set(drivername="postgresql")
        with psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(sql.encode())

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name by default) and return its URL."""
        name = name or f"mmsq_t_{uuid.uuid4().hex[:12]}"
        self._admin(f"CREATE DATABASE {_quote_ident(name)}")
        return self._with_database(name)

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")


class ExistingPostgres(_DatabaseFactory):
    """A server somebody else runs (``MMSQ_TEST_PG_URL``); its URL's user may CREATE DATABASE."""

    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def url(self) -> str:
        return self._url


# --------------------------------------------------------------------------------------------
# The throwaway cluster
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _traversable_by_others(path: Path) -> bool:
    p = path.resolve()
    return all(os.stat(q).st_mode & stat.S_IXOTH for q in (p, *p.parents))


def _base_dir(unprivileged: bool) -> str:
    base = tempfile.gettempdir()
    too_long = len(base) + len("/mmsq-pg-XXXXXXXX/sock") > _MAX_SOCKET_DIR
    if too_long or (unprivileged and not _traversable_by_others(Path(base))):
        return "/tmp"
    return base


class ThrowawayPostgres(_DatabaseFactory):
    """Starts a private cluster on enter; stops it and removes all its files on exit.

    Trust authentication for user ``postgres``, TCP on 127.0.0.1 only, a random free port,
    durability switched off. ``url`` points at the ``postgres`` database; use
    ``create_database()`` for per-test databases.
    """

    def __init__(self, *, start_timeout: float = 60) -> None:
        self.start_timeout = start_timeout
        self.port = 0
        self.dir: Path | None = None
        self.started_in: float | None = None  # seconds, for reporting
        self._runner: _Runner | None = None
        self._bin: Path | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the PostgreSQL cluster is not running")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path | None:
        return self.dir / "server.log" if self.dir else None

    def log_tail(self, chars: int = _LOG_TAIL) -> str:
        log = self.log_path
        if log is None or not log.exists():
            return "(no server log)"
        return log.read_text(errors="replace")[-chars:]

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> ThrowawayPostgres:
        t0 = time.monotonic()
        ok, why = pg_available()
        if not ok:
            raise RuntimeError(why)
        self._bin = _bin_dir()
        user = _ensure_test_user() if os.geteuid() == 0 else None
        self._runner = _Runner(user)
        atexit.register(self.stop)  # safety net if the caller never reaches __exit__
        try:
            self._create_dir(user)
            self._initdb()
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - t0
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and delete the cluster. Idempotent."""
        atexit.unregister(self.stop)
        if self.dir is None:
            return
        data = self.dir / "data"
        if self.port and self._runner is not None and (data / "postmaster.pid").exists():
            done = self._runner.run(
                [str(self._pg("pg_ctl")), "stop", "-m", "immediate", "-w", "-D", str(data)],
                cwd=self.dir,
                timeout=30,
            )
            if done.returncode != 0:
                self._kill_postmaster(data)
        self.port = 0
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # -- steps -------------------------------------------------------------------------------

    def _pg(self, name: str) -> Path:
        assert self._bin is not None
        return self._bin / name

    def _create_dir(self, user: pwd.struct_passwd | None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mmsq-pg-", dir=_base_dir(user is not None)))
        (self.dir / "data").mkdir(mode=0o700)
        (self.dir / "sock").mkdir(mode=0o700)
        if user is not None:
            for p in (self.dir, self.dir / "data", self.dir / "sock"):
                os.chown(p, user.pw_uid, user.pw_gid)

    def _initdb(self) -> None:
        assert self._runner is not None
        assert self.dir is not None
        args = [str(self._pg("initdb")), "-D", str(self.dir / "data"), "-U", "postgres"]
        args += ["--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        done = self._runner.run(args, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {done.returncode}, run {self._runner.how}):\n"
                f"{(done.stderr or done.stdout)[-_LOG_TAIL:]}"
            )

    def _start(self) -> None:
        assert self._runner is not None
        assert self.dir is not None
        last = ""
        for _attempt in range(3):  # the free port may be taken before postgres binds it
            self.port = _free_port()
            opts = (
                f"-k {self.dir / 'sock'} -p {self.port} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            args = [str(self._pg("pg_ctl")), "start", "-w", "-t", f"{self.start_timeout:.0f}"]
            args += ["-D", str(self.dir / "data"), "-l", str(self.log_path), "-o", opts]
            done = self._runner.run(args, cwd=self.dir, timeout=self.start_timeout + 30)
            if done.returncode == 0:
                return
            last = self.log_tail()
            if "could not bind" not in last and "already in use" not in last:
                break
        self._kill_postmaster(self.dir / "data")
        self.port = 0
        raise RuntimeError(
            f"PostgreSQL did not start (pg_ctl exit {done.returncode}, run {self._runner.how}): "
            f"{(done.stderr or done.stdout).strip()}\n--- tail of {self.log_path} ---\n{last}"
        )

    @staticmethod
    def _kill_postmaster(data: Path) -> None:
        try:
            pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, signal.SIGQUIT)
        except (OSError, ValueError):
            pass
