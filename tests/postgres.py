"""A throw-away PostgreSQL server for the storage tests.

Order of preference: ``$PSL_TEST_PG_URL`` (an existing server; each test gets its own database in
it); else Debian's binaries (``/usr/lib/postgresql/*/bin``): ``initdb`` a cluster in a temp dir,
start it on 127.0.0.1 and a free port, delete it afterwards; else the tests are skipped with the
reason. Durability is switched off (fsync etc.): the data is thrown away anyway.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

PG_URL_ENV = "PSL_TEST_PG_URL"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` OS user then."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *argv]
    return ["su", "postgres", "-c", " ".join(argv)]


class PostgresServer:
    """A running PostgreSQL server that hands out fresh, empty databases."""

    def __init__(self, admin_url: str, *, cluster_dir: Path | None = None, bin_dir: Path | None = None):
        self.admin_url = admin_url  # a URL to a database we may run CREATE DATABASE from
        self._cluster_dir = cluster_dir
        self._bin_dir = bin_dir
        self._created: list[str] = []

    @classmethod
    def start(cls) -> PostgresServer:
        """Use ``$PSL_TEST_PG_URL`` or start a private cluster; raises RuntimeError with the reason if neither."""
        if os.environ.get(PG_URL_ENV):
            return cls(os.environ[PG_URL_ENV])
        bin_dir = _pg_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                f"no PostgreSQL: set ${PG_URL_ENV} or install the binaries (apt-get install -y postgresql)"
            )
        root = Path(tempfile.mkdtemp(prefix="psl-pg-"))
        data, sockets = root / "data", root / "sock"
        sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(sockets, "postgres")
        port = _free_port()

        def run(argv: list[str]) -> None:
            done = subprocess.run(_as_postgres_user(argv), capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise RuntimeError(f"{argv[0]} failed: {done.stdout}\n{done.stderr}")

        try:
            run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
            options = (
                f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(root / "server.log"),
                    "-w",
                    "-t",
                    "30",
                    "start",
                ]
            )
        except Exception:
            shutil.rmtree(root, ignore_errors=True)
            raise
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        return cls(url, cluster_dir=root, bin_dir=bin_dir)

    def _admin(self, sql: str) -> None:
        import psycopg

        admin = make_url(self.admin_url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, *, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its SQLAlchemy URL."""
        name = f"psl_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self._created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database` (its connections must be closed)."""
        name = make_url(url).database
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._created:
            self._created.remove(name)

    def stop(self) -> None:
        """Stop and delete a private cluster; on an external server drop the databases we made."""
        if self._cluster_dir is None:
            for url_name in list(self._created):
                self.drop_database(make_url(self.admin_url).set(database=url_name).render_as_string(False))
            return
        subprocess.run(
            _as_postgres_user(
                [
                    str(self._bin_dir / "pg_ctl"),
                    "-D",
                    str(self._cluster_dir / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ]
            ),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self._cluster_dir, ignore_errors=True)
