"""Pictures drawn as SVG on the server: a pipeline run's DAG and a model's lineage (columns are
layers, each node depending only on nodes to its left, so no layout engine is needed), a
deployment's stage timeline, and an endpoint's traffic and latency charts. No script draws them."""

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


STAGE_W, STAGE_H, STAGE_GAP = 190, 90, 34


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    state: str
    lines: tuple[str, ...]
    """Up to two lines under the name and state (times, a reason)."""
    href: str | None = None


def timeline(stages: list[Stage], title: str, current: str | None = None) -> Markup:
    """Stages left to right joined by arrows, each coloured by its state; ``current`` outlined."""
    width = PAD * 2 + len(stages) * STAGE_W + max(len(stages) - 1, 0) * STAGE_GAP
    height = PAD * 2 + STAGE_H
    parts = [Markup('<svg xmlns="http://www.w3.org/2000/svg" class="graph timeline" role="img" '
                    'viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-labelledby="timeline-title">'
                    '<title id="timeline-title">{t}</title>'
                    '<defs><marker id="tl-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
                    'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/>'
                    '</marker></defs>').format(w=width, h=height, t=title)]
    for i, stage in enumerate(stages):
        x, y = PAD + i * (STAGE_W + STAGE_GAP), PAD
        if i:
            parts.append(Markup('<path class="edge" d="M {} {} L {} {}" marker-end="url(#tl-arrow)"/>').format(
                x - STAGE_GAP, y + STAGE_H / 2, x, y + STAGE_H / 2))
        lines = Markup("").join(Markup('<text x="{}" y="{}" class="detail">{}</text>').format(
            x + 10, y + 58 + 16 * n, _clip(line, 30)) for n, line in enumerate(stage.lines[:2]))
        box = Markup('<g class="node state-{s}{cur}" data-stage="{name}"><title>{name}: {state}</title>'
                     '<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6"/>'
                     '<text x="{tx}" y="{ty}" class="label">{name}</text>'
                     '<text x="{tx}" y="{sy}" class="state">{state}</text>{lines}</g>').format(
            s=stage.state.lower() or "none", cur=" current" if stage.name == current else "", name=stage.name,
            state=stage.state, x=x, y=y, w=STAGE_W, h=STAGE_H, tx=x + 10, ty=y + 22, sy=y + 40, lines=lines)
        if stage.href:
            box = Markup('<a href="{}">{}</a>').format(stage.href, box)
        parts.append(box)
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


CHART_W, CHART_H, AXIS = 640, 200, 64


def chart(title: str, labels: list[str], series: dict[str, list[float | None]], *, kind: str = "bars",
          unit: str = "") -> Markup:
    """A small chart of ``series`` (name → one value per label, None where there is none): stacked
    bars, or lines broken where a value is missing (each point marked), with the y axis from 0 to
    the largest value and the first, middle and last labels under the x axis."""
    count = max(len(labels), 1)
    values_of = {name: [v or 0.0 for v in values] for name, values in series.items()}
    stacked = [sum(values[i] for values in values_of.values() if i < len(values)) for i in range(count)]
    peak = max((max(stacked) if kind == "bars" else max((max(v, default=0) for v in values_of.values()), default=0)),
               0) or 1.0
    plot_w, plot_h = CHART_W - AXIS - PAD, CHART_H - 2 * PAD - 18
    step = plot_w / count

    def y_of(value: float) -> float:
        return PAD + plot_h - value / peak * plot_h

    # No width or height: the chart fills its column, scaled by its viewBox.
    parts = [Markup('<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{k}" role="img" '
                    'viewBox="0 0 {w} {h}" preserveAspectRatio="xMidYMid meet"><title>{t}</title>').format(
        k=kind, w=CHART_W, h=CHART_H, t=title)]
    parts.append(Markup('<line class="axis" x1="{x}" y1="{top}" x2="{x}" y2="{b}"/>'
                        '<line class="axis" x1="{x}" y1="{b}" x2="{r}" y2="{b}"/>'
                        '<text class="tick" x="{tx}" y="{ty}" text-anchor="end">{peak}{u}</text>'
                        '<text class="tick" x="{tx}" y="{b}" text-anchor="end">0</text>').format(
        x=AXIS, top=PAD, b=PAD + plot_h, r=AXIS + plot_w, tx=AXIS - 4, ty=PAD + 10, peak=_figure(peak), u=unit))
    for i in sorted({0, count // 2, count - 1}):
        if i < len(labels):
            anchor = "start" if i == 0 else ("end" if i == count - 1 else "middle")
            x = AXIS + step * i if i == 0 else (AXIS + plot_w if i == count - 1 else AXIS + step * (i + 0.5))
            parts.append(Markup('<text class="tick" x="{}" y="{}" text-anchor="{}">{}</text>').format(
                x, CHART_H - 6, anchor, labels[i]))
    for n, (name, values) in enumerate(series.items()):
        if kind == "bars":
            for i, bar in enumerate(values_of[name]):
                if bar <= 0:
                    continue
                below = sum(values_of[other][i] for other in list(series)[:n] if i < len(values_of[other]))
                top, bottom = y_of(below + bar), y_of(below)
                parts.append(Markup('<rect class="series-{n}" x="{x}" y="{y}" width="{w}" height="{h}">'
                                    '<title>{label}: {value} {name}</title></rect>').format(
                    n=n, x=AXIS + step * i + 1, y=top, w=max(step - 2, 1), h=bottom - top,
                    label=labels[i] if i < len(labels) else "", value=_figure(bar), name=name))
            continue
        segment: list[str] = []
        for i, value in enumerate([*values, None]):
            if value is None:
                if segment:
                    parts.append(Markup('<polyline class="series-{}" points="{}"><title>{}</title></polyline>')
                                 .format(n, " ".join(segment), name))
                segment = []
                continue
            x, y = AXIS + step * (i + 0.5), y_of(value)
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(Markup('<circle class="series-{}" cx="{:.1f}" cy="{:.1f}" r="2.5"><title>{}: {}{} {}'
                                '</title></circle>').format(n, x, y, labels[i] if i < len(labels) else "",
                                                            _figure(value), unit, name))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _figure(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"


def _clip(text: str, limit: int = 22) -> Markup:
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")
