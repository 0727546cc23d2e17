"""Staff for the dashboard benchmarks: accounts made through the store (as `python -m bot
users add` does, one password hash shared), signed in through the real /login form, then
using the dashboard as a browser would (session cookie, CSRF token, /ws)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from benchmarks.backends import SECRET
from bot.crypto import Crypto
from bot.settings import Settings
from bot.store import open_store
from bot.vocabulary import utcnow

PASSWORD = "bench-password-long-enough-42"
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
_META = re.compile(r'name="csrf-token" content="([^"]+)"')


async def migrate(database_url: str) -> None:
    store = open_store(Settings(database_url=database_url, secret_key=SECRET), Crypto(SECRET))
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()


async def add_users(database_url: str, names: Sequence[tuple[str, str]]) -> None:
    """(name, role) accounts, all with PASSWORD (hashed once)."""
    from bot.dashboard.accounts import hash_password

    hashed = await asyncio.to_thread(hash_password, PASSWORD)
    store = open_store(Settings(database_url=database_url, secret_key=SECRET), Crypto(SECRET))
    await store.open()
    try:
        await store.migrate()
        async with store.transaction() as tx:
            for name, role in names:
                await tx.add_user(name, role, hashed, [], utcnow())
    finally:
        await store.close()


@dataclass
class Staff:
    """One signed-in browser: its session cookie and CSRF token."""

    name: str
    base: str
    session: aiohttp.ClientSession
    cookie: str = ""
    csrf: str = ""

    @property
    def headers(self) -> dict[str, str]:
        # The cookie is Secure (HAVEN_PUBLIC_URL is https), so it is sent by hand over the
        # loopback's plain HTTP, as the TLS-terminating proxy in front of Haven would.
        return {"Cookie": self.cookie, "X-CSRF-Token": self.csrf}

    async def sign_in(self) -> None:
        async with self.session.get(self.base + "/login") as page:
            text = await page.text()
            first = page.cookies.get("haven_session")
        match = _CSRF.search(text)
        if match is None:
            raise RuntimeError("no CSRF token on /login")
        cookie = f"haven_session={first.value}" if first else ""
        form = {"name": self.name, "password": PASSWORD, "_csrf": match.group(1)}
        async with self.session.post(
            self.base + "/login", data=form, headers={"Cookie": cookie}, allow_redirects=False
        ) as response:
            if response.status != 303:
                raise RuntimeError(f"sign-in of {self.name} answered {response.status}")
            self.cookie = f"haven_session={response.cookies['haven_session'].value}"
        async with self.session.get(self.base + "/dashboard/queue", headers=self.headers) as q:
            meta = _META.search(await q.text())
        if meta is None:
            raise RuntimeError("no CSRF token on the queue page")
        self.csrf = meta.group(1)

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base + path, headers=self.headers) as response:
            return response.status, await response.text()

    async def post(self, path: str) -> tuple[int, dict[str, Any]]:
        """A POST as the page's fetch() sends it: JSON back, never a redirect."""
        headers = {**self.headers, "Accept": "application/json"}
        async with self.session.post(
            self.base + path, headers=headers, allow_redirects=False
        ) as response:
            data = await response.json(content_type=None)
            return response.status, data if isinstance(data, dict) else {}


async def sign_in_all(
    base: str, names: Sequence[str], session: aiohttp.ClientSession, at_once: int = 4
) -> list[Staff]:
    """Sign everyone in, a few at a time (the server hashes on two threads)."""
    gate = asyncio.Semaphore(at_once)
    staff = [Staff(name, base, session) for name in names]

    async def one(member: Staff) -> None:
        async with gate:
            await member.sign_in()

    await asyncio.gather(*(one(m) for m in staff))
    return staff
