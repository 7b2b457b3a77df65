"""Notebook-friendly values (host): the HTML and text that Jupyter, JupyterLite and the playground show."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from types import SimpleNamespace

from pyapp.manifest import ModelManifest
from pyapp.memory import from_tf_memory
from pyapp.model import LoadInfo, Model
from pyapp.notebook import Predictions, line_chart_svg
from pyapp.training import EpochEnd, History, history_html


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def _passive(html: str) -> None:
    """No script, no stylesheet, no inline style or event handler: a strict CSP shows it as it is."""
    parsed = parse(html)
    assert "script" not in parsed.tags
    assert "style" not in parsed.tags
    assert "style" not in parsed.attrs
    assert not [a for a in parsed.attrs if a.startswith("on")]


def test_predictions_stay_a_list_of_tuples_and_render_a_table() -> None:
    top = Predictions([("Neutral", 0.93), ("<Porn>", 0.05), ("Sexy", 0.02)])
    assert isinstance(top, list)
    assert top == [("Neutral", 0.93), ("<Porn>", 0.05), ("Sexy", 0.02)]
    assert top[0] == ("Neutral", 0.93)
    label, prob = top[0]
    assert (label, prob) == ("Neutral", 0.93)
    assert repr(top) == "[('Neutral', 0.93), ('<Porn>', 0.05), ('Sexy', 0.02)]", "the plain repr is the list's"
    assert top.label == "Neutral"
    assert top.probability == 0.93
    html = top._repr_html_()
    _passive(html)
    parsed = parse(html)
    assert parsed.tags.count("meter") == 3
    assert "&lt;Porn&gt;" in html, "labels are escaped"
    assert "93.0%" in html
    assert top.text().splitlines()[0] == "Neutral   93.0%"


def _history() -> History:
    logs = [
        {"loss": 2.3, "accuracy": 0.12, "val_loss": 2.4, "val_accuracy": 0.1},
        {"loss": 1.1, "accuracy": 0.6, "val_loss": 1.3, "val_accuracy": 0.55},
        {"loss": 0.4, "accuracy": 0.9, "val_loss": 0.6, "val_accuracy": 0.85},
    ]
    history = History([EpochEnd(i, 3, log, 0.5) for i, log in enumerate(logs)])
    history.backend = "wasm"
    return history


def test_history_shows_loss_and_accuracy_as_svg_charts() -> None:
    history = _history()
    assert repr(history) == (
        "History(3 epochs on wasm: loss 2.3 -> 0.4, accuracy 0.12 -> 0.9, val_loss 2.4 -> 0.6, "
        "val_accuracy 0.1 -> 0.85)"
    )
    html = history._repr_html_()
    assert html == history_html(history)
    _passive(html)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 2, "one chart for loss (with val_loss), one for accuracy (with val_accuracy)"
    for svg, metrics in zip(svgs, (("loss", "val_loss"), ("accuracy", "val_accuracy")), strict=True):
        root = ET.fromstring(svg)  # well-formed SVG
        ns = "{http://www.w3.org/2000/svg}"
        lines = root.findall(f"{ns}polyline")
        assert len(lines) == 2
        points = [[tuple(map(float, p.split(","))) for p in line.get("points", "").split()] for line in lines]
        assert all(len(p) == 3 for p in points), "one point per epoch"
        xs = [x for x, _ in points[0]]
        assert xs == sorted(xs)
        ys = [y for _, y in points[0]]
        # SVG y grows downwards: a falling loss climbs down the page, a rising accuracy goes up.
        assert (ys == sorted(ys)) == (metrics[0] == "loss")
        legend = "".join(t.text or "" for t in root.iter(f"{ns}text"))
        assert all(m in legend for m in metrics)
    assert "0.4" in html
    assert "0.85" in html, "the last epoch's values"


def test_chart_survives_gaps_and_flat_series() -> None:
    svg = line_chart_svg("flat", {"loss": [1.0, 1.0, 1.0]})
    ET.fromstring(svg)
    assert "<polyline" in svg
    empty = line_chart_svg("nothing", {"loss": []})
    assert "no data" in empty
    gaps = line_chart_svg("gaps", {"loss": [float("nan"), 1.0, float("nan"), 0.5, 0.4]})
    assert gaps.count("<circle") == 1
    assert gaps.count("<polyline") == 1


def test_memory_snapshot_reads_as_a_line_and_a_table() -> None:
    snap = from_tf_memory(
        {"numTensors": 262, "numBytes": 14_221_312, "numDataBuffers": 262},
        "wasm",
        tf_wasm_heap_bytes=67_108_864,
        python_heap_bytes=33_554_432,
        live_proxies=4,
    )
    assert repr(snap) == (
        "MemorySnapshot(backend=wasm, tensors=262, tensor bytes=13.6 MiB, data buffers=262, "
        "TF.js WASM heap=64.0 MiB, Python heap=32.0 MiB, live PyProxies=4)"
    )
    html = snap._repr_html_()
    _passive(html)
    text = "".join(parse(html).text)
    assert "13.6 MiB" in text
    assert "GPU bytes" not in text, "readings the backend does not have are left out"


def test_model_summary_table() -> None:
    manifest = ModelManifest.from_dict(
        {
            "name": "demo<1>",
            "labels": ["a", "b"],
            "input": {"size": 4, "channels": 3},
            "variants": [{"name": "uint8", "model": "model.json", "files": {"model.json": "0" * 64}}],
        }
    )
    # The loaded TF.js model as far as the summary reads it: its input and output shapes.
    js_model = SimpleNamespace(
        inputs=[SimpleNamespace(shape=[None, 4, 4, 3])], outputs=[SimpleNamespace(shape=[None, 2])]
    )
    info = LoadInfo("uint8", {"float16": "sha256 mismatch"}, 2048, 12.0, 30.0, 5.0)
    model = Model(manifest, js_model, info)
    html = model._repr_html_()
    _passive(html)
    text = " ".join(parse(html).text)
    for expected in ("demo<1>", "uint8", "(N, 4, 4, 3)", "(N, 2)", "2: a, b", "2.0 KiB", "skipped float16"):
        assert expected in text, expected
    assert "demo&lt;1&gt;" in html
    assert repr(model) == "<Model 'demo<1>' variant='uint8' ready>"
