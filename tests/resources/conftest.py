"""The store contract's backends (SQLite always, PostgreSQL when HAVEN_TEST_POSTGRES is
set) for searching, a SQLite URL for the CLI, and copies of the sample package to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import SAMPLE


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'haven.db'}"


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A writable copy of examples/hsds-sample."""
    target = tmp_path / "package"
    shutil.copytree(SAMPLE, target)
    return target
