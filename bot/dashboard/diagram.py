"""The intake flow as a picture: the mermaid text from `transitions` (INTAKE.diagram()),
laid out in layers by distance from the first state and drawn as plain SVG on the server,
so the page needs no diagram library and no script."""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from markupsafe import Markup

_EDGE = re.compile(r"^\s*([\w\[\]*]+)\s*-->\s*([\w\[\]*]+)\s*(?::\s*(.*))?$")
_STATE = re.compile(r'^\s*state\s+"([^"]+)"\s+as\s+(\w+)')

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 34, 70, 22, 20


@dataclass
class Graph:
    states: list[str] = field(default_factory=list)
    edges: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    initial: str | None = None


def flow_mermaid() -> str:
    from flows.intake import INTAKE  # the flow module builds its machine once, on import

    return str(INTAKE.diagram())


def parse_mermaid(text: str) -> Graph:
    graph = Graph()
    seen: set[str] = set()

    def add(state: str) -> None:
        if state not in seen:
            seen.add(state)
            graph.states.append(state)

    for line in text.splitlines():
        if m := _STATE.match(line):
            add(m[2])
        elif m := _EDGE.match(line):
            a, b, label = m[1], m[2], (m[3] or "").strip()
            if a == "[*]":
                graph.initial = b
                add(b)
                continue
            if b == "[*]":
                continue
            add(a)
            add(b)
            labels = graph.edges.setdefault((a, b), [])
            for part in (x.strip() for x in label.split("|")):
                if part and part not in labels:
                    labels.append(part)
    return graph


def layers(graph: Graph) -> dict[str, int]:
    """Breadth-first distance from the initial state; unreachable states go last."""
    start = graph.initial or (graph.states[0] if graph.states else None)
    out: dict[str, list[str]] = defaultdict(list)
    for a, b in graph.edges:
        out[a].append(b)
    depth: dict[str, int] = {}
    if start is not None:
        depth[start] = 0
        todo = deque([start])
        while todo:
            node = todo.popleft()
            for nxt in out[node]:
                if nxt not in depth:
                    depth[nxt] = depth[node] + 1
                    todo.append(nxt)
    last = max(depth.values(), default=-1) + 1
    for state in graph.states:
        depth.setdefault(state, last)
    return depth


def render_svg(graph: Graph) -> Markup:
    depth = layers(graph)
    columns: dict[int, list[str]] = defaultdict(list)
    for state in graph.states:
        columns[depth[state]].append(state)
    pos: dict[str, tuple[int, int]] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            pos[name] = (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    width = PAD * 2 + (max(columns, default=0) + 1) * (BOX_W + GAP_X)
    height = PAD * 2 + max((len(v) for v in columns.values()), default=1) * (BOX_H + GAP_Y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="flow-title">',
        '<title id="flow-title">Intake flow: states and transitions</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    for (a, b), labels in graph.edges.items():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        if a == b:
            continue  # self-loops (a reply that stays put) are in the mermaid text below
        sx: float
        sy: float
        ex: float
        ey: float
        if x2 > x1:
            sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        elif x2 < x1:
            sx, sy, ex, ey = x1, y1 + BOX_H / 2, x2 + BOX_W, y2 + BOX_H / 2
        else:
            sx, sy = x1 + BOX_W / 2, y1 + (BOX_H if y2 > y1 else 0)
            ex, ey = x2 + BOX_W / 2, y2 + (0 if y2 > y1 else BOX_H)
        title = escape(f"{a} → {b}: {', '.join(labels)}")
        parts.append(
            f'<path class="edge" d="M{sx:.0f},{sy:.0f} L{ex:.0f},{ey:.0f}" stroke="#888" '
            f'fill="none" marker-end="url(#arrow)"><title>{title}</title></path>'
        )
    for name, (x, y) in pos.items():
        cls = "state initial" if name == graph.initial else "state"
        parts.append(
            f'<g class="{cls}"><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" '
            f'fill="#eef3ff" stroke="#335"/><text x="{x + BOX_W / 2:.0f}" '
            f'y="{y + BOX_H / 2 + 5:.0f}" text-anchor="middle" font-size="14">'
            f"{escape(name)}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
