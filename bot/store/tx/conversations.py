"""Conversations and their staff notes: load, save, list, timers, the atomic claim, and
the quick exit's purge.

What the texter told us (need, screening answers, triage signals, location, the flow's
scratch) is one encrypted JSON blob per conversation; labels, states, priorities and
timestamps stay plain so the queue can be sorted and filtered in SQL. Quick exit
(`purge_conversation`) deletes the conversation's messages (and with them any outbox items
not yet sent), notes, saved replies and alarms, clears the blob and marks the row purged;
the row keeps its state so the advocate sees that it ended. A later `save_conversation` of
a purged row never writes the content back.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.store.base import Ahead, Conflict, Conversation, Note, NotFound, Waiting
from bot.store.tx.core import Row, SqlTxBase, check, check_language, marks
from flows.states import ENDED_STATES, NEW, QUEUED, WITH_ADVOCATE

_ENDED = sorted(ENDED_STATES)
# Waiting in the queue (list_waiting, get_waiting, count_waiting), with QUEUED bound first.
_WAITING = "state = ? AND advocate_id IS NULL AND queued_at IS NOT NULL"
# list_conversations' order, which list_waiting keeps so the queue breaks ties as it always
# has (conversations_recent serves it, migration 0012).
_NEWEST = "COALESCE(updated_at, created_at) DESC, id DESC"
# What a quick exit blanks on the conversation row: beyond the content, everything that says
# what the conversation was about (labels, how urgent, which team, how it ended). Left: that
# it existed, its state, language, holder and times, so the advocate sees that it ended.
_ERASED = (
    "private_enc = NULL, labels = '[]', priority = 4, team = NULL, disposition = NULL,"
    " transfer_to = NULL, nudge_at = NULL, expire_at = NULL"
)


class ConversationTx(SqlTxBase):
    def _conversation(self, r: Row) -> Conversation:
        private: dict[str, Any] = {}
        if r["private_enc"] is not None:
            private = json.loads(self._dec(r["private_enc"]))
        return Conversation(
            id=r["id"],
            texter_id=r["texter_id"],
            state=r["state"],
            language=r["language"],
            priority=r["priority"],
            labels=json.loads(r["labels"]),
            signals=private.get("signals", []),
            need=private.get("need"),
            answers=private.get("answers", {}),
            location=private.get("location"),
            flow=private.get("flow", {}),
            team=r["team"],
            advocate_id=r["advocate_id"],
            transfer_to=r["transfer_to"],
            created_at=self._dt(r["created_at"]),
            updated_at=self._dto(r["updated_at"]),
            last_inbound_at=self._dto(r["last_inbound_at"]),
            queued_at=self._dto(r["queued_at"]),
            claimed_at=self._dto(r["claimed_at"]),
            closed_at=self._dto(r["closed_at"]),
            disposition=r["disposition"],
            nudge_at=self._dto(r["nudge_at"]),
            expire_at=self._dto(r["expire_at"]),
            # Rows read before migration 0007 have no program: the default one.
            program_id=r["program_id"] if "program_id" in r.keys() else None,
        )

    async def get_open_conversation(self, texter_id: int) -> Conversation | None:
        r = await self._one(
            f"SELECT * FROM conversations WHERE texter_id = ? AND state NOT IN"
            f" ({marks(len(_ENDED))}) ORDER BY id DESC LIMIT 1{self._FOR_UPDATE}",
            texter_id,
            *_ENDED,
        )
        return None if r is None else self._conversation(r)

    async def get_conversation(self, conversation_id: int) -> Conversation:
        r = await self._one(
            f"SELECT * FROM conversations WHERE id = ?{self._FOR_UPDATE}", conversation_id
        )
        if r is None:
            raise NotFound(f"no conversation {conversation_id}")
        return self._conversation(r)

    async def create_conversation(
        self, texter_id: int, language: str, now: datetime
    ) -> Conversation:
        check_language(language)
        at = self._at(now)  # an unknown texter: the foreign key refuses it (NotFound)
        r = await self._returning(
            "INSERT INTO conversations (texter_id, state, language, priority, created_at,"
            " updated_at) VALUES (?, ?, ?, 4, ?, ?) RETURNING *",
            texter_id,
            NEW,
            language,
            at,
            at,
        )
        return self._conversation(r)

    async def save_conversation(self, conversation: Conversation) -> None:
        c = conversation
        check(bool(c.state), "state is required")
        check_language(c.language)
        check(c.priority in (1, 2, 3, 4), "priority must be 1, 2, 3 or 4")
        private = {
            "need": c.need,
            "answers": c.answers,
            "signals": c.signals,
            "location": c.location,
            "flow": c.flow,
        }
        blob = self._enc(json.dumps(private, separators=(",", ":")))
        r = await self._one(
            "UPDATE conversations SET state = ?, language = ?, priority = ?, labels = ?,"
            " private_enc = ?, team = ?, advocate_id = ?, transfer_to = ?, updated_at = ?,"
            " last_inbound_at = ?, queued_at = ?, claimed_at = ?, closed_at = ?,"
            " disposition = ?, nudge_at = ?, expire_at = ? WHERE id = ? RETURNING purged",
            c.state,
            c.language,
            c.priority,
            json.dumps(list(c.labels)),
            blob,
            c.team,
            c.advocate_id,
            c.transfer_to,
            self._tso(c.updated_at),
            self._tso(c.last_inbound_at),
            self._tso(c.queued_at),
            self._tso(c.claimed_at),
            self._tso(c.closed_at),
            c.disposition,
            self._tso(c.nudge_at),
            self._tso(c.expire_at),
            c.id,
        )
        if r is None:
            raise NotFound(f"no conversation {c.id}")
        if r["purged"]:  # quick exit already erased it: never write the content back
            await self._execute(f"UPDATE conversations SET {_ERASED} WHERE id = ?", c.id)

    async def purge_conversation(self, conversation_id: int) -> None:
        await self._require("conversations", conversation_id)
        # Deleting the messages also drops their outbox items: nothing queued is sent
        # after a quick exit (enqueue anything meant to go out after calling this).
        await self._erase_messages_of("c.id = ?", conversation_id)
        await self._execute("DELETE FROM notes WHERE conversation_id = ?", conversation_id)
        # The conversation has ended: nothing about it is left for staff to be alarmed by.
        await self._execute("DELETE FROM alarms WHERE conversation_id = ?", conversation_id)
        # Which service a texter was sent to says where they are: it goes too.
        await self._execute("DELETE FROM referrals WHERE conversation_id = ?", conversation_id)
        await self._execute(
            f"UPDATE conversations SET {_ERASED}, purged = 1 WHERE id = ?", conversation_id
        )

    async def list_conversations(
        self,
        states: Sequence[str] | None = None,
        advocate_id: int | None = None,
        limit: int = 500,
    ) -> list[Conversation]:
        check(limit > 0, "limit must be positive")
        where: list[str] = []
        args: list[Any] = []
        if states is not None:
            if not states:
                return []
            where.append(f"state IN ({marks(len(states))})")
            args.extend(states)
        if advocate_id is not None:
            where.append("advocate_id = ?")
            args.append(advocate_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self._fetch(
            f"SELECT * FROM conversations{clause} ORDER BY {_NEWEST} LIMIT ?",
            *args,
            limit,
        )
        return [self._conversation(r) for r in rows]

    async def held_or_offered(self, user_id: int, states: Sequence[str]) -> list[Conversation]:
        if not states:
            return []
        rows = await self._fetch(
            f"SELECT * FROM conversations WHERE state IN ({marks(len(states))})"
            f" AND (advocate_id = ? OR transfer_to = ?) ORDER BY {_NEWEST}",
            *states,
            user_id,
            user_id,
        )
        return [self._conversation(r) for r in rows]

    def _waiting(self, r: Row) -> Waiting:
        return Waiting(
            r["id"],
            r["texter_id"],
            r["priority"],
            self._dt(r["queued_at"]),
            r["team"],
            r["program_id"],
        )

    async def list_waiting(self, limit: int = 100_000) -> list[Waiting]:
        check(limit > 0, "limit must be positive")
        rows = await self._fetch(
            "SELECT id, texter_id, priority, queued_at, team, program_id FROM conversations"
            f" WHERE {_WAITING} ORDER BY {_NEWEST} LIMIT ?",
            QUEUED,
            limit,
        )
        return [self._waiting(r) for r in rows]

    async def get_waiting(self, conversation_id: int) -> Waiting | None:
        r = await self._one(
            "SELECT id, texter_id, priority, queued_at, team, program_id FROM conversations"
            f" WHERE id = ? AND {_WAITING}",
            conversation_id,
            QUEUED,
        )
        return None if r is None else self._waiting(r)

    async def count_waiting(
        self, program_id: int | None, ahead: Sequence[Ahead], tie_with: Waiting | None = None
    ) -> int:
        where = [_WAITING]
        args: list[Any] = [QUEUED]
        if program_id is None:
            where.append("program_id IS NULL")
        else:
            where.append("program_id = ?")
            args.append(program_id)
        rules: list[str] = []
        for rule in ahead:
            if rule.every:
                rules.append("priority = ?")
                args.append(rule.priority)
                continue
            when: list[str] = []
            given: list[Any] = [rule.priority]
            if rule.through is not None:
                when.append("queued_at <= ?")
                given.append(self._at(rule.through))
            if rule.ties and tie_with is not None:
                # Listed before tie_with: newer activity, or the same and a higher id.
                when.append(
                    "(queued_at = ? AND (COALESCE(updated_at, created_at), id) > (SELECT"
                    " COALESCE(updated_at, created_at), id FROM conversations WHERE id = ?))"
                )
                given += [self._at(tie_with.queued_at), tie_with.id]
            if when:
                rules.append(f"(priority = ? AND ({' OR '.join(when)}))")
                args += given
        if not rules:
            return 0
        r = await self._returning(
            f"SELECT COUNT(*) AS n FROM conversations WHERE {' AND '.join(where)}"
            f" AND ({' OR '.join(rules)})",
            *args,
        )
        return int(r["n"])

    async def held_counts(self, states: Sequence[str]) -> dict[int, int]:
        if not states:
            return {}
        # Counted here, not by GROUP BY, which SQLite serves by walking the holder index
        # through every closed conversation (40 ms at 100,000); held ones are few.
        rows = await self._fetch(  # conversations_recent (state, ...)
            f"SELECT advocate_id FROM conversations WHERE state IN ({marks(len(states))})",
            *states,
        )
        return dict(Counter(r["advocate_id"] for r in rows if r["advocate_id"] is not None))

    async def claim_spans(
        self, states: Sequence[str], limit: int
    ) -> list[tuple[datetime | None, datetime | None]]:
        check(limit > 0, "limit must be positive")
        if not states:
            return []
        rows = await self._fetch(
            "SELECT claimed_at, closed_at FROM conversations"
            f" WHERE state IN ({marks(len(states))}) ORDER BY {_NEWEST} LIMIT ?",
            *states,
            limit,
        )
        return [(self._dto(r["claimed_at"]), self._dto(r["closed_at"])) for r in rows]

    async def get_conversations(self, conversation_ids: Sequence[int]) -> dict[int, Conversation]:
        rows = await self._fetch_in(
            "SELECT * FROM conversations WHERE id IN ({ids})", conversation_ids
        )
        return {r["id"]: self._conversation(r) for r in rows}

    async def texter_conversations(
        self, texter_id: int, states: Sequence[str] | None = None, limit: int = 10
    ) -> list[Conversation]:
        check(limit > 0, "limit must be positive")
        where = "texter_id = ?"
        args: list[Any] = [texter_id]
        if states is not None:
            if not states:
                return []
            where += f" AND state IN ({marks(len(states))})"
            args.extend(states)
        rows = await self._fetch(  # conversations_texter (texter_id, id), walked backwards
            f"SELECT * FROM conversations WHERE {where} ORDER BY id DESC LIMIT ?", *args, limit
        )
        return [self._conversation(r) for r in rows]

    async def due_timers(self, now: datetime, limit: int = 100) -> list[Conversation]:
        at = self._at(now)
        rows = await self._fetch(
            "SELECT * FROM conversations WHERE nudge_at <= ? OR expire_at <= ?"
            f" ORDER BY id LIMIT ?{self._SKIP_LOCKED}",
            at,
            at,
            limit,
        )
        return [self._conversation(r) for r in rows]

    async def claim(self, conversation_id: int, advocate_id: int, now: datetime) -> Conversation:
        at = self._at(now)
        # One statement: the WHERE clause is the race check (two advocates never both win).
        r = await self._one(
            "UPDATE conversations SET state = ?, advocate_id = ?,"
            " claimed_at = ?, updated_at = ?, transfer_to = NULL"
            " WHERE id = ? AND state = ? AND advocate_id IS NULL RETURNING *",
            WITH_ADVOCATE,
            advocate_id,
            at,
            at,
            conversation_id,
            QUEUED,
        )
        if r is None:
            await self._require("conversations", conversation_id)
            raise Conflict(f"conversation {conversation_id} is not waiting in the queue")
        return self._conversation(r)

    # -- notes: staff's, per conversation, encrypted at rest like message bodies -----------
    def _note(self, r: Row) -> Note:
        return Note(
            id=r["id"],
            conversation_id=r["conversation_id"],
            user_id=r["user_id"],
            body=self._dec(r["body_enc"]),
            created_at=self._dt(r["created_at"]),
        )

    async def add_note(self, conversation_id: int, user_id: int, body: str, now: datetime) -> Note:
        await self._require("conversations", conversation_id)
        r = await self._returning(
            "INSERT INTO notes (conversation_id, user_id, body_enc, created_at)"
            " VALUES (?, ?, ?, ?) RETURNING *",
            conversation_id,
            user_id,
            self._enc(body),
            self._at(now),
        )
        return self._note(r)

    async def note_counts(self, conversation_ids: Sequence[int]) -> dict[int, int]:
        rows = await self._fetch_in(
            "SELECT conversation_id, COUNT(*) AS n FROM notes"
            " WHERE conversation_id IN ({ids}) GROUP BY conversation_id",
            conversation_ids,
        )
        return {r["conversation_id"]: int(r["n"]) for r in rows}

    async def list_notes(self, conversation_id: int) -> list[Note]:
        rows = await self._fetch(
            "SELECT * FROM notes WHERE conversation_id = ? ORDER BY id", conversation_id
        )
        return [self._note(r) for r in rows]
