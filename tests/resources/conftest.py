"""A migrated SQLite store, and copies of the sample HSDS package to break."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.crypto import Crypto
from bot.settings import Settings
from bot.store import Store, open_store

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "hsds-sample"
SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'haven.db'}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = open_store(Settings(database_url=db_url), Crypto(SECRET))
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A writable copy of examples/hsds-sample."""
    target = tmp_path / "package"
    shutil.copytree(SAMPLE, target)
    return target
