"""Databases to benchmark against: a temporary SQLite file always, and PostgreSQL when
HAVEN_BENCH_POSTGRES (or HAVEN_TEST_POSTGRES) names one, in a fresh schema dropped after."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from bot.settings import Settings

# The same values tests/conftest.py uses, so the benchmark runs the app the tests run.
SECRET = "bench-secret-key-that-is-long-enough-0123456789"
AUTH_TOKEN = "bench-auth-token-12345"
PUBLIC_URL = "https://haven.example.org"


def postgres_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get("HAVEN_BENCH_POSTGRES") or env.get("HAVEN_TEST_POSTGRES") or "").strip()


def base_settings(folder: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        public_url=PUBLIC_URL,
        twilio_auth_token=AUTH_TOKEN,
        org_name="Harbor House",
        secret_file=folder / ".haven-secret",
        # Production's default tick, not the tests' 0.05 s: background work should load the
        # server as much as it would in service, no more.
        tick_seconds=1.0,
    )


@asynccontextmanager
async def sqlite_settings() -> AsyncIterator[Settings]:
    with tempfile.TemporaryDirectory(prefix="haven-bench-") as folder:
        path = Path(folder)
        yield base_settings(path, f"sqlite:///{path / 'haven.db'}")


@asynccontextmanager
async def postgres_settings(url: str) -> AsyncIterator[Settings]:
    """Settings on a new schema of the named database; the schema is dropped afterwards."""
    import asyncpg

    schema = f"haven_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in url else "?"
        with tempfile.TemporaryDirectory(prefix="haven-bench-") as folder:
            yield base_settings(Path(folder), f"{url}{sep}search_path={schema}")
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
