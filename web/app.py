"""The page's Python: start a backend, load the model once, classify the sample photo."""

import time

import js  # type: ignore[import-not-found]
from pyodide.http import pyfetch  # type: ignore[import-not-found]

import pyapp


def _show(element_id: str, html: str) -> None:
    js.document.getElementById(element_id).innerHTML = html


async def main(backends: str) -> None:
    runtime = await pyapp.init(backends=tuple(b for b in backends.split(",") if b))
    skipped = ", ".join(f"{k} ({v})" for k, v in runtime.rejected.items())
    _show("backend", f"Backend: <strong>{runtime.backend}</strong>" + (f" — skipped {skipped}" if skipped else ""))
    classifier = await pyapp.ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")
    js.globalThis.pyappClassifier = classifier  # the page keeps one model for its lifetime
    photo = await (await pyfetch("vendor/samples/chelsea.png")).bytes()
    started = time.perf_counter()
    top = await classifier.classify(photo)
    ms = (time.perf_counter() - started) * 1e3
    rows = "".join(f"<tr><td>{label}</td><td>{p:.3f}</td></tr>" for label, p in top)
    _show("result", f"<table>{rows}</table><p>{ms:.0f} ms on {runtime.backend}</p>")
    js.performance.mark("pyapp:first-prediction")
    js.document.body.dataset.top1 = top[0][0]
