"""The shape of bot.triage (issue 12): submodules import one another without a cycle,
lexicon and model load on first use, and the training tool is never shipped."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "bot" / "triage"


def _imports(path: Path) -> set[str]:
    """bot.triage modules `path` imports ("bot.triage" itself means the package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n for n in names if n.startswith("bot.triage") and _module_path(n)}
    return found


def _module_path(name: str) -> Path | None:
    parts = name.split(".")[2:]
    if not parts:
        return PACKAGE / "__init__.py"
    path = PACKAGE.joinpath(*parts).with_suffix(".py")
    return path if path.is_file() else None


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = "bot.triage" if path.stem == "__init__" else f"bot.triage.{path.stem}"
        graph[name] = _imports(path) - {name}
    return graph


def test_submodules_import_each_other_without_a_cycle() -> None:
    """No chain of imports inside bot.triage comes back to where it started, and no
    submodule imports the package itself (that would pull in every other module)."""
    graph = _graph()
    assert len(graph) >= 8, sorted(graph)
    for name, deps in graph.items():
        if name != "bot.triage":
            assert "bot.triage" not in deps, f"{name} imports the package bot.triage"
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, "import cycle: " + " -> ".join((*path, name))
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_the_model_and_the_matcher_know_nothing_of_each_other() -> None:
    """The model reads features only, so training can use it without the rules; the
    matcher reads the lexicon only. Only the pipeline joins them."""
    graph = _graph()
    assert graph["bot.triage.model"] <= {"bot.triage.verdict"}
    assert "bot.triage.model" not in graph["bot.triage.match"]
    assert "bot.triage.match" not in graph["bot.triage.model"]
    assert {"bot.triage.match", "bot.triage.model"} <= graph["bot.triage.pipeline"]


def test_lexicon_and_model_load_on_first_use() -> None:
    """Importing bot.triage (as the app does) loads neither the lexicon nor the model, nor
    any training code; the first triage() loads both, once; warm() compiles every pattern."""
    script = """
import sys
import bot.triage
from bot.triage.lexicon import get_lexicon
from bot.triage.model import get_model
sizes = lambda: (get_lexicon.cache_info().currsize, get_model.cache_info().currsize)
assert sizes() == (0, 0), sizes()
assert not {"sklearn", "tools"} & set(sys.modules)
assert bot.triage.triage("he has a knife").danger
assert sizes() == (1, 1), sizes()
lexicon = get_lexicon()
compiled = lambda: sum(p._compiled is not None for r in lexicon.rules for p in r.patterns)
before = compiled()
total = bot.triage.warm()
assert 0 < before < compiled() <= total, (before, compiled(), total)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_old_module_constants_still_import() -> None:
    """LEXICON and MODEL, once module constants, still import from bot.triage and are the
    very objects triage() uses."""
    from bot.triage import LEXICON, MODEL, get_lexicon, get_model

    assert LEXICON is get_lexicon()
    assert MODEL is get_model() and MODEL is not None


def test_training_code_is_not_shipped() -> None:
    """pyproject's package discovery ships bot (with bot.triage) but not tools/, where the
    training code (and its scikit-learn import) lives."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        find = tomllib.load(handle)["tool"]["setuptools"]["packages"]["find"]
    shipped = find_packages(where=str(REPO), include=find["include"])
    assert "bot.triage" in shipped
    assert (REPO / "tools" / "train_triage.py").is_file()
    assert not [p for p in shipped if p.split(".")[0] == "tools"], shipped
    assert not [p for p in (PACKAGE.glob("*.py")) if "sklearn" in p.read_text("utf-8")]
