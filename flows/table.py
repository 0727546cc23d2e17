"""How a flow is written: rows of (trigger, source, dest, conditions, actions), the
per-message model transitions drives, and the checks that keep a table whole. The intake
conversation itself is flows/intake.py; the machine that runs a table, flows/machine.py."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from transitions import EventData

from flows.model import FlowConversation, Turn
from flows.states import (
    INITIAL,
    STATES,
)

ANY = "*"
TIMERS = ("nudge", "expire")
# Staff actions, each stepped under the texter's lock (bot.handoff): an advocate takes the
# texter, hands them back to the queue, closes; a supervisor reassigns; the shift opens.
ADVOCATE_EVENTS = ("claim", "release", "close", "reassign", "open")
# Every state must answer these (a fallback row with no conditions), so no inbound message
# or timer can fall through the table.
COVERED_TRIGGERS = (
    "message",
    "stop",
    "start",
    "help",
    "language",
    "agent",
    "exit",
    "delete",
    *TIMERS,
)


class FlowError(ValueError):
    """A conversation in an unknown state, a trigger the state can't take, or bad input.
    Messages never contain texter text or numbers."""


class FlowTableError(FlowError):
    """The transition table is malformed (unknown state, unreachable state, a state that
    can't answer a message or keyword)."""


# ── The per-message model ─────────────────────────────────────────────────────────────
class Step:
    """What transitions drives for one message: identity equality and `state` proxied to
    the conversation (the conversation stays a plain dataclass). Never added to the
    machine: flows.machine fires events on it directly."""

    def __init__(self, conv: FlowConversation) -> None:
        self.conv = conv

    @property
    def state(self) -> str:
        return self.conv.state

    @state.setter
    def state(self, value: str) -> None:
        self.conv.state = value


Cond = Callable[[EventData], bool]


@dataclass(frozen=True)
class Do:
    """One action of a row, with the message ids it may say (for checks and reports)."""

    fn: Callable[[EventData], None]
    says: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", "action")

    def __call__(self, ev: EventData) -> None:
        self.fn(ev)


def action(*message_ids: str) -> Callable[[Callable[[EventData], None]], Do]:
    def wrap(fn: Callable[[EventData], None]) -> Do:
        return Do(fn, frozenset(message_ids))

    return wrap


def say(message_id: str) -> Do:
    def speak(ev: EventData) -> None:
        conv_of(ev).say(message_id)

    speak.__name__ = f"say_{message_id}"
    return Do(speak, frozenset({message_id}))


@dataclass(frozen=True)
class Row:
    trigger: str
    sources: tuple[str, ...]  # ("*",) for every state
    dest: str | None  # None: stay, no exit/enter
    when: tuple[Cond, ...] = ()
    unless: tuple[Cond, ...] = ()
    then: tuple[Do, ...] = ()
    back: bool = False  # returns to the state before (drawn once in the diagram)

    @property
    def unconditional(self) -> bool:
        return not self.when and not self.unless


def _tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple | list):
        return tuple(value)
    return (value,)


def row(
    trigger: str,
    source: str | Collection[str],
    dest: str | None,
    *,
    when: Cond | tuple[Cond, ...] | None = None,
    unless: Cond | tuple[Cond, ...] | None = None,
    then: Do | tuple[Do, ...] | None = None,
    back: bool = False,
) -> Row:
    if isinstance(source, str):
        sources: tuple[str, ...] = (source,)
    else:
        # Table order, so generated transitions and the diagram are stable.
        known = [s for s in STATES if s in source]
        sources = tuple(known + sorted(set(source) - set(known)))
    return Row(trigger, sources, dest, _tuple(when), _tuple(unless), _tuple(then), back)


# ── Reading the event ─────────────────────────────────────────────────────────────────
def conv_of(ev: EventData) -> FlowConversation:
    step = ev.model
    if not isinstance(step, Step):
        raise FlowError("the flow's model must be a Step")
    return step.conv


def turn_of(ev: EventData) -> Turn:
    turn = ev.kwargs.get("turn")
    if not isinstance(turn, Turn):
        raise FlowError(f"trigger {ev.event.name!r} needs a Turn")
    return turn


def keyword_of(ev: EventData) -> str | None:
    kw: str | None = ev.kwargs.get("keyword")
    return kw


# ── Checking and building ─────────────────────────────────────────────────────────────
def expand(sources: tuple[str, ...], states: tuple[str, ...]) -> tuple[str, ...]:
    return states if ANY in sources else sources


def validate_table(states: tuple[str, ...], rows: Iterable[Row], initial: str = INITIAL) -> None:
    """Raise FlowTableError unless every row names known states, every state is
    reachable from `initial`, and every state answers every message trigger and timer."""
    rows = tuple(rows)
    if len(set(states)) != len(states) or ANY in states:
        raise FlowTableError("states must be unique names")
    if initial not in states:
        raise FlowTableError(f"initial state {initial!r} is not a state")
    known = set(states)
    for r in rows:
        for name in (*r.sources, r.dest):
            if name is not None and name != ANY and name not in known:
                raise FlowTableError(f"row {r.trigger!r}: unknown state {name!r}")
    reached, frontier = {initial}, [initial]
    while frontier:
        here = frontier.pop()
        for r in rows:
            if r.dest and r.dest not in reached and here in expand(r.sources, states):
                reached.add(r.dest)
                frontier.append(r.dest)
    if unreachable := [s for s in states if s not in reached]:
        raise FlowTableError(f"states not reachable from {initial!r}: {unreachable}")
    for trigger in COVERED_TRIGGERS:
        for state in states:
            if not any(
                r.trigger == trigger and r.unconditional and state in expand(r.sources, states)
                for r in rows
            ):
                raise FlowTableError(f"state {state!r} has no fallback row for {trigger!r}")


def sequence(actions: tuple[Do, ...]) -> Callable[[EventData], None]:
    # One callback per row: transitions runs a list of callbacks through asyncio.gather,
    # and the order of what we say matters.
    def run(ev: EventData) -> None:
        for act in actions:
            act(ev)

    return run
