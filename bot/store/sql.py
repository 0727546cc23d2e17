"""One SQL implementation of `Tx` shared by the SQLite and PostgreSQL backends, assembled
from one mixin per area (bot/store/tx/: texters, conversations, messages, outbox, accounts,
alarms, operations, resources, advocate tools, programs, abuse, one inbound message's
read), plus the migration files' loader and the no-nesting guard.

What is encrypted at rest (bot.crypto, AES-GCM): a texter's phone number and unsafe hours,
message and note bodies, saved webhook replies, outbox recipients, and one JSON blob per
conversation holding what the texter told us (need, screening answers, triage signals,
location, the flow's scratch). Labels, states, priorities and timestamps stay plain so the
queue can be sorted and filtered in SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.store.tx.abuse import AbuseTx
from bot.store.tx.accounts import AccountTx
from bot.store.tx.advocate_tools import AdvocateToolsTx
from bot.store.tx.alarms import AlarmTx
from bot.store.tx.conversations import ConversationTx
from bot.store.tx.core import Row, utc
from bot.store.tx.inbound import InboundTx
from bot.store.tx.logins import LoginTx
from bot.store.tx.messages import MessageTx
from bot.store.tx.operations import OperationsTx
from bot.store.tx.outbox import OutboxTx
from bot.store.tx.programs import ProgramTx
from bot.store.tx.resources import ResourceTx
from bot.store.tx.texters import TexterTx, alias_for

__all__ = [
    "Migration",
    "Row",
    "SqlTx",
    "alias_for",
    "load_migrations",
    "no_nesting",
    "utc",
]


class SqlTx(
    InboundTx,
    TexterTx,
    ConversationTx,
    MessageTx,
    OutboxTx,
    AbuseTx,
    AccountTx,
    LoginTx,
    AlarmTx,
    OperationsTx,
    ResourceTx,
    AdvocateToolsTx,
    ProgramTx,
):
    """Every Tx method, written once. Backends supply the four primitives of
    bot.store.tx.core.SqlTxBase (`_fetch`, `_execute`, `_ts`, `_dt`)."""


MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def load_migrations(dialect: Literal["sqlite", "postgres"]) -> list[Migration]:
    """The numbered files migrations/<dialect>/NNNN_name.sql, in order."""
    found = []
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        head, _, _ = path.stem.partition("_")
        if not head.isdigit():
            raise RuntimeError(f"migration file {path.name} must start with a number")
        found.append(Migration(int(head), path.stem, path.read_text()))
    numbers = [m.number for m in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two {dialect} migrations share a number: {numbers}")
    return found


# The task inside a transaction, so a nested one fails loudly instead of deadlocking on
# SQLite's single write connection (tasks started inside a transaction may open their own).
_TX_TASK: ContextVar[asyncio.Task[Any] | None] = ContextVar("haven_tx_task", default=None)


@contextmanager
def no_nesting() -> Iterator[None]:
    task = asyncio.current_task()
    if task is not None and _TX_TASK.get() is task:
        raise RuntimeError("store transactions do not nest: finish the open one first")
    token = _TX_TASK.set(task)
    try:
        yield
    finally:
        _TX_TASK.reset(token)
