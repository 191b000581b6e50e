"""What the benchmark scripts share: the app's environment, running a command in the project, a
free port on loopback, and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def app_env(tmp: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any ``MARKETPLACE_`` setting of its own, for the app in
    ``tmp``: a new secret key, emails to the console, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPLACE_")}
    env.update(
        FLASK_APP="wsgi",
        MARKETPLACE_ENV="development",
        MARKETPLACE_SECRET_KEY=secrets.token_hex(32),
        MARKETPLACE_INSTANCE_PATH=str(tmp / "instance"),
        MARKETPLACE_EMAIL_BACKEND="console",
    )
    env.update(settings)
    return env


def run_checked(cmd: list[str], env: dict[str, str], timeout: float) -> str:
    """Run ``cmd`` in the project folder; its output, or exit with what it said if it failed."""
    result = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def throwaway_postgres(env: dict[str, str], name: str) -> Iterator[str]:
    """A PostgreSQL cluster of its own on loopback (``scripts/test-postgres.sh``) for one run:
    yields its URL, and is stopped and deleted whatever happens."""
    # Outside the private temporary folder: the cluster runs as the postgres user.
    pg_dir = Path(tempfile.gettempdir()) / f"marketplace-{name}-pg-{secrets.token_hex(4)}"
    pg_env = dict(env, TEST_PG_DIR=str(pg_dir), TEST_PG_PORT=str(free_port()))
    try:
        run_checked(["bash", "scripts/test-postgres.sh", "start"], pg_env, 300)
        yield run_checked(["bash", "scripts/test-postgres.sh", "url"], pg_env, 60).strip()
    finally:
        subprocess.run(
            ["bash", "scripts/test-postgres.sh", "stop"],
            cwd=ROOT,
            env=pg_env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(pg_dir, ignore_errors=True)
