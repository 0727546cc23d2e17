"""What advocates record with a texter: screening tools (bot.screens) and the safety plan
(bot.safety_plan). Both are texter content, stored as one encrypted JSON blob per row like
notes and the conversation's private blob; they go with their conversation (ON DELETE
CASCADE, and a trigger on quick exit's purge: migration 0008)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.store.base import SafetyPlanRecord, ScreenRecord
from bot.store.tx.core import Row, SqlTxBase, check


class AdvocateToolsTx(SqlTxBase):
    def _blob(self, data: Any) -> bytes:
        return self._enc(json.dumps(data, separators=(",", ":"), sort_keys=True))

    def _screen(self, r: Row) -> ScreenRecord:
        return ScreenRecord(
            id=r["id"],
            conversation_id=r["conversation_id"],
            kind=r["kind"],
            user_id=r["user_id"],
            data=json.loads(self._dec(r["data_enc"])),
            created_at=self._dt(r["created_at"]),
        )

    async def add_screen(
        self,
        conversation_id: int,
        kind: str,
        user_id: int | None,
        data: dict[str, Any],
        now: datetime,
    ) -> ScreenRecord:
        check(bool(kind) and len(kind) <= 40, "a screen needs a kind")
        await self._require("conversations", conversation_id)
        r = await self._returning(
            "INSERT INTO screens (conversation_id, kind, user_id, data_enc, created_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING *",
            conversation_id,
            kind,
            user_id,
            self._blob(data),
            self._at(now),
        )
        return self._screen(r)

    async def list_screens(self, conversation_id: int) -> list[ScreenRecord]:
        rows = await self._fetch(
            "SELECT * FROM screens WHERE conversation_id = ? ORDER BY id", conversation_id
        )
        return [self._screen(r) for r in rows]

    def _plan(self, r: Row) -> SafetyPlanRecord:
        return SafetyPlanRecord(
            conversation_id=r["conversation_id"],
            user_id=r["user_id"],
            sections=json.loads(self._dec(r["data_enc"])),
            updated_at=self._dt(r["updated_at"]),
            sent_at=self._dto(r["sent_at"]),
        )

    async def save_safety_plan(
        self, conversation_id: int, user_id: int | None, sections: dict[str, str], now: datetime
    ) -> SafetyPlanRecord:
        await self._require("conversations", conversation_id)
        blob, at = self._blob(sections), self._at(now)
        # Both dialects upsert the same way; a changed plan is "not sent" again.
        r = await self._returning(
            "INSERT INTO safety_plans (conversation_id, user_id, data_enc, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET"
            " user_id = excluded.user_id, data_enc = excluded.data_enc,"
            " updated_at = excluded.updated_at, sent_at = NULL RETURNING *",
            conversation_id,
            user_id,
            blob,
            at,
        )
        return self._plan(r)

    async def get_safety_plan(self, conversation_id: int) -> SafetyPlanRecord | None:
        r = await self._one("SELECT * FROM safety_plans WHERE conversation_id = ?", conversation_id)
        return None if r is None else self._plan(r)

    async def mark_safety_plan_sent(self, conversation_id: int, now: datetime) -> None:
        await self._execute(
            "UPDATE safety_plans SET sent_at = ? WHERE conversation_id = ?",
            self._at(now),
            conversation_id,
        )
