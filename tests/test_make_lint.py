"""`make test` checks the house rules first: ruff (lint and format) and the import contracts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make") or "make"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own Makefile, arguments from this file
        [MAKE, "--no-print-directory", *arguments],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_lint_runs_ruff_check_ruff_format_check_and_the_import_contracts():
    # -n prints the commands without running them; `install` is done already (a stamp).
    result = make("-n", "lint")
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if line.startswith(".venv/bin/")]
    assert commands == [
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format --check .",
        ".venv/bin/lint-imports --no-cache --no-logo",
    ]


def test_make_test_runs_lint_before_any_test():
    # make's own database (-p), without running anything (-q): `test` needs `lint` first, so a
    # lint or contract failure stops `make test` before the suite runs.
    database = make("-pq", "help").stdout
    [rule] = [line for line in database.splitlines() if line.startswith("test: ")]
    prerequisites = rule.removeprefix("test: ").split()
    assert prerequisites[0] == "lint"
    assert "test-deps" in prerequisites


def test_the_import_contracts_hold():
    # The same check as `make lint`, so that the suite alone also catches an import that runs
    # against the layers (.importlinter).
    result = subprocess.run(  # noqa: S603 - our own virtual environment's tool
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
