"""The pieces pyapp's notebook displays are made of: tables, byte counts and SVG line charts.

Each value renders itself (``_repr_html_`` on :class:`~pyapp.predictions.Predictions`,
:class:`~pyapp.memory.MemorySnapshot`, :class:`~pyapp.model.Model`, :class:`~pyapp.training.History`)
with these; this module imports none of them.

Jupyter and JupyterLite, PyScript's ``display`` and other rich displays call ``_repr_html_``.
The HTML here is self-contained and passive: tables, ``<meter>`` bars and SVG charts drawn with
presentation attributes, with no script, no stylesheet and no ``style`` attribute (a page's
Content-Security-Policy may forbid those). Everything shown is escaped. Pure Python: host-testable.

Example (in the browser)::

    from pyapp.notebook import Predictions, line_chart_svg
    top = Predictions([("cat", 0.91), ("dog", 0.07), ("fox", 0.02)])
    print(top.label, top[0], top._repr_html_()[:40])         # cat ('cat', 0.91) <table class="pyapp-predictions">...
    svg = line_chart_svg("loss", {"loss": [1.0, 0.5, 0.25]})
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from pyapp.predictions import Predictions as Predictions  # where it was first (re-exported)

#: Line colours of the charts (colour-blind safe: Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def fmt_bytes(n: int | None) -> str:
    """Bytes for people.

    >>> fmt_bytes(0), fmt_bytes(1536), fmt_bytes(10_485_760), fmt_bytes(None)
    ('0 B', '1.5 KiB', '10.0 MiB', '-')
    """
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def table_html(rows: Iterable[tuple[str, Any]], caption: str, css_class: str = "pyapp-table") -> str:
    r"""A two-column table (name, value), escaped.

    >>> print(table_html([("a", 1), ("<b>", None)], "T").replace("</tr>", "</tr>\n"))
    <table class="pyapp-table"><caption>T</caption><tr><th scope="row">a</th><td>1</td></tr>
    <tr><th scope="row">&lt;b&gt;</th><td>-</td></tr>
    </table>
    """
    body = "".join(
        f'<tr><th scope="row">{escape(str(k))}</th><td>{escape("-" if v is None else str(v))}</td></tr>'
        for k, v in rows
    )
    return f'<table class="{css_class}"><caption>{escape(caption)}</caption>{body}</table>'


# --------------------------------------------------------------------------- charts


def fmt_number(v: float) -> str:
    """A metric's value, short.

    >>> fmt_number(0.123456), fmt_number(2.0)
    ('0.1235', '2')
    """
    return f"{v:.4g}"


def line_chart_svg(
    title: str, series: Mapping[str, Sequence[float]], *, width: int = 300, height: int = 160, x_label: str = "epoch"
) -> str:
    """A small line chart (inline SVG) of one or more series over the same x (1, 2, ...); NaNs are gaps.

    >>> svg = line_chart_svg("loss", {"loss": [1.0, 0.5, float("nan"), 0.25], "val_loss": [1.1, 0.7, 0.6, 0.5]})
    >>> svg.startswith("<svg"), svg.count("<polyline"), svg.count("<circle"), "<title>loss</title>" in svg
    (True, 2, 1, True)
    """
    left, right, top, bottom = 46, 10, 22, 30
    finite = [v for s in series.values() for v in s if math.isfinite(v)]
    n = max((len(s) for s in series.values()), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pyapp-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text x="{left}" y="14" font-size="12" font-family="sans-serif">{escape(title)}</text>',
    ]
    if not finite or n == 0:
        parts.append(f'<text x="{left}" y="{height // 2}" font-size="11" font-family="sans-serif">no data</text>')
        return "".join(parts) + "</svg>"
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + plot_w * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    axis = 'stroke="#888" stroke-width="1"'
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" {axis}/>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" {axis}/>')
    label = 'font-size="10" font-family="sans-serif" fill="#444"'
    parts.append(f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {label}>{fmt_number(hi)}</text>')
    parts.append(f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" {label}>{fmt_number(lo)}</text>')
    parts.append(f'<text x="{left}" y="{top + plot_h + 12}" text-anchor="middle" {label}>1</text>')
    parts.append(f'<text x="{left + plot_w}" y="{top + plot_h + 12}" text-anchor="middle" {label}>{n}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" {label}>{escape(x_label)}</text>'
    )
    legend_x = left + 8
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if math.isfinite(v):
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
            elif runs[-1]:
                runs.append([])
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
            elif run:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        parts.append(f'<text x="{legend_x}" y="{top + 10}" font-size="10" font-family="sans-serif" fill="{colour}">')
        parts.append(f"{escape(name)}</text>")
        legend_x += 8 + 6 * len(name)
    return "".join(parts) + "</svg>"


# --------------------------------------------------------------------------- training history
