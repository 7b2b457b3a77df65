"""HTML for the web app's results and live panel, built in Python (pure; host-testable).

The app's worker renders each result with one ``innerHTML`` assignment: one
round trip to the page per image instead of one per DOM call.

Example::

    >>> html = result_card([("Neutral", 0.93), ("Drawing", 0.05)], 41.5)
    >>> "Neutral" in html and "93.0%" in html and "42 ms" in html
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from pyapp.memory import MemorySnapshot
from pyapp.notebook import fmt_bytes
from pyapp.progress import LoadProgress


def result_card(top: Sequence[tuple[str, float]], latency_ms: float | None = None, path: str = "") -> str:
    """Top-k bars (accessible <meter>s with their values in text), then the latency when there is one.

    >>> "latency" in result_card([("cat", 0.9)]), "12 ms" in result_card([("cat", 0.9)], 12.0)
    (False, True)
    """
    rows = []
    for i, (label, prob) in enumerate(top):
        pct = f"{prob * 100:.1f}%"
        cls = "bar top" if i == 0 else "bar"
        rows.append(
            f'<li class="{cls}"><span class="label">{escape(label)}</span>'
            f'<meter min="0" max="1" value="{prob:.4f}" aria-label="{escape(label)} {pct}"></meter>'
            f'<span class="pct">{pct}</span></li>'
        )
    bars = f'<ol class="bars">{"".join(rows)}</ol>'
    if latency_ms is None:
        return bars
    via = f" · {escape(path)}" if path else ""
    return f'{bars}<p class="latency">{latency_ms:.0f} ms{via}</p>'


def error_card(message: str) -> str:
    """A bad file's message, as the user sees it."""
    return f'<p class="error" role="alert">Could not classify this file: {escape(message)}</p>'


def sparkline(values: Sequence[float], width: int = 240, height: int = 48, label: str = "") -> str:
    """An inline SVG polyline of ``values`` (oldest first), scaled to fit.

    >>> sparkline([1, 2, 3]).startswith("<svg")
    True
    """
    pts = list(values)[-width:]
    if not pts:
        return f'<svg class="spark" width="{width}" height="{height}" role="img" aria-label="{escape(label)}"></svg>'
    top = max(pts) or 1.0
    step = width / max(len(pts) - 1, 1)
    coords = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(pts))
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}"><polyline fill="none" stroke="currentColor" stroke-width="1.5" '
        f'points="{coords}"/></svg>'
    )


def memory_table(snapshot: MemorySnapshot, extra: Sequence[tuple[str, str]] = ()) -> str:
    """Tensors, tensor bytes, GPU and WASM heap bytes as a two-column table.

    >>> from pyapp.memory import from_tf_memory
    >>> snap = from_tf_memory({"numTensors": 3, "numBytes": 12}, "cpu")
    >>> "<th scope='row'>Tensors</th><td>3</td>" in memory_table(snap)
    True
    """
    rows = [
        ("Backend", escape(snapshot.backend)),
        ("Tensors", f"{snapshot.num_tensors:,}"),
        ("Tensor bytes", fmt_bytes(snapshot.num_bytes)),
        ("GPU bytes", fmt_bytes(snapshot.gpu_bytes)),
        ("TF.js WASM heap", fmt_bytes(snapshot.tf_wasm_heap_bytes)),
        ("Python heap", fmt_bytes(snapshot.python_heap_bytes)),
        *extra,
    ]
    return "<table>" + "".join(f"<tr><th scope='row'>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def example_count(count: int) -> str:
    """How many examples a class of the teach panel has, in words.

    >>> example_count(1), example_count(3)
    ('1 example', '3 examples')
    """
    return f"{count} example{'' if count == 1 else 's'}"


def class_card(index: int, name: str, count: int) -> str:
    """One class of the teach panel: its editable name, an image picker, how many examples it has.

    >>> 'value="cats"' in class_card(0, "cats", 3) and "3 examples" in class_card(0, "cats", 3)
    True
    """
    return (
        f'<div class="class-card" data-class="{index}">'
        f'<label for="class-name-{index}" class="visually-hidden">Name of class {index + 1}</label>'
        f'<input id="class-name-{index}" type="text" value="{escape(name)}" maxlength="60">'
        f'<div class="thumbs" aria-hidden="true"></div>'
        f'<p class="count" aria-live="polite">{example_count(count)}</p>'
        f'<label class="button" for="class-files-{index}">Add images…</label>'
        f'<input id="class-files-{index}" type="file" accept="image/*" multiple>'
        f"</div>"
    )


def live_panel(snapshot: MemorySnapshot, latencies: Sequence[float], tensors: Sequence[float]) -> str:
    """Tensors, GPU/heap bytes and latency over time."""
    last = latencies[-1] if latencies else None
    median = sorted(latencies)[len(latencies) // 2] if latencies else None
    latency = ("Last / median latency", "–" if last is None else f"{last:.0f} / {median:.0f} ms")
    return (
        f"{memory_table(snapshot, [latency])}"
        f"<figure><figcaption>Latency (ms), last {len(latencies[-240:])}</figcaption>"
        f"{sparkline(latencies, label='latency over time')}</figure>"
        f"<figure><figcaption>Live tensors</figcaption>{sparkline(tensors, label='tensors over time')}</figure>"
    )


@dataclass
class DownloadBar:
    """A model's download as one progress bar, folded from :class:`~pyapp.progress.LoadProgress` events:
    the bytes loaded and expected over the files of the variant being loaded (a skipped variant's files
    drop out; a file whose size is not known yet counts what has arrived).

    >>> bar = DownloadBar()
    >>> bar.add(LoadProgress("download", "m/uint8/model.json", 0, 2048, "uint8"))
    >>> bar.add(LoadProgress("download", "m/uint8/model.json", 1024, 2048, "uint8"))
    >>> bar.value, bar.max, bar.text()
    (1024, 2048, '1.0 KiB / 2.0 KiB')
    >>> bar.add(LoadProgress("skipped", variant="uint8", detail="HTTP 404"))
    >>> bar.add(LoadProgress("ready", loaded=4096, total=4096, variant="float16"))
    >>> bar.value, bar.max, bar.text()
    (4096, 4096, '4.0 KiB / 4.0 KiB (float16 weights)')
    """

    files: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    variant: str = ""

    def add(self, event: LoadProgress) -> None:
        """Fold in one event."""
        if event.stage == "skipped":
            self.files.clear()
        elif event.stage == "download":
            self.files[event.file] = (event.loaded, event.total)
            self.variant = event.variant
        elif event.stage == "ready":
            self.files = {"": (event.loaded, event.total)}
            self.variant = event.variant

    @property
    def value(self) -> int:
        return sum(loaded for loaded, _ in self.files.values())

    @property
    def max(self) -> int:
        return sum(loaded if total is None else total for loaded, total in self.files.values())

    def text(self) -> str:
        """``loaded / expected``, and the variant once it is loaded."""
        done = "" in self.files
        return f"{fmt_bytes(self.value)} / {fmt_bytes(self.max)}" + (f" ({self.variant} weights)" if done else "")
