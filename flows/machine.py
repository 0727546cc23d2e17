"""The machine that runs a flow table: one transitions Machine, built once and never given
a model. Each message wraps its conversation in a fresh `Step` and fires the machine's
event on it directly (`Event.trigger(step, ...)` takes any object with a `state`): no
add_model/remove_model per message, which bound ~40 methods and registered the model with
every state only to undo it (issue 11's profile: ~0.6 ms a message). Any number of
conversations can be in flight at once, each with its own Step.

The machine is transitions' synchronous Machine, not its AsyncMachine: every callback of
the table is a plain function (checked when the flow is built), and the AsyncMachine ran
each callback list (conditions, before, after, prepare, finalize) as coroutines, which cost
more than the callbacks themselves (issue 11, benchmarks/RESULTS.md "FSM step"). A step
therefore never yields to the event loop; the async entry points are the engine's API."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Iterable
from dataclasses import MISSING
from datetime import datetime
from typing import TYPE_CHECKING, Any

from transitions import EventData, Machine, MachineError

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
    FlowTableError,
    Row,
    Step,
    expand,
    sequence,
    validate_table,
)

if TYPE_CHECKING:
    from transitions.core import Callback  # only in transitions' type stubs


class StepMachine(Machine):
    """transitions' Machine, calling each callback directly: a table row's callbacks are
    plain functions (IntakeFlow refuses coroutine functions), and Machine.callbacks' log
    line per callback cost more than most of our callbacks."""

    def callbacks(self, funcs: Iterable[Callback], event_data: EventData) -> None:
        for func in funcs:
            if callable(func):
                func(event_data)
            else:
                self.callback(func, event_data)


def _refuse_coroutines(r: Row) -> None:
    # Nothing awaits inside a step: that is what lets it run on the synchronous Machine.
    for fn in (*r.when, *r.unless, *(act.fn for act in r.then)):
        if inspect.iscoroutinefunction(fn):
            raise FlowTableError(
                f"row {r.trigger!r}: callbacks must be plain functions, got {fn!r}"
            )


class _Session:
    """One step: the message is normalised once (keywords.one_reading), and bad input
    changes nothing: on any error the conversation is put back as it was. A class, not
    @contextmanager, whose generator cost more than the snapshot."""

    __slots__ = ("conv", "reading", "snapshot")

    def __init__(self, conv: FlowConversation) -> None:
        self.conv = conv
        self.reading = keywords.one_reading()

    def __enter__(self) -> Step:
        self.snapshot = _snapshot(self.conv)
        self.reading.__enter__()
        return Step(self.conv)  # never added to the machine: _fire triggers on it directly

    def __exit__(self, kind: type[BaseException] | None, *_exc: object) -> None:
        self.reading.__exit__()
        if kind is not None:
            _restore(self.conv, self.snapshot)


def _copied(value: Any) -> Any:
    """A deep copy of plain data (dicts, lists, sets of scalars), much cheaper than
    copy.deepcopy's memo bookkeeping; anything else goes to deepcopy."""
    if value is None or isinstance(value, str | int | float | bool | Say):
        return value
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, set):
        return {_copied(v) for v in value}
    return copy.deepcopy(value)


def _data_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v if type(v) in _SCALARS else _copied(v) for k, v in data.items()}


# What a failed step puts back. The flow rebinds scalar fields, adds to and removes from
# the containers, and sets or pops top-level keys of `data`; it never changes a value
# inside them. So scalar fields are kept as they are, each container is copied one level,
# and `data`'s own values deeper (a stored scratch value may be a list or dict).
_SCALARS = frozenset({str, int, float, bool, type(None)})
_COPIERS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("labels", set),
    ("signals", list),
    ("answers", dict),
    ("data", _data_copy),
    ("replies", list),
    ("effects", list),
)
# A container field (one with a default_factory) added to FlowConversation needs a copier.
if _uncopied := {
    f.name for f in dataclasses.fields(FlowConversation) if f.default_factory is not MISSING
} - {name for name, _ in _COPIERS}:
    raise TypeError(f"flows.machine: no snapshot copier for {sorted(_uncopied)}")


def _snapshot(conv: FlowConversation) -> dict[str, Any]:
    snapshot = dict(vars(conv))
    for name, copier in _COPIERS:
        snapshot[name] = copier(snapshot[name])
    return snapshot


def _restore(conv: FlowConversation, snapshot: dict[str, Any]) -> None:
    vars(conv).update(snapshot)


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
        self.machine = StepMachine(
            model=None,
            states=list(self.states),
            initial=INITIAL,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for r in self.rows:
            _refuse_coroutines(r)
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
        """Step `conv` by one inbound message; replies and effects land on `conv`.
        (Async for the engine's sake; nothing in a step awaits.)"""
        with self._session(conv) as step:
            origin = conv.state
            trigger, kw = self._classify(conv, turn.text)
            self._fire(step, trigger, turn=turn, keyword=kw, origin=origin)
            if trigger == "decline" and not keywords.declines(turn.text):
                # Back in the earlier state: the message is handled there ("no" only
                # answered our question, and must not answer the one before it).
                trigger, kw = self._classify(conv, turn.text)
                self._fire(step, trigger, turn=turn, keyword=kw, origin=conv.state)

    async def escalate(self, conv: FlowConversation, turn: Turn) -> None:
        """Danger before an advocate has it: straight to the queue (instead of handle).
        Allowed from BEFORE_QUEUE, opted_out and confirm_delete (ESCALATE_STATES)."""
        if conv.state not in ESCALATE_STATES:
            raise FlowError(f"escalate is not for state {conv.state!r}")
        with self._session(conv) as step:
            self._fire(step, "escalate", turn=turn, origin=conv.state)

    async def timer(self, conv: FlowConversation, kind: str, now: datetime) -> None:
        """A timer fired: "nudge" (one nudge, only when safe to text) or "expire"."""
        if kind not in TIMERS:
            raise FlowError(f"unknown timer {kind!r}; expected one of {TIMERS}")
        with self._session(conv) as step:
            self._fire(step, kind, now=now, origin=conv.state)

    async def advocate(self, conv: FlowConversation, kind: str) -> None:
        """The advocate side: "claim" (→ with_advocate, held), "release" (→ queued),
        "close" (→ closed)."""
        if kind not in ADVOCATE_EVENTS:
            raise FlowError(f"unknown advocate event {kind!r}; expected one of {ADVOCATE_EVENTS}")
        with self._session(conv) as step:
            self._fire(step, kind, origin=conv.state)

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

    def _session(self, conv: FlowConversation) -> _Session:
        if conv.state not in self.states:
            raise FlowError(f"conversation is in an unknown state {conv.state!r}")
        return _Session(conv)

    def _fire(self, step: Step, trigger: str, **kwargs: Any) -> None:
        state = step.state
        try:
            done = self.machine.events[trigger].trigger(step, **kwargs)
        except MachineError:
            raise FlowError(f"state {state!r} cannot take {trigger!r}") from None
        if not done:
            raise FlowError(f"no row for {trigger!r} in state {state!r}")
