"""Where Graphviz draws a picture's text and lines (``dot -Tjson``), to find what is drawn over what.

A text line's box runs from its baseline a quarter of the font size down (descenders) to 0.8 of
it up (capitals), across the width dot measured. Curves are sampled at 21 points per Bezier segment.
"""

from __future__ import annotations

import json
import subprocess

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in points, y up


def layout(dot_source: str) -> dict:
    return json.loads(subprocess.run(["dot", "-Tjson"], input=dot_source.encode(), capture_output=True,
                                     check=True, timeout=60).stdout)


def texts(obj: dict) -> list[tuple[str, Box]]:
    """Every line of text an object (box, frame or edge) draws, with its box."""
    out, size = [], 14.0
    for key in ("_ldraw_", "_hldraw_", "_tldraw_"):
        for op in obj.get(key, []):
            if op["op"] == "F":
                size = op["size"]
            elif op["op"] == "T":
                (x, y), w = op["pt"], op["width"]
                x0 = {"l": x, "c": x - w / 2, "r": x - w}[op["align"]]
                out.append((op["text"], (x0, y - 0.25 * size, x0 + w, y + 0.8 * size)))
    return out


def points(obj: dict) -> list[tuple[float, float]]:
    """Points along every line and outline an object draws."""
    pts: list[tuple[float, float]] = []
    for op in obj.get("_draw_", []) + obj.get("_hdraw_", []) + obj.get("_tdraw_", []):
        ps = op.get("points") or []
        if op["op"] in ("b", "B"):
            for i in range(0, len(ps) - 3, 3):
                (ax, ay), (bx, by), (cx, cy), (dx, dy) = ps[i:i + 4]
                for t in (k / 20 for k in range(21)):
                    u = 1 - t
                    pts.append((u ** 3 * ax + 3 * u * u * t * bx + 3 * u * t * t * cx + t ** 3 * dx,
                                u ** 3 * ay + 3 * u * u * t * by + 3 * u * t * t * cy + t ** 3 * dy))
        else:
            pts += [(x, y) for x, y in ps]
    return pts


def _things(dot_source: str) -> list[tuple[str, dict]]:
    """(name, object) for every box, frame and edge of the laid-out picture."""
    data = layout(dot_source)
    objects = data.get("objects", [])
    return ([(o.get("name", "?"), o) for o in objects]
            + [(f"{objects[e['tail']]['name']} -> {objects[e['head']]['name']}", e) for e in data.get("edges", [])])


def _grow(box: Box, by: float) -> Box:
    return box[0] - by, box[1] - by, box[2] + by, box[3] + by


def drawn_over(dot_source: str, text: str, pad: float = 1.0) -> list[str]:
    """What is drawn over each line ``text``: other text, a box (its whole area), a line or a frame's outline.

    ``pad``: points kept clear round the text, half the width of the thickest line near it.
    """
    things = _things(dot_source)
    mine = [(name, _grow(box, pad)) for name, obj in things for t, box in texts(obj) if t == text]
    assert mine, f"{text!r} is not drawn"
    hits = []
    for owner, (x0, y0, x1, y1) in mine:
        for name, obj in things:
            hits += [f"{owner}: text {t!r} of {name}" for t, (a0, b0, a1, b1) in texts(obj)
                     if t != text and a0 < x1 and x0 < a1 and b0 < y1 and y0 < b1]
            ps = points(obj)
            if obj.get("shape") and ps:  # a box covers its area (its own text sits inside it)
                xs, ys = [p[0] for p in ps], [p[1] for p in ps]
                if name != owner and min(xs) < x1 and x0 < max(xs) and min(ys) < y1 and y0 < max(ys):
                    hits.append(f"{owner}: box {name}")
            elif any(x0 < x < x1 and y0 < y < y1 for x, y in ps):
                hits.append(f"{owner}: line {name}")
    return hits


def text_under(dot_source: str, color: str, pad: float = 1.0) -> list[str]:
    """The text that the edges drawn in ``color`` run over."""
    things = _things(dot_source)
    boxes = [(name, t, _grow(box, pad)) for name, obj in things for t, box in texts(obj)]
    edges = [(name, obj) for name, obj in things if " -> " in name and obj.get("color") == color]
    assert edges, f"no edge is drawn in {color}"
    hits = set()
    for name, obj in edges:
        for x, y in points(obj):
            hits |= {f"{name} over {t!r} of {owner}" for owner, t, (x0, y0, x1, y1) in boxes
                     if x0 < x < x1 and y0 < y < y1}
    return sorted(hits)
