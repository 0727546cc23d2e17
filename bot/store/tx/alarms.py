"""Alarms recorded in the database so each fires once across any number of processes: the
one upsert in `raise_alarm` decides every race. A conversation's alarms go with it (ON
DELETE CASCADE for DELETE and retention; `purge_conversation` removes them on quick exit)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.store.base import Alarm
from bot.store.tx.core import SqlTxBase, check, marks


class AlarmTx(SqlTxBase):
    async def raise_alarm(self, conversation_id: int, kind: str, now: datetime) -> bool:
        check(bool(kind), "an alarm needs a kind")
        # A row comes back only when this call inserted the alarm or revived a cleared one
        # (upsert with RETURNING: SQLite >= 3.35, checked at open, and PostgreSQL).
        r = await self._one(
            "INSERT INTO alarms (conversation_id, kind, raised_at) VALUES (?, ?, ?)"
            " ON CONFLICT (conversation_id, kind) DO UPDATE SET"
            " raised_at = excluded.raised_at, cleared_at = NULL"
            " WHERE alarms.cleared_at IS NOT NULL RETURNING conversation_id",
            conversation_id,
            kind,
            self._at(now),
        )
        return r is not None

    async def clear_alarms(
        self, conversation_id: int, now: datetime, kinds: Sequence[str] | None = None
    ) -> list[str]:
        where = ""
        args: list[Any] = []
        if kinds is not None:
            if not kinds:
                return []
            where = f" AND kind IN ({marks(len(kinds))})"
            args = list(kinds)
        rows = await self._fetch(
            "UPDATE alarms SET cleared_at = ? WHERE conversation_id = ? AND cleared_at IS NULL"
            f"{where} RETURNING kind",
            self._at(now),
            conversation_id,
            *args,
        )
        return sorted(r["kind"] for r in rows)

    async def list_alarms(self, *, active: bool = True) -> list[Alarm]:
        where = " WHERE cleared_at IS NULL" if active else ""
        rows = await self._fetch(
            f"SELECT * FROM alarms{where} ORDER BY raised_at, conversation_id, kind"
        )
        return [
            Alarm(
                conversation_id=r["conversation_id"],
                kind=r["kind"],
                raised_at=self._dt(r["raised_at"]),
                cleared_at=self._dto(r["cleared_at"]),
            )
            for r in rows
        ]
