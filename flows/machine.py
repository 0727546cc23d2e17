"""The machine that runs a flow table: one transitions AsyncMachine, built once and never
given a model. Each message wraps its conversation in a fresh `Step` and fires the
machine's event on it directly (`Event.trigger(step, ...)` takes any object with a `state`):
no add_model/remove_model per message, which bound ~40 methods and registered the model
with every state only to undo it (issue 11's profile: ~0.6 ms a message). Any number of
conversations can be in flight at once, each with its own Step. The machine runs a
transition's callbacks one after another instead of through `asyncio.gather` (new Tasks
and loop turns for every callback list): our callbacks are plain functions, and their
order is what the texter reads."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from transitions import MachineError
from transitions.extensions.asyncio import AsyncMachine

from flows import keywords
from flows.model import FlowConversation, Say, Turn
from flows.states import (
    BEFORE_QUEUE,
    ESCALATE_STATES,
    INITIAL,
    NUDGE_STATES,
    OPTED_OUT,
    STATES,
)
from flows.table import (
    ADVOCATE_EVENTS,
    ANY,
    TIMERS,
    FlowError,
    Row,
    Step,
    expand,
    sequence,
    validate_table,
)


class InOrderMachine(AsyncMachine):
    """transitions' AsyncMachine, running each list of callbacks (conditions, actions,
    prepare and finalize hooks) in order in the calling task."""

    @staticmethod
    async def await_all(
        callables: list[Callable[..., Coroutine[Any, Any, bool | None]]],
    ) -> list[bool | None]:
        return [await func() for func in callables]


def _copied(value: Any) -> Any:
    """A deep copy of the conversation's plain data (dicts, lists, sets of scalars), much
    cheaper than copy.deepcopy's memo bookkeeping; anything else goes to deepcopy."""
    if value is None or isinstance(value, str | int | float | bool | Say):
        return value
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, set):
        return {_copied(v) for v in value}
    return copy.deepcopy(value)


_FIELDS = tuple(f.name for f in dataclasses.fields(FlowConversation))


class IntakeFlow:
    """The intake flow. Build once; share across all conversations."""

    def __init__(self, rows: Iterable[Row], states: tuple[str, ...] = STATES) -> None:
        self.rows: tuple[Row, ...] = tuple(rows)
        validate_table(states, self.rows)
        self.states: tuple[str, ...] = tuple(states)
        self.intake_states = BEFORE_QUEUE
        self.escalate_states = ESCALATE_STATES
        self.nudge_states = NUDGE_STATES
        self.message_ids: frozenset[str] = frozenset(
            message_id for r in self.rows for act in r.then for message_id in act.says
        )
        self.machine = InOrderMachine(
            model=None,
            states=list(self.states),
            initial=INITIAL,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for r in self.rows:
            for source in expand(r.sources, self.states):
                self.machine.add_transition(
                    r.trigger,
                    source,
                    r.dest,
                    conditions=list(r.when),
                    unless=list(r.unless),
                    after=[sequence(r.then)] if r.then else [],
                )

    # ── what the engine calls ──
    @staticmethod
    def first_state(*, opted_out: bool) -> str:
        """Where a new conversation starts: an opted-out number stays opted out (silent)
        until START."""
        return OPTED_OUT if opted_out else INITIAL

    async def handle(self, conv: FlowConversation, turn: Turn) -> None:
        """Step `conv` by one inbound message; replies and effects land on `conv`."""
        async with self._session(conv) as step:
            origin = conv.state
            trigger, kw = self._classify(conv, turn.text)
            await self._fire(step, trigger, turn=turn, keyword=kw, origin=origin)
            if trigger == "decline" and not keywords.declines(turn.text):
                # Back in the earlier state: the message is handled there ("no" only
                # answered our question, and must not answer the one before it).
                trigger, kw = self._classify(conv, turn.text)
                await self._fire(step, trigger, turn=turn, keyword=kw, origin=conv.state)

    async def escalate(self, conv: FlowConversation, turn: Turn) -> None:
        """Danger before an advocate has it: straight to the queue (instead of handle).
        Allowed from BEFORE_QUEUE, opted_out and confirm_delete (ESCALATE_STATES)."""
        if conv.state not in ESCALATE_STATES:
            raise FlowError(f"escalate is not for state {conv.state!r}")
        async with self._session(conv) as step:
            await self._fire(step, "escalate", turn=turn, origin=conv.state)

    async def timer(self, conv: FlowConversation, kind: str, now: datetime) -> None:
        """A timer fired: "nudge" (one nudge, only when safe to text) or "expire"."""
        if kind not in TIMERS:
            raise FlowError(f"unknown timer {kind!r}; expected one of {TIMERS}")
        async with self._session(conv) as step:
            await self._fire(step, kind, now=now, origin=conv.state)

    async def advocate(self, conv: FlowConversation, kind: str) -> None:
        """The advocate side: "claim" (→ with_advocate, held), "release" (→ queued),
        "close" (→ closed)."""
        if kind not in ADVOCATE_EVENTS:
            raise FlowError(f"unknown advocate event {kind!r}; expected one of {ADVOCATE_EVENTS}")
        async with self._session(conv) as step:
            await self._fire(step, kind, origin=conv.state)

    def diagram(self) -> str:
        """The flow as mermaid stateDiagram-v2 text (state changes only; keyword rows
        that apply in every state are drawn once, from "any state")."""
        lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}"]
        edges: dict[tuple[str, str], list[str]] = {}
        for r in self.rows:
            if r.dest is None:
                continue
            if r.back:
                edges.setdefault(("confirm_delete", "previous"), ["decline"])
                continue
            label = r.trigger
            conds = [c.__name__ for c in r.when] + [f"not {c.__name__}" for c in r.unless]
            if conds:
                label += f" [{', '.join(conds)}]"
            for source in ("any",) if ANY in r.sources else r.sources:
                labels = edges.setdefault((source, r.dest), [])
                if label not in labels:
                    labels.append(label)
        lines.append('    state "any state" as any')
        lines.append('    state "the state before" as previous')
        for (source, dest), labels in edges.items():
            lines.append(f"    {source} --> {dest} : {' | '.join(labels)}")
        return "\n".join(lines) + "\n"

    # ── internals ──
    @staticmethod
    def _classify(conv: FlowConversation, text: str) -> tuple[str, str | None]:
        exit_words = conv.data.get("exit_keywords")
        try:
            kw = keywords.keyword(text, exit_words)
        except TypeError as err:
            raise FlowError(f"conv.data['exit_keywords']: {err}") from None
        if conv.state == "confirm_delete":
            return ("confirm" if keywords.confirms_delete(text) else "decline"), kw
        if kw is None:
            return "message", None
        if kw in ("spanish", "english"):
            return "language", kw
        return kw, kw

    @asynccontextmanager
    async def _session(self, conv: FlowConversation) -> AsyncIterator[Step]:
        if conv.state not in self.states:
            raise FlowError(f"conversation is in an unknown state {conv.state!r}")
        # Bad input changes nothing: on any error the conversation is put back as it was.
        snapshot = {name: _copied(getattr(conv, name)) for name in _FIELDS}
        try:
            yield Step(conv)  # never added to the machine: _fire triggers on it directly
        except BaseException:
            for name, value in snapshot.items():
                setattr(conv, name, value)
            raise

    async def _fire(self, step: Step, trigger: str, **kwargs: Any) -> None:
        state = step.state
        try:
            done = await self.machine.events[trigger].trigger(step, **kwargs)
        except MachineError:
            raise FlowError(f"state {state!r} cannot take {trigger!r}") from None
        if not done:
            raise FlowError(f"no row for {trigger!r} in state {state!r}")
