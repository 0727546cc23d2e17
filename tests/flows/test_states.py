"""flows/states.py is the one source of state names, and the flow owns every state change."""

from __future__ import annotations

import ast
from pathlib import Path

from flows import states
from flows.intake import INTAKE

ROOT = Path(__file__).resolve().parents[2]
# The single place outside flows/ that writes a state: copying back what the flow decided
# (bot.flowstate.from_flow), and a new conversation's first state, which the flow names.
ALLOWED = {("bot/flowstate.py", "model.state"), ("bot/engine.py", "INTAKE.first_state(...)")}


def state_assignments(path: Path) -> list[tuple[int, str]]:
    """(line, value) for every `<something>.state = value` in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = [t for target in node.targets for t in _flatten(target)]
            value = node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets, value = [node.target], node.value  # type: ignore[assignment]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr == "state":
                text = ast.unparse(value) if value is not None else ""
                if isinstance(value, ast.Call):
                    text = ast.unparse(value.func) + "(...)"
                found.append((node.lineno, text))
    return found


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        return [t for item in target.elts for t in _flatten(item)]
    return [target]


def test_no_module_outside_flows_assigns_a_state() -> None:
    """Every change of a conversation's state is the flow's: outside flows/, the only
    writes are the engine copying the flow's decision back and the flow-named first state."""
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, value in state_assignments(path):
            if (rel, value) not in ALLOWED:
                offenders.append(f"{rel}:{line} assigns state = {value}")
    assert offenders == []


def test_the_checker_sees_a_state_assignment(tmp_path: Path) -> None:
    """The check above can fail: it finds plain, tuple and annotated assignments."""
    module = tmp_path / "m.py"
    module.write_text("conv.state = 'queued'\na.state, b = 'x', 1\nc.state: str = 'y'\n")
    assert [line for line, _ in state_assignments(module)] == [1, 2, 3]


def test_the_flow_uses_the_one_list_of_states() -> None:
    """The machine's states are flows.states.STATES; every derived set names known states."""
    assert INTAKE.states == states.STATES
    known = set(states.STATES)
    for name in dir(states):
        value = getattr(states, name)
        if name.isupper() and isinstance(value, frozenset):
            assert value <= known, name
