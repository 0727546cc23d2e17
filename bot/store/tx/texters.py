"""Texters: the people who text in, found by a keyed hash of their number. The number and
their unsafe hours are encrypted at rest; what staff see is a stable alias."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.store.base import Conflict, NotFound, Texter
from bot.store.tx.core import Row, SqlTxBase, check, check_language
from bot.vocabulary import is_e164

# A stable, friendly alias from the texter id (never from the number): a multiplicative
# hash spreads neighbouring ids over the words, the id itself keeps aliases unique.
_ADJECTIVES = (
    "Amber", "Azure", "Blue", "Bright", "Calm", "Cedar", "Clear", "Coral",
    "Gentle", "Golden", "Green", "Hazel", "Ivory", "Jade", "Kind", "Light",
    "Lunar", "Maple", "Misty", "Olive", "Quiet", "Rose", "Sage", "Silver",
    "Soft", "Still", "Sunny", "Swift", "Teal", "Warm", "Wild", "Willow",
)  # fmt: skip
_ANIMALS = (
    "Badger", "Crane", "Deer", "Dove", "Falcon", "Finch", "Fox", "Hare",
    "Heron", "Ibis", "Jay", "Kestrel", "Koala", "Lark", "Lynx", "Marten",
    "Moth", "Newt", "Otter", "Owl", "Panda", "Puffin", "Quail", "Robin",
    "Seal", "Sparrow", "Swan", "Tern", "Turtle", "Whale", "Wren", "Yak",
)  # fmt: skip


def alias_for(texter_id: int) -> str:
    h = (texter_id * 2654435761) & 0xFFFFFFFF
    return f"{_ADJECTIVES[h % 32]} {_ANIMALS[(h >> 5) % 32]} {texter_id}"


class TexterTx(SqlTxBase):
    def _texter(self, r: Row) -> Texter:
        safe = r["safe_to_text"]
        hours = r["unsafe_hours_enc"]
        return Texter(
            id=r["id"],
            phone_hash=r["phone_hash"],
            phone=self._dec(r["phone_enc"]),
            language=r["language"],
            safe_to_text=None if safe is None else bool(safe),
            unsafe_hours=None if hours is None else self._dec(hours),
            opted_out=bool(r["opted_out"]),
            alias=alias_for(r["id"]),
            created_at=self._dt(r["created_at"]),
        )

    async def get_texter_by_hash(self, phone_hash: str) -> Texter | None:
        r = await self._one("SELECT * FROM texters WHERE phone_hash = ?", phone_hash)
        return None if r is None else self._texter(r)

    async def get_texter(self, texter_id: int) -> Texter:
        r = await self._one("SELECT * FROM texters WHERE id = ?", texter_id)
        if r is None:
            raise NotFound(f"no texter {texter_id}")
        return self._texter(r)

    async def get_texters(self, texter_ids: Sequence[int]) -> dict[int, Texter]:
        rows = await self._fetch_in("SELECT * FROM texters WHERE id IN ({ids})", texter_ids)
        return {r["id"]: self._texter(r) for r in rows}

    async def create_texter(
        self, phone_hash: str, phone: str, language: str, now: datetime
    ) -> Texter:
        check(bool(phone_hash), "phone_hash is required")
        check(is_e164(phone), "phone must be an E.164 number like +15551234567")
        check_language(language)
        r = await self._one(
            "INSERT INTO texters (phone_hash, phone_enc, language, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (phone_hash) DO NOTHING RETURNING *",
            phone_hash,
            self._enc(phone),
            language,
            self._at(now),
        )
        if r is None:
            raise Conflict("a texter with this phone hash exists")
        return self._texter(r)

    async def save_texter(self, texter: Texter) -> None:
        check_language(texter.language)
        # phone and phone_hash never change: a new number is a new texter.
        n = await self._execute(
            "UPDATE texters SET language = ?, safe_to_text = ?, unsafe_hours_enc = ?,"
            " opted_out = ? WHERE id = ?",
            texter.language,
            None if texter.safe_to_text is None else int(texter.safe_to_text),
            None if texter.unsafe_hours is None else self._enc(texter.unsafe_hours),
            int(texter.opted_out),
            texter.id,
        )
        if n == 0:
            raise NotFound(f"no texter {texter.id}")

    async def delete_texter(self, texter_id: int) -> None:
        await self._require("texters", texter_id)
        await self._erase_messages_of("c.texter_id = ?", texter_id)
        # Conversations, and with them messages, outbox items, notes and alarms, go by
        # ON DELETE CASCADE (SQLite: foreign_keys is on for every connection).
        await self._execute("DELETE FROM texters WHERE id = ?", texter_id)
