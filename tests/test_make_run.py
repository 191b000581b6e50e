"""`make run PORT=5001` serves on 5001 and its emails link to 5001, not to the default 5000."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from marketplace.config import load_config
from marketplace.core.urls import absolute_url

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make") or "make"


def dry_run(*arguments: str, **environment: str) -> str:
    """What `make run` would run (make -n: nothing is run), with the given environment."""
    env = {k: v for k, v in os.environ.items() if k != "MARKETPLACE_BASE_URL"}
    env.update(environment)
    result = subprocess.run(  # noqa: S603 - our own Makefile, arguments from this file
        [MAKE, "--no-print-directory", "-n", "run", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    [serve] = [line for line in result.stdout.splitlines() if " run --host " in line]
    return serve


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_gives_the_app_a_base_url_on_the_port_it_serves():
    assert dry_run("PORT=5001") == (
        "MARKETPLACE_BASE_URL=http://127.0.0.1:5001 .venv/bin/flask run --host 127.0.0.1 --port 5001"
    )
    assert dry_run().startswith("MARKETPLACE_BASE_URL=http://127.0.0.1:5000 ")
    assert "MARKETPLACE_BASE_URL=http://10.0.0.5:8080 " in dry_run("HOST=10.0.0.5", "PORT=8080")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_base_url_the_person_set_is_kept():
    serve = dry_run("PORT=5001", MARKETPLACE_BASE_URL="https://marketplace.example")
    assert serve.startswith("MARKETPLACE_BASE_URL=https://marketplace.example ")


def test_links_in_emails_are_built_on_the_configured_base_url(app, monkeypatch):
    monkeypatch.setenv("MARKETPLACE_BASE_URL", "http://127.0.0.1:5001")
    assert load_config()["BASE_URL"] == "http://127.0.0.1:5001"
    monkeypatch.setitem(app.config, "BASE_URL", "http://127.0.0.1:5001")
    # Whatever Host the request came with: a link is never built on the request's Host header.
    with app.test_request_context("/", base_url="http://attacker.example"):
        link = absolute_url("accounts.reset_password", token="abc")
    assert link == "http://127.0.0.1:5001/reset-password/abc"
