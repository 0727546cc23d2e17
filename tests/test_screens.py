"""The screening tools advocates administer (bot.screens): Lethality Screen scoring, the
trafficking screen (adult and youth), prefill from answers given by text, and what a
screen-in does to a conversation."""

from __future__ import annotations

import pytest

from bot import screens
from bot.store.base import Conversation


def yes_to(*ids: str, kind: str = "lethality") -> dict[str, str]:
    items = [i.id for i in screens.tool(kind).items]
    return {i: ("yes" if i in ids else "no") for i in items}


def test_the_lethality_screen_has_its_eleven_items_in_order() -> None:
    """Eleven items, l1..l11; the first three are the weapon, threats-to-kill and
    might-kill questions of the standard screen."""
    items = screens.LETHALITY.items
    assert [i.id for i in items] == [f"l{n}" for n in range(1, 12)]
    assert "weapon" in items[0].text and "kill you or your children" in items[1].text
    assert "might try to kill you" in items[2].text and "choke" in items[4].text


@pytest.mark.parametrize("item", ["l1", "l2", "l3"])
def test_a_yes_to_any_of_items_1_to_3_screens_in(item: str) -> None:
    """One yes among items 1-3 screens in at P2, whatever items 4-11 say."""
    result = screens.score("lethality", yes_to(item))
    assert result.screened_in and result.priority == 2
    assert result.basis == f"Lethality Screen: yes to item {item[1:]}"
    assert result.signal == "screen:lethality" and result.label is None


def test_four_yes_among_items_4_to_11_screen_in_and_three_do_not() -> None:
    """Without a yes to 1-3, four yes answers among 4-11 screen in; three do not."""
    three = screens.score("lethality", yes_to("l4", "l6", "l8"))
    four = screens.score("lethality", yes_to("l4", "l6", "l8", "l11"))
    assert not three.screened_in and three.priority is None
    assert four.screened_in
    assert four.basis == "Lethality Screen: yes to 4 of items 4-11 (items 4, 6, 8 and 11)"


def test_skipped_and_unanswered_items_are_not_yes() -> None:
    """Skips and gaps count for nothing: three yes plus a skip among 4-11 stay out."""
    answers = {"l4": "yes", "l5": "yes", "l6": "yes", "l7": "skip"}
    assert not screens.score("lethality", answers).screened_in


def test_bad_items_and_values_are_refused() -> None:
    """An item the tool does not have, or an answer other than yes/no/skip, is an error."""
    with pytest.raises(ValueError):
        screens.score("lethality", {"t1": "yes"})
    with pytest.raises(ValueError):
        screens.score("lethality", {"l1": "maybe"})
    with pytest.raises(ValueError):
        screens.score("nonsense", {})


def test_trafficking_adult_any_yes_screens_in_with_the_label() -> None:
    """The adult trafficking screen: any yes is positive, P2 with the trafficking label;
    none is negative."""
    result = screens.score("trafficking", yes_to("t4", "t5", kind="trafficking"))
    assert result.screened_in and result.priority == 2 and result.label == "trafficking"
    assert result.basis == "Trafficking screen (adult): yes to items 4 and 5"
    assert not screens.score("trafficking", yes_to(kind="trafficking")).screened_in


def test_youth_commercial_sex_is_priority_one() -> None:
    """For an under-18, a yes to commercial sex is P1; another youth indicator is P2."""
    sex = screens.score("trafficking_youth", {"y1": "yes"})
    papers = screens.score("trafficking_youth", {"y3": "yes"})
    assert sex.priority == 1 and sex.signal == "screen:trafficking_minor"
    assert "a minor in commercial sex" in sex.basis
    assert papers.priority == 2 and papers.signal == "screen:trafficking"


def test_prefill_maps_texted_answers_to_items() -> None:
    """Answers given by text fill the matching items; "not free to leave" is a yes to the
    item asked the other way round; a skip stays a skip."""
    intake = {"weapon": "yes", "threats_kill": "no", "choked": "skip", "under_18": "no"}
    assert screens.prefill("lethality", intake) == {"l1": "yes", "l2": "no", "l5": "skip"}
    trafficking = {"free_to_leave": "no", "id_held": "yes", "debt": "no"}
    assert screens.prefill("trafficking", trafficking) == {"t3": "yes", "t4": "yes", "t5": "no"}
    youth = {"under_18": "yes", "minor_sex": "yes", "free_to_leave": "yes"}
    assert screens.trafficking_kind(youth) == "trafficking_youth"
    assert screens.trafficking_kind({"under_18": "no"}) == "trafficking"
    assert screens.prefill("trafficking_youth", youth) == {"y1": "yes", "y2": "no"}


def test_a_screen_in_raises_priority_and_never_lowers_it() -> None:
    """P4 rises to P2 with basis "screening"; a P1 stays P1 (the signal and label are
    still recorded); a negative screen changes nothing."""
    low = Conversation(id=1, texter_id=1, priority=4)
    assert screens.apply(low, screens.score("trafficking", {"t2": "yes"}))
    assert (low.priority, low.flow["priority_basis"]) == (2, "screening")
    assert low.labels == ["trafficking"] and low.signals == ["screen:trafficking"]
    high = Conversation(id=2, texter_id=1, priority=1, flow={"priority_basis": "words"})
    assert not screens.apply(high, screens.score("lethality", {"l2": "yes"}))
    assert high.priority == 1 and high.flow["priority_basis"] == "words"
    assert high.signals == ["screen:lethality"]
    quiet = Conversation(id=3, texter_id=1, priority=3)
    assert not screens.apply(quiet, screens.score("lethality", {"l4": "yes"}))
    assert (quiet.priority, quiet.signals, quiet.labels) == (3, [], [])
