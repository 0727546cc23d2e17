"""Staff accounts and the audit trail. Sessions are cookies checked against a user's
session epoch (a field of User); login throttling is in bot/store/tx/logins.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.store.base import AuditEntry, Conflict, NotFound, User
from bot.store.tx.core import Row, SqlTxBase, check
from bot.vocabulary import ROLES

PRESENCES = ("available", "away", "offline")


def _check_user(name: str, role: str) -> None:
    check(bool(name.strip()), "a user needs a name")
    check(role in ROLES, f"role must be one of {list(ROLES)}")


class AccountTx(SqlTxBase):
    def _user(self, r: Row) -> User:
        return User(
            id=r["id"],
            name=r["name"],
            role=r["role"],
            password_hash=r["password_hash"],
            teams=json.loads(r["teams"]),
            presence=r["presence"],
            capacity=r["capacity"],
            active=bool(r["active"]),
            created_at=self._dt(r["created_at"]),
            session_epoch=r["session_epoch"],
        )

    async def add_user(
        self, name: str, role: str, password_hash: str, teams: Sequence[str], now: datetime
    ) -> User:
        _check_user(name, role)
        r = await self._one(
            "INSERT INTO users (name, role, password_hash, teams, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING *",
            name,
            role,
            password_hash,
            json.dumps(list(teams)),
            self._at(now),
        )
        if r is None:
            raise Conflict(f"the user name {name!r} is taken")
        return self._user(r)

    async def _user_where_id(self, user_id: int, lock: str = "") -> User:
        r = await self._one(f"SELECT * FROM users WHERE id = ?{lock}", user_id)
        if r is None:
            raise NotFound(f"no user {user_id}")
        return self._user(r)

    async def get_user(self, user_id: int) -> User:
        return await self._user_where_id(user_id)

    async def lock_user(self, user_id: int) -> User:
        return await self._user_where_id(user_id, self._FOR_UPDATE)

    async def get_user_by_name(self, name: str) -> User | None:
        r = await self._one("SELECT * FROM users WHERE name = ?", name)
        return None if r is None else self._user(r)

    async def list_users(self) -> list[User]:
        return [self._user(r) for r in await self._fetch("SELECT * FROM users ORDER BY id")]

    async def save_user(self, user: User) -> None:
        _check_user(user.name, user.role)
        check(user.presence in PRESENCES, f"presence must be one of {list(PRESENCES)}")
        check(user.capacity >= 0, "capacity cannot be negative")
        taken = await self._one(
            "SELECT 1 FROM users WHERE name = ? AND id <> ?", user.name, user.id
        )
        if taken is not None:
            raise Conflict(f"the user name {user.name!r} is taken")
        n = await self._execute(
            "UPDATE users SET name = ?, role = ?, password_hash = ?, teams = ?, presence = ?,"
            " capacity = ?, active = ?, session_epoch = ? WHERE id = ?",
            user.name,
            user.role,
            user.password_hash,
            json.dumps(list(user.teams)),
            user.presence,
            user.capacity,
            int(user.active),
            user.session_epoch,
            user.id,
        )
        if n == 0:
            raise NotFound(f"no user {user.id}")

    # -- the optional TOTP second factor: the secret is encrypted at rest ------------------
    async def set_totp_secret(self, user_id: int, secret: str | None) -> None:
        blob = None if secret is None else self._enc(secret)
        n = await self._execute(
            "UPDATE users SET totp_secret_enc = ?, totp_last_step = NULL WHERE id = ?",
            blob,
            user_id,
        )
        if n == 0:
            raise NotFound(f"no user {user_id}")

    async def use_totp_step(self, user_id: int, step: int) -> bool:
        # One conditional UPDATE: of two sign-ins with the same code, one changes the row.
        n = await self._execute(
            "UPDATE users SET totp_last_step = ? WHERE id = ?"
            " AND (totp_last_step IS NULL OR totp_last_step < ?)",
            step,
            user_id,
            step,
        )
        return n == 1

    async def get_totp_secret(self, user_id: int) -> str | None:
        r = await self._one("SELECT totp_secret_enc FROM users WHERE id = ?", user_id)
        if r is None:
            raise NotFound(f"no user {user_id}")
        return None if r["totp_secret_enc"] is None else self._dec(r["totp_secret_enc"])

    # -- audit: who looked at or changed what; no message text or number, no foreign keys --
    async def audit(
        self,
        user_id: int | None,
        action: str,
        conversation_id: int | None,
        detail: str,
        now: datetime,
    ) -> None:
        check(bool(action), "an audit entry needs an action")
        await self._execute(
            "INSERT INTO audit (user_id, action, conversation_id, detail, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            user_id,
            action,
            conversation_id,
            detail,
            self._at(now),
        )

    async def list_audit(
        self, conversation_id: int | None = None, limit: int = 200
    ) -> list[AuditEntry]:
        """Newest first."""
        check(limit > 0, "limit must be positive")
        where = "" if conversation_id is None else " WHERE conversation_id = ?"
        args: list[Any] = [] if conversation_id is None else [conversation_id]
        rows = await self._fetch(
            f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?", *args, limit
        )
        return [self._audit_entry(r) for r in rows]

    def _audit_entry(self, r: Row) -> AuditEntry:
        return AuditEntry(
            id=r["id"],
            user_id=r["user_id"],
            action=r["action"],
            conversation_id=r["conversation_id"],
            detail=r["detail"],
            created_at=self._dt(r["created_at"]),
        )
