"""The playground's Python engine: run cells with top-level ``await``, show values richly.

Part of the playground app, not of the library: the page's worker gets it beside playground.py.
Pure Python (host-testable); the playground page (``web/playground.py``) gives
it a way to write into the page. A :class:`Session` keeps one namespace across
cells, as a notebook does: the value of a cell's last expression is shown,
``print`` output streams as it happens, and errors show the user's own lines.

Example::

    >>> import asyncio
    >>> out = []
    >>> session = Session(write=lambda stream, text: out.append((stream, text)))
    >>> cell = asyncio.run(session.run("x = 6 * 7\\nprint('hi')\\nx"))
    >>> cell.ok, cell.value_text, "".join(text for stream, text in out if stream == "stdout")
    (True, '42', 'hi\\n')
"""

from __future__ import annotations

import ast
import asyncio
import base64
import inspect
import io
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from html import escape
from types import FrameType
from typing import Any

import numpy as np

#: write(stream, text): stream is "stdout", "stderr" or "html" (a rich value shown mid-cell).
Writer = Callable[[str, str], None]


@dataclass
class CellResult:
    """What running one cell did."""

    ok: bool
    #: The last expression's value as HTML (None when the cell ends in a statement or the value is None).
    value_html: str | None = None
    value_text: str | None = None
    error: str | None = None
    seconds: float = 0.0


class _Stream(io.TextIOBase):
    """A file-like object that hands every write to the page at once (output streams during long cells)."""

    def __init__(self, name: str, write: Writer) -> None:
        self._name = name
        self._write = write

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self._write(self._name, text)
        return len(text)


@dataclass
class Session:
    """One namespace, many cells. ``write`` receives output as it happens.

    :meth:`interrupt` is the body of a SIGINT handler: it stops the running cell
    (the playground's Stop button), wherever Python happened to be.
    """

    write: Writer
    namespace: dict[str, Any] = field(default_factory=dict)
    count: int = 0
    _cell: asyncio.Task[CellResult] | None = field(default=None, init=False, repr=False)
    _filename: str = field(default="", init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)
    _stop_early: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.namespace.setdefault("__name__", "__main__")
        self.namespace.setdefault("display", self.display)

    def display(self, *values: Any) -> None:
        """Show values richly in the output, now (arrays, images, predictions, memory, models...)."""
        for value in values:
            self.write("html", rich_html(value))

    async def run(self, source: str, prepare: Prepare | None = None) -> CellResult:
        """Run one cell; never raises for the user's errors (they are in the result).

        ``prepare(source)`` runs first, as part of the cell (the playground loads the packages the
        cell imports there): a Stop during it ends the cell before its code runs.
        """
        self.count += 1
        self._filename = filename = f"<cell {self.count}>"
        self._stopping = False
        started = time.perf_counter()
        if self._stop_early:  # Stop was clicked before this cell reached Python
            self._stop_early = False
            return _interrupted(started)
        # Its own task, so that a Stop can cancel the cell without cancelling whoever awaits it.
        self._cell = cell = asyncio.ensure_future(self._execute(source, filename, prepare, started))
        try:
            return await cell
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if caller is not None and caller.cancelling():  # the caller was cancelled (and the cell with it)
                raise
            return _interrupted(started)
        finally:
            self._cell = None

    def interrupt(self, frame: FrameType | None) -> None:
        """Stop the running cell: SIGINT's handler, called with the frame Python was in.

        A cell's own code (a runaway loop) is stopped by KeyboardInterrupt, raised right there.
        Anywhere else (the event loop between the cell's steps, its imports loading, the page's
        own code) raising would stop the wrong thing and leave the cell running; the cell's task
        is cancelled instead, and ends at its next ``await``. With no cell running yet (Stop
        clicked as Run was), the next cell is stopped before its code runs; the page calls
        :meth:`forget_stop` when its run is over, so that a Stop arriving after the cell ended
        reaches nothing.

        >>> import asyncio
        >>> session = Session(write=print)
        >>> session.interrupt(None)  # before the cell started
        >>> asyncio.run(session.run("x = 1")).error, "x" in session.namespace
        ('Interrupted (Stop)', False)
        """
        cell = self._cell
        if cell is None or cell.done():
            self._stop_early = True
            return
        self._stopping = True
        while frame is not None:
            if frame.f_code.co_filename == self._filename:
                raise KeyboardInterrupt
            frame = frame.f_back
        cell.cancel()

    def forget_stop(self) -> None:
        """Drop a Stop that arrived when no cell was running (the run it was meant for is over).

        >>> session = Session(write=print)
        >>> session.interrupt(None)
        >>> session.forget_stop()
        """
        self._stop_early = False

    async def _execute(self, source: str, filename: str, prepare: Prepare | None, started: float) -> CellResult:
        out, err = _Stream("stdout", self.write), _Stream("stderr", self.write)
        try:
            if prepare is not None:
                await prepare(source)
            with redirect_stdout(out), redirect_stderr(err):
                value = await run_cell(source, self.namespace, filename)
        except KeyboardInterrupt:
            return _interrupted(started)
        except asyncio.CancelledError:
            if not self._stopping:  # the caller was cancelled: so is the cell
                raise
            return _interrupted(started)
        except BaseException as exc:  # the user's error, shown like a traceback from their cell
            return CellResult(False, error=format_error(exc, filename), seconds=time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if value is None:
            return CellResult(True, seconds=seconds)
        self.namespace["_"] = value
        return CellResult(True, value_html=rich_html(value), value_text=_short_repr(value), seconds=seconds)


#: prepare(source), awaited before a cell's code runs.
Prepare = Callable[[str], Awaitable[None]]


def _interrupted(started: float) -> CellResult:
    return CellResult(False, error="Interrupted (Stop)", seconds=time.perf_counter() - started)


async def run_cell(source: str, namespace: dict[str, Any], filename: str = "<cell>") -> Any:
    """Execute ``source`` in ``namespace`` with top-level ``await``; return the last expression's value.

    >>> import asyncio
    >>> ns = {}
    >>> asyncio.run(run_cell("import asyncio\\nawait asyncio.sleep(0)\\n1 + 1", ns))
    2
    """
    tree = ast.parse(source, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body[-1].value)
        tree.body.pop()
    await _run(compile(tree, filename, "exec", flags=_FLAGS, dont_inherit=True), namespace)
    if last is None:
        return None
    return await _run(compile(last, filename, "eval", flags=_FLAGS, dont_inherit=True), namespace)


_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


async def _run(code: Any, namespace: dict[str, Any]) -> Any:
    # Code with a top-level await compiles to a coroutine (CO_COROUTINE): run it by awaiting.
    # Without one, a coroutine that the user's expression returns stays a value, as in Python.
    result = eval(code, namespace)
    if code.co_flags & inspect.CO_COROUTINE:
        result = await result
    return result


def format_error(exc: BaseException, filename: str) -> str:
    """The exception as a traceback that starts at the user's cell (the runner's frames are dropped).

    >>> try:
    ...     exec(compile("1/0", "<cell 3>", "exec"))
    ... except ZeroDivisionError as e:
    ...     print(format_error(e, "<cell 3>").splitlines()[-1])
    ZeroDivisionError: division by zero
    """
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb) if tb is not None else [f"{type(exc).__name__}: {exc}\n"]
    return "".join(lines).rstrip()


def _short_repr(value: Any, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " …"


# --------------------------------------------------------------------------- rich values


def rich_html(value: Any) -> str:
    """HTML for showing a value in the playground (escaped; no script, no styles)."""
    for kind, render in _RENDERERS:
        if kind(value):
            return render(value)
    return f"<pre class='repr'>{escape(_short_repr(value))}</pre>"


def _array_html(arr: np.ndarray) -> str:
    with np.printoptions(threshold=200, edgeitems=4, precision=4, suppress=True, linewidth=100):
        body = np.array2string(arr)
    stats = ""
    if arr.size and arr.dtype.kind in "fiu":
        stats = f" · min {arr.min():.4g} · max {arr.max():.4g} · mean {arr.mean():.4g}"
    return (
        f"<div class='array'><p class='meta'>ndarray {arr.shape} {arr.dtype}{stats}</p><pre>{escape(body)}</pre></div>"
    )


def _is_prediction(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], float) for p in value
        )
    )


def _prediction_html(value: list[tuple[str, float]]) -> str:
    from ui import result_card

    return result_card(value)


def _is_pil(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "save") and hasattr(value, "size")


def _image_html(img: Any) -> str:
    buf = io.BytesIO()
    shown = img.convert("RGBA") if img.mode not in ("RGB", "RGBA", "L") else img
    shown.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    w, h = img.size
    return (
        f"<figure class='image'><img alt='image {w}x{h}' src='data:image/png;base64,{data}' "
        f"width='{min(w, 320)}'><figcaption>{img.mode} {w}×{h}</figcaption></figure>"
    )


def _is_snapshot(value: Any) -> bool:
    return type(value).__name__ == "MemorySnapshot" and hasattr(value, "as_dict")


def _table_html(rows: Mapping[str, Any], caption: str) -> str:
    body = "".join(f"<tr><th scope='row'>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<table class='kv'><caption>{escape(caption)}</caption>{body}</table>"


def _snapshot_html(snap: Any) -> str:
    from pyapp.notebook import fmt_bytes

    rows = {k: (fmt_bytes(v) if k.endswith("bytes") and isinstance(v, int) else v) for k, v in snap.as_dict().items()}
    return _table_html(rows, "Memory snapshot")


def _is_history(value: Any) -> bool:
    return type(value).__name__ == "History" and hasattr(value, "epochs") and hasattr(value, "history")


def _history_html(history: Any) -> str:
    metrics = list(history.history)
    head = "".join(f"<th scope='col'>{escape(m)}</th>" for m in ["epoch", *metrics])
    rows = "".join(
        "<tr>"
        + f"<td>{e.epoch + 1}</td>"
        + "".join(f"<td>{e.logs.get(m, float('nan')):.4f}</td>" for m in metrics)
        + "</tr>"
        for e in history.epochs
    )
    note = " (stopped early)" if history.stopped_early else ""
    return f"<table class='history'><caption>Training history{note}</caption><tr>{head}</tr>{rows}</table>"


def _is_summary(value: Any) -> bool:
    return hasattr(value, "summary") and type(value).__name__ == "TrainableModel" and value.state.value != "disposed"


def _summary_html(model: Any) -> str:
    return f"<pre class='summary'>{escape(repr(model))}\n{escape(model.summary())}</pre>"


_RENDERERS: list[tuple[Callable[[Any], bool], Callable[[Any], str]]] = [
    (lambda v: isinstance(v, np.ndarray), _array_html),
    (_is_prediction, _prediction_html),
    (_is_pil, _image_html),
    (_is_snapshot, _snapshot_html),
    (_is_history, _history_html),
    (_is_summary, _summary_html),
    (
        lambda v: isinstance(v, dict) and 0 < len(v) <= 50 and all(isinstance(k, str) for k in v),
        lambda v: _table_html(v, "dict"),
    ),
]


_EXAMPLE_MARK = "Example (in the browser)::"
#: Examples that need the page itself (a camera, a <video>): the playground's Python runs in a worker, so
#: these are not in its menu; tests/test_live.py runs them in a page.
PAGE_EXAMPLE_MARK = "Example (in a page)::"


def example_modules(mark: str = _EXAMPLE_MARK) -> list[str]:
    """pyapp's modules whose docstrings hold an ``Example (in the browser)::``, found by reading the package:
    a module that gains one is in the Examples menu, and in the test that runs them all, without a list.

    >>> mods = example_modules()
    >>> mods[0], "pyapp.model" in mods, "pyapp.kernels" in mods, "pyapp.sniff" in mods
    ('pyapp', True, True, False)
    """
    import importlib
    import importlib.util
    import pkgutil

    import pyapp

    found = ["pyapp"] if mark == _EXAMPLE_MARK else []
    for info in sorted(pkgutil.iter_modules(pyapp.__path__, "pyapp."), key=lambda m: m.name):
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec else None
        if origin and origin.endswith(".py"):
            with open(origin, encoding="utf-8") as source:
                has_example = mark in source.read()
        else:  # bytecode only: ask the module itself
            module = importlib.import_module(info.name)
            has_example = any(mark in (inspect.getdoc(o) or "") for o in [module, *vars(module).values()])
        if has_example:
            found.append(info.name)
    return found


def browser_examples(doc: str | None, mark: str = _EXAMPLE_MARK) -> list[str]:
    r"""The code blocks that follow ``Example (in the browser)::`` (or another ``mark``) in a docstring, dedented.

    >>> doc = "Does x.\n\n    Example (in the browser)::\n\n        a = 1\n        print(a)\n\n    More text.\n"
    >>> browser_examples(doc)
    ['a = 1\nprint(a)']
    """
    import textwrap

    lines = (doc or "").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if not line.rstrip().endswith(mark):
            continue
        indent = len(line) - len(line.lstrip())
        body: list[str] = []
        for nxt in lines[i + 1 :]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n"))
    return [b for b in blocks if b]


def all_examples(mark: str = _EXAMPLE_MARK) -> dict[str, str]:
    """Every browser example (or ``mark``'s) in pyapp's docstrings (modules, classes, functions): title -> code."""
    import importlib

    found: dict[str, str] = {}
    for name in example_modules(mark):
        module = importlib.import_module(name)
        objects: list[tuple[str, Any]] = [(name, module)]
        for attr, obj in sorted(vars(module).items()):
            if getattr(obj, "__module__", None) == name and (inspect.isclass(obj) or inspect.isfunction(obj)):
                objects.append((f"{name}.{attr}", obj))
                if inspect.isclass(obj):
                    objects += [
                        (f"{name}.{attr}.{m}", f)
                        for m, f in sorted(vars(obj).items())
                        if not m.startswith("_") and inspect.isfunction(f)
                    ]
        for title, obj in objects:
            doc = inspect.getdoc(obj) if obj is not module else obj.__doc__
            for n, code in enumerate(browser_examples(doc, mark)):
                found[title if n == 0 else f"{title} ({n + 1})"] = code
    return found


def python_version() -> str:
    """This interpreter, for the page header.

    >>> python_version().startswith("Python 3.")
    True
    """
    return "Python " + sys.version.split()[0]
