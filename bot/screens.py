"""Screening tools an advocate administers with the texter (issue 8, part 2): the full
Lethality Screen and a trafficking screen (adult, or youth indicators for under-18s).

Pure functions: the items, what the texter's own answers by text prefill, how a screen is
scored, and what a screen-in does to the conversation (priority only rises). Storage and
the dashboard live elsewhere (bot/store/tx/advocate_tools.py, bot/dashboard/views/tools.py).
Item wording is staff-facing: the advocate asks in their own words, in the texter's
language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.store.base import Conversation

ANSWERS = ("yes", "no", "skip")
SCREEN_IN_PRIORITY = 2  # DESIGN.md section 5: a screened-in lethality or trafficking answer
MINOR_IN_COMMERCIAL_SEX_PRIORITY = 1
TRAFFICKING_LABEL = "trafficking"
BASIS = "screening"  # conv.flow["priority_basis"], as bot.queue.priority_basis reads it


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    # The intake answer (flows/screening.py) that already answers this item, and the
    # intake value that means "yes" here (free_to_leave is asked the other way round).
    prefill_from: str | None = None
    prefill_yes: str = "yes"


@dataclass(frozen=True)
class Tool:
    kind: str
    title: str
    items: tuple[Item, ...]


# The Lethality Screen of the Lethality Assessment Program (Maryland Model), in its
# standard wording. A yes to any of items 1-3 screens in; otherwise 4 or more yes among
# items 4-11 do.
LETHALITY = Tool(
    "lethality",
    "Lethality Screen",
    (
        Item(
            "l1",
            "Has he/she ever used a weapon against you or threatened you with a weapon?",
            "weapon",
        ),
        Item("l2", "Has he/she threatened to kill you or your children?", "threats_kill"),
        Item("l3", "Do you think he/she might try to kill you?", "might_kill"),
        Item("l4", "Does he/she have a gun or can he/she get one easily?"),
        Item("l5", "Has he/she ever tried to choke you?", "choked"),
        Item(
            "l6",
            "Is he/she violently or constantly jealous or does "
            "he/she control most of your daily activities?",
        ),
        Item("l7", "Have you left him/her or separated after living together or being married?"),
        Item("l8", "Is he/she unemployed?"),
        Item("l9", "Has he/she ever tried or threatened to kill himself/herself?"),
        Item("l10", "Do you have a child that he/she knows is not his/hers?"),
        Item("l11", "Does he/she follow or spy on you or leave threatening messages?"),
    ),
)
LETHALITY_DIRECT = ("l1", "l2", "l3")
LETHALITY_COUNT_IN = 4  # yes answers among items 4-11 that screen in

# HHS's Adult Human Trafficking Screening Tool (AHTST, OTIP/NHTTAC 2018) asks eight short
# closed questions about work or living situations. Its verbatim text was not available
# while this was written: these are faithful plain-language items covering what it asks
# (feeling unsafe, being tricked or forced into work, threats if you leave, papers held,
# debt, threats of police or immigration, pay withheld, sex in exchange for something).
# The tool sets no score: any yes is a positive screen that calls for follow-up.
TRAFFICKING = Tool(
    "trafficking",
    "Trafficking screen (adult)",
    (
        Item(
            "t1",
            "Have you ever worked or done other things in "
            "a place that made you feel scared or unsafe?",
        ),
        Item(
            "t2",
            "Have you ever been tricked or forced into doing "
            "any kind of work you did not want to do?",
        ),
        Item(
            "t3",
            "Have you ever been afraid to leave a job or a place you "
            "lived because of threats against you or your family?",
            "free_to_leave",
            "no",
        ),
        Item(
            "t4",
            "Has anyone you worked for or lived with kept "
            "your ID, passport or other papers from you?",
            "id_held",
        ),
        Item(
            "t5",
            "Has anyone you worked for said you owe them money you feel you can never pay off?",
            "debt",
        ),
        Item(
            "t6", "Has anyone you worked for threatened to report you to the police or immigration?"
        ),
        Item(
            "t7",
            "Have you ever worked without being paid what "
            "you were promised, or had your pay taken?",
        ),
        Item(
            "t8",
            "Have you ever traded sex for money, a place to stay, food, drugs or anything else?",
        ),
    ),
)

# Youth indicators (under 18), in plain language after HHS/ACF guidance on child
# trafficking indicators (not a verbatim instrument). Any yes screens in; item 1 is a
# minor in commercial sex, which is priority 1 (DESIGN.md section 4, youth).
TRAFFICKING_YOUTH = Tool(
    "trafficking_youth",
    "Trafficking screen (under 18: youth indicators)",
    (
        Item(
            "y1",
            "Has anyone had you trade sex or sexual pictures for "
            "money, food, a place to stay, drugs or anything else?",
            "minor_sex",
        ),
        Item(
            "y2",
            "Is someone keeping you from leaving where you live or work, or from going to school?",
            "free_to_leave",
            "no",
        ),
        Item("y3", "Is someone keeping your ID or papers from you?", "id_held"),
        Item("y4", "Does someone take the money you earn, or say you owe them money?", "debt"),
        Item(
            "y5",
            "Has an older boyfriend, girlfriend or adult friend "
            "asked you to do things for money or gifts?",
        ),
        Item(
            "y6",
            "Are you staying with someone who wants something "
            "from you in return for a place to sleep?",
        ),
        Item("y7", "Has anyone asked you to bring other young people to them?"),
    ),
)
YOUTH_COMMERCIAL_SEX = "y1"

TOOLS = {tool.kind: tool for tool in (LETHALITY, TRAFFICKING, TRAFFICKING_YOUTH)}


@dataclass(frozen=True)
class Result:
    kind: str
    answers: dict[str, str]  # item id -> yes / no / skip (unanswered items left out)
    screened_in: bool
    basis: str  # "Lethality Screen: yes to item 2", or why it did not screen in
    priority: int | None  # what a screen-in raises the conversation to
    label: str | None
    signal: str | None

    def as_data(self) -> dict[str, object]:
        return {"answers": self.answers, "screened_in": self.screened_in, "basis": self.basis}


def tool(kind: str) -> Tool:
    if kind not in TOOLS:
        raise ValueError(f"screen must be one of {', '.join(TOOLS)}")
    return TOOLS[kind]


def trafficking_kind(intake_answers: Mapping[str, str]) -> str:
    """The youth indicators for a texter who said they are under 18, else the adult tool."""
    return TRAFFICKING_YOUTH.kind if intake_answers.get("under_18") == "yes" else TRAFFICKING.kind


def prefill(kind: str, intake_answers: Mapping[str, str]) -> dict[str, str]:
    """The items the texter already answered by text (yes / no / skip), by item id."""
    found: dict[str, str] = {}
    for item in tool(kind).items:
        given = intake_answers.get(item.prefill_from or "")
        if given == "skip":
            found[item.id] = "skip"
        elif given in ("yes", "no"):
            found[item.id] = "yes" if given == item.prefill_yes else "no"
    return found


def _numbers(ids: list[str]) -> str:
    nums = [i[1:] for i in ids]
    if len(nums) == 1:
        return f"item {nums[0]}"
    return f"items {', '.join(nums[:-1])} and {nums[-1]}"


def score(kind: str, answers: Mapping[str, str]) -> Result:
    """Score a screen from its answers (unknown items and values are refused)."""
    screen = tool(kind)
    ids = [item.id for item in screen.items]
    for key, value in answers.items():
        if key not in ids:
            raise ValueError(f"{key!r} is not an item of the {screen.title}")
        if value not in ANSWERS:
            raise ValueError(f"answers are yes, no or skip, not {value!r}")
    kept = {i: answers[i] for i in ids if i in answers}
    yes = [i for i in ids if kept.get(i) == "yes"]
    if kind == LETHALITY.kind:
        direct = [i for i in yes if i in LETHALITY_DIRECT]
        rest = [i for i in yes if i not in LETHALITY_DIRECT]
        if direct:
            basis = f"{screen.title}: yes to {_numbers(direct)}"
        elif len(rest) >= LETHALITY_COUNT_IN:
            basis = f"{screen.title}: yes to {len(rest)} of items 4-11 ({_numbers(rest)})"
        else:
            return Result(kind, kept, False, f"{screen.title}: did not screen in", None, None, None)
        return Result(kind, kept, True, basis, SCREEN_IN_PRIORITY, None, "screen:lethality")
    if not yes:
        return Result(kind, kept, False, f"{screen.title}: did not screen in", None, None, None)
    basis = f"{screen.title}: yes to {_numbers(yes)}"
    if YOUTH_COMMERCIAL_SEX in yes:
        basis += " (a minor in commercial sex)"
        priority, signal = MINOR_IN_COMMERCIAL_SEX_PRIORITY, "screen:trafficking_minor"
    else:
        priority, signal = SCREEN_IN_PRIORITY, "screen:trafficking"
    return Result(kind, kept, True, basis, priority, TRAFFICKING_LABEL, signal)


def apply(conv: Conversation, result: Result) -> bool:
    """What a screen-in does to the conversation: its signal, its label, and a priority
    that only rises (basis "screening" when it does). True when priority rose."""
    if not result.screened_in:
        return False
    if result.signal and result.signal not in conv.signals:
        conv.signals.append(result.signal)
    if result.label and result.label not in conv.labels:
        conv.labels.append(result.label)
    if result.priority is not None and result.priority < conv.priority:
        conv.priority = result.priority
        conv.flow["priority_basis"] = BASIS
        return True
    return False
