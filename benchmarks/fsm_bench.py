"""The FSM step alone (issue 11): microseconds per inbound message through the intake flow.

    python -m benchmarks.fsm_bench [--rounds N] [--cprofile]

Realistic scripts walk the whole intake as the engine drives it: the stored conversation
converted to the flow's model (bot.flowstate.to_flow), one INTAKE.handle (or .escalate for
danger), and the result copied back (from_flow). Each turn starts from a fresh model, as
in the engine. Prints the minimum over rounds of the mean per step, for the flow step
alone and with the conversions around it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from datetime import UTC, datetime

from bot.flowstate import from_flow, to_flow
from bot.store.records import Conversation, Texter
from flows.intake import INTAKE
from flows.model import Turn

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
DANGER = frozenset({"emergency"})
# (text, labels, danger): ordinary texters, keywords, a DELETE answered both ways, danger.
SCRIPTS: tuple[tuple[tuple[str, frozenset[str], bool], ...], ...] = tuple(
    tuple((t, frozenset(lab), d) for t, lab, d in s)
    for s in (
        [
            ("hi", (), False),
            ("yes", (), False),
            ("1", (), False),
            ("no", (), False),
            ("yes", (), False),
            ("not sure", (), False),
            ("I'm 16", (), False),
            ("no", (), False),
            ("skip", (), False),
            ("no", (), False),
            ("60601", (), False),
            ("thanks. he’s asleep now so it’s ok to text, I’ll wait", (), False),
            ("how long will it be?", (), False),
        ],
        [
            ("Hello? I need to talk to someone", (), False),
            ("STOP", (), False),
            ("START", (), False),
            ("HELP", (), False),
        ],
        [
            ("hola", (), False),
            ("ESPAÑOL", (), False),
            ("sí", (), False),
            ("DELETE", (), False),
            ("no", (), False),
            ("2", (), False),
            ("skip", (), False),
            ("yes", (), False),
            ("no", (), False),
            ("Chicago, cerca del lago. Está bien, él no está aquí ahora", (), False),
        ],
        [
            ("hi", (), False),
            (
                "he hit me again last night and took my phone, I’m texting from my"
                " sister’s. I don’t know what to do, I’m scared to go home 😢",
                {"abuse"},
                False,
            ),
            ("no", (), False),
            ("he has a gun and says he will kill me", {"abuse", "emergency"}, True),
            ("ok", (), False),
        ],
        [
            ("hi", (), False),
            ("it's not safe right now", (), False),
            ("ok i can talk now", (), False),
            ("yes", (), False),
            ("4", (), False),
            ("DELETE", (), False),
            ("delete", (), False),
        ],
        [("hi", (), False), ("yes", (), False), ("AGENT", (), False), ("EXIT", (), False)],
    )
)
TURNS = sum(len(s) for s in SCRIPTS)
EXIT_KEYWORDS = ("EXIT", "SALIR")
PASSES = 10  # per round: short rounds, so the minimum finds the quiet moments


async def one_pass(convert: bool) -> tuple[float, float]:
    """Seconds spent in the flow step alone, and in step plus conversions, for every script."""
    step = total = 0.0
    clock = time.perf_counter
    for script in SCRIPTS:
        conv = Conversation(id=1, texter_id=1, state="new", language="en")
        texter = Texter(id=1, phone_hash="h", phone="+15550000000", language="en")
        model = to_flow(conv, texter, EXIT_KEYWORDS)
        for text, labels, danger in script:
            t0 = clock()
            if convert:
                model = to_flow(conv, texter, EXIT_KEYWORDS)
            else:
                model.replies.clear()
                model.effects.clear()
            turn = Turn(text=text, now=NOW, labels=labels, priority=1 if danger else 4)
            t1 = clock()
            if danger and model.state in INTAKE.escalate_states:
                await INTAKE.escalate(model, turn)
            else:
                await INTAKE.handle(model, turn)
            t2 = clock()
            if convert:
                from_flow(conv, texter, model, NOW)
            t3 = clock()
            step += t2 - t1
            total += t3 - t0
    return step, total


async def main(rounds: int, profile: bool) -> None:
    await one_pass(True)  # warm-up
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(200):
            await one_pass(True)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    best_step = best_total = float("inf")
    for _ in range(rounds):
        steps = totals = 0.0
        for _ in range(PASSES):
            s, t = await one_pass(True)
            steps, totals = steps + s, totals + t
        best_step = min(best_step, steps / (PASSES * TURNS))
        best_total = min(best_total, totals / (PASSES * TURNS))
    print(f"{TURNS} turns per pass; min over {rounds} rounds of {PASSES} passes")
    print(f"flow step (handle/escalate): {best_step * 1e6:.1f} us")
    print(f"with to_flow/from_flow:      {best_total * 1e6:.1f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.cprofile))
