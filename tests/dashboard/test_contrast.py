"""Every coloured badge and bar in app.css is readable: WCAG AA, a contrast of at least
4.5:1 between its text and its background."""

from __future__ import annotations

import re
from pathlib import Path

CSS = Path(__file__).resolve().parents[2] / "bot" / "dashboard" / "static" / "app.css"
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
HEX = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
AA = 4.5


def luminance(colour: str) -> float:
    h = colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def rules(css: str) -> dict[str, dict[str, str]]:
    """selector -> declarations, one entry per selector of a list, media queries read as
    plain rules (their colours must pass too)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"@media[^{]*\{", "", css)
    found: dict[str, dict[str, str]] = {}
    for selectors, body in RULE.findall(css):
        decls = dict(
            (k.strip(), v.strip())
            for k, _, v in (d.partition(":") for d in body.split(";"))
            if k.strip() and v.strip()
        )
        for selector in selectors.split(","):
            found.setdefault(" ".join(selector.split()), {}).update(decls)
    return found


def resolve(value: str, variables: dict[str, str]) -> str:
    var = re.fullmatch(r"var\((--[\w-]+)\)", value)
    return variables[var[1]] if var else value


def text_colour(selector: str, table: dict[str, dict[str, str]], variables: dict[str, str]) -> str:
    """Its own colour, else that of the rule it refines (".prio" for ".prio.p1"), else the
    page's."""
    own = table.get(selector, {}).get("color")
    if own:
        return resolve(own, variables)
    base = re.sub(r"(\.[\w-]+)$", "", selector.split(" ")[-1])
    if base and base != selector and base in table and "color" in table[base]:
        return resolve(table[base]["color"], variables)
    return variables["--fg"]


def badge_pairs() -> list[tuple[str, str, str]]:
    table = rules(CSS.read_text("utf-8"))
    variables = {k: v for k, v in table.get(":root", {}).items() if k.startswith("--")}
    pairs = []
    for selector, decls in table.items():
        back = decls.get("background") or decls.get("background-color")
        if back is None:
            continue
        back = resolve(back, variables)
        if not HEX.match(back):
            continue
        pairs.append((selector, text_colour(selector, table, variables), back))
    return pairs


def test_the_parser_finds_the_priority_badges_and_their_white_text() -> None:
    """The check reads the real badges: every priority colour with the white text of .prio
    (so a passing run is not an empty one)."""
    found = {s: (fg, bg) for s, fg, bg in badge_pairs()}
    for p in ("p1", "p2", "p3"):
        assert f".prio.{p}" in found and found[f".prio.{p}"][0] == "#fff"
    assert contrast("#fff", "#000") > 20.9 and contrast("#777", "#fff") < AA


def test_every_badge_colour_meets_wcag_aa() -> None:
    """Text on every background colour in app.css has a contrast of at least 4.5:1."""
    weak = [
        f"{selector}: {fg} on {bg} is {contrast(fg, bg):.2f}:1"
        for selector, fg, bg in badge_pairs()
        if HEX.match(fg) and contrast(fg, bg) < AA
    ]
    assert not weak, weak
