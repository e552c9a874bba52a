"""Graphs drawn as SVG on the server: a pipeline run's DAG and a model's lineage. Columns are
layers (each node depends only on nodes to its left), so no layout engine and no script is needed."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 170, 54, 60, 22, 12


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    label: str
    detail: str = ""
    state: str = ""
    """A CSS class suffix: the step's status, the package's approval status …"""
    href: str | None = None


def draw(layers: list[list[Node]], edges: list[tuple[str, str]], title: str) -> Markup:
    """``layers`` left to right; ``edges`` (from id, to id). Returns an accessible <svg>."""
    where: dict[str, tuple[float, float]] = {}
    tallest = max((len(layer) for layer in layers), default=0)
    height = PAD * 2 + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    width = PAD * 2 + len(layers) * NODE_W + max(len(layers) - 1, 0) * GAP_X
    for col, layer in enumerate(layers):
        column_h = len(layer) * NODE_H + max(len(layer) - 1, 0) * GAP_Y
        top = (height - column_h) / 2
        for row, node in enumerate(layer):
            where[node.id] = (PAD + col * (NODE_W + GAP_X), top + row * (NODE_H + GAP_Y))
    parts = [Markup('<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" '
                    'viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-labelledby="graph-title">'
                    '<title id="graph-title">{t}</title>'
                    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
                    'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/>'
                    '</marker></defs>').format(w=int(width), h=int(height), t=title)]
    for source, target in edges:
        if source not in where or target not in where:
            continue
        (x1, y1), (x2, y2) = where[source], where[target]
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        mid = (sx + tx) / 2
        parts.append(Markup('<path class="edge" d="M {} {} C {} {}, {} {}, {} {}" marker-end="url(#arrow)"/>')
                     .format(sx, sy, mid, sy, mid, ty, tx, ty))
    for layer in layers:
        for node in layer:
            x, y = where[node.id]
            box = Markup('<g class="node state-{s}" data-node="{id}"><title>{label}: {state}</title>'
                         '<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6"/>'
                         '<text x="{tx}" y="{ty}" class="label">{label}</text>'
                         '<text x="{tx}" y="{dy}" class="detail">{detail}</text></g>').format(
                s=(node.state or "none").lower(), id=node.id, label=_clip(node.label), state=node.state or "",
                x=x, y=y, w=NODE_W, h=NODE_H, tx=x + 10, ty=y + 22, dy=y + 41, detail=_clip(node.detail))
            if node.href:
                box = Markup('<a href="{}">{}</a>').format(node.href, box)
            parts.append(box)
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _clip(text: str, limit: int = 22) -> Markup:
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")
