"""Queue policy: honest wait estimates from who is available and how long they take."""

from __future__ import annotations

import pytest

from bot.queue import estimate_wait
from bot.store.base import User


def staff(*capacities: int) -> list[User]:
    return [User(i, f"u{i}", "advocate", "x", capacity=c) for i, c in enumerate(capacities)]


@pytest.mark.parametrize(
    ("position", "capacities", "held", "minutes", "expected"),
    [
        (1, (), 0, 10, None),  # nobody available: no promise at all
        (1, (0,), 0, 10, None),  # available but no room at all
        (1, (3,), 0, 10, 1),  # a free place: about a minute
        (3, (3,), 0, 10, 1),
        (4, (3,), 0, 10, 4),  # one ahead of the free places: a third of a handling time
        (1, (3,), 3, 10, 4),  # all places taken: wait for one to free up
        (6, (3, 3), 6, 12, 12),  # two advocates, full: six ahead share twelve minutes each
        (10, (2,), 2, 20, 100),
    ],
)
def test_estimate_wait(
    position: int, capacities: tuple[int, ...], held: int, minutes: float, expected: int | None
) -> None:
    """Minutes come from places free now and measured handling time; None when nobody
    can take anyone."""
    assert estimate_wait(position, staff(*capacities), held, minutes) == expected
