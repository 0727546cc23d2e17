"""One inbound message's read, in one statement (issue 11): the saved reply for its
MessageSid, the texter, their block flag and reply window, and their open conversation.

Before, these were five statements, each a round trip (on SQLite, a hop to aiosqlite's
thread: ~110 us against 1-2 us of SQL). One row always comes back: everything hangs off a
one-row `FROM`, by LEFT JOINs, so a new number or a first message still reads as one row
of NULLs. The texter's columns are prefixed `t_` (they share names with the
conversation's, which keep theirs, so ConversationTx reads them as they are).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bot.store.base import InboundState
from bot.store.tx.conversations import ConversationTx
from bot.store.tx.core import Row, marks
from bot.store.tx.texters import TexterTx
from flows.states import ENDED_STATES

_ENDED = sorted(ENDED_STATES)
_TEXTER_COLUMNS = (
    "id",
    "phone_hash",
    "phone_enc",
    "language",
    "safe_to_text",
    "unsafe_hours_enc",
    "opted_out",
    "created_at",
)
_TEXTER = ", ".join(f"t.{c} AS t_{c}" for c in _TEXTER_COLUMNS)
_OPEN = f"texter_id = t.id AND state NOT IN ({marks(len(_ENDED))}) ORDER BY id DESC LIMIT 1"


class _Prefixed(Mapping[str, Any]):
    """The `t_`-prefixed columns of a row, read by their own names."""

    def __init__(self, row: Row, prefix: str) -> None:
        self._row = row
        self._prefix = prefix

    def __getitem__(self, key: str) -> Any:
        return self._row[self._prefix + key]

    def __iter__(self) -> Iterator[str]:
        return iter(_TEXTER_COLUMNS)

    def __len__(self) -> int:
        return len(_TEXTER_COLUMNS)


class InboundTx(TexterTx, ConversationTx):
    # PostgreSQL: the open conversation comes from a LATERAL subquery that locks its row
    # (FOR UPDATE cannot reach the nullable side of an outer join); SQLite has no LATERAL
    # and no row locks, and picks the row by id in a scalar subquery instead.
    _LATERAL = False

    def _inbound_sql(self) -> str:
        if self._LATERAL:
            conversation = (
                f" LEFT JOIN LATERAL (SELECT * FROM conversations WHERE {_OPEN}"
                f"{self._FOR_UPDATE}) c ON TRUE"
            )
        else:
            conversation = (
                f" LEFT JOIN conversations c ON c.id = (SELECT id FROM conversations WHERE {_OPEN})"
            )
        return (
            f"SELECT r.body_enc AS saved_reply_enc, {_TEXTER},"
            " b.texter_id IS NOT NULL AS blocked,"
            " w.started_at AS window_started_at, w.replies AS window_replies, c.*"
            " FROM (SELECT 1 AS one) AS one"
            " LEFT JOIN replies r ON r.message_sid = ?"
            " LEFT JOIN texters t ON t.phone_hash = ?"
            " LEFT JOIN texter_blocks b ON b.texter_id = t.id"
            " LEFT JOIN reply_windows w ON w.texter_id = t.id" + conversation
        )

    async def load_inbound(self, phone_hash: str, message_sid: str) -> InboundState:
        r = await self._returning(self._inbound_sql(), message_sid, phone_hash, *_ENDED)
        saved = r["saved_reply_enc"]
        started = r["window_started_at"]
        return InboundState(
            saved_reply=None if saved is None else self._dec(saved),
            texter=None if r["t_id"] is None else self._texter(_Prefixed(r, "t_")),
            blocked=bool(r["blocked"]),
            reply_window=None if started is None else (self._dt(started), int(r["window_replies"])),
            conversation=None if r["id"] is None else self._conversation(r),
        )
