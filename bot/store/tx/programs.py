"""Programs that share one Haven, which staff belong to which, and which conversation is
whose. Program rows are configuration (a name, a number, hours): stored in the clear. A
conversation's program is its own column, written only by `set_conversation_program`, so
saving a conversation never moves it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.store.base import Conflict, Program
from bot.store.tx.core import Row, SqlTxBase, check
from bot.vocabulary import is_e164


def _program_clause(program_id: int | None) -> tuple[str, list[Any]]:
    """`program_id IS NULL` for the default program, `program_id = ?` for another."""
    if program_id is None:
        return "c.program_id IS NULL", []
    return "c.program_id = ?", [program_id]


class ProgramTx(SqlTxBase):
    def _program(self, r: Row) -> Program:
        lines = r["lines"]
        return Program(
            id=r["id"],
            slug=r["slug"],
            name=r["name"],
            number=r["number"],
            hours=r["hours"],
            lines=None if lines is None else tuple(x for x in lines.split(",") if x),
            name_services=bool(r["name_services"]),
            created_at=self._dt(r["created_at"]),
        )

    async def add_program(
        self,
        slug: str,
        name: str,
        number: str,
        hours: str | None,
        lines: Sequence[str] | None,
        name_services: bool,
        now: datetime,
    ) -> Program:
        check(bool(slug) and bool(name.strip()), "a program needs a slug and a name")
        check(is_e164(number), "a program's number must be E.164, like +15551234567")
        if lines is not None:
            check(all(x and "," not in x for x in lines), "bad national line name")
        taken = await self._one(
            "SELECT slug, number FROM programs WHERE slug = ? OR number = ?", slug, number
        )
        if taken is not None:
            what = "slug" if taken["slug"] == slug else "number"
            raise Conflict(f"another program already has that {what}")
        r = await self._returning(
            "INSERT INTO programs (slug, name, number, hours, lines, name_services, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
            slug,
            name.strip(),
            number,
            hours,
            None if lines is None else ",".join(lines),
            int(name_services),
            self._at(now),
        )
        return self._program(r)

    async def list_programs(self) -> list[Program]:
        return [self._program(r) for r in await self._fetch("SELECT * FROM programs ORDER BY id")]

    async def set_conversation_program(self, conversation_id: int, program_id: int | None) -> None:
        await self._require("conversations", conversation_id)
        if program_id is not None:
            await self._require("programs", program_id)
        await self._execute(
            "UPDATE conversations SET program_id = ? WHERE id = ?", program_id, conversation_id
        )

    async def set_user_programs(self, user_id: int, program_ids: Sequence[int]) -> None:
        await self._require("users", user_id)
        for program_id in program_ids:
            await self._require("programs", program_id)
        await self._execute("DELETE FROM user_programs WHERE user_id = ?", user_id)
        for program_id in sorted(set(program_ids)):
            await self._execute(
                "INSERT INTO user_programs (user_id, program_id) VALUES (?, ?)",
                user_id,
                program_id,
            )

    async def user_program_ids(self, user_id: int) -> list[int]:
        rows = await self._fetch(
            "SELECT program_id FROM user_programs WHERE user_id = ? ORDER BY program_id", user_id
        )
        return [int(r["program_id"]) for r in rows]

    async def users_program_ids(self, user_ids: Sequence[int]) -> dict[int, list[int]]:
        rows = await self._fetch_in(
            "SELECT user_id, program_id FROM user_programs WHERE user_id IN ({ids})"
            " ORDER BY user_id, program_id",
            user_ids,
        )
        found: dict[int, list[int]] = {user_id: [] for user_id in user_ids}
        for r in rows:
            found[int(r["user_id"])].append(int(r["program_id"]))
        return found

    async def program_referral_count(
        self, program_id: int | None, since: datetime | None = None
    ) -> int:
        where, args = _program_clause(program_id)
        if since is not None:
            where += " AND c.created_at >= ?"
            args.append(self._at(since))
        r = await self._returning(
            "SELECT COUNT(*) AS n FROM referrals r JOIN conversations c"
            f" ON c.id = r.conversation_id WHERE {where}",
            *args,
        )
        return int(r["n"])
