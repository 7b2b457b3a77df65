#!/usr/bin/env python3
"""Run pyapp's benchmarks in headless Chromium; write JSON, a markdown table and a PNG chart.

    .venv/bin/python benchmarks/run.py                       # every suite, wasm backend
    .venv/bin/python benchmarks/run.py --suite steady,stages --backend webgl
    .venv/bin/python benchmarks/run.py --soak-n 1000         # a shorter soak

Comparisons are measured side by side in one browser run (alternating where
it matters), never against numbers from another run. Results land in
benchmarks/results/ (results.json, results.md, chart.png).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import serve  # noqa: E402
from pyapp_build.chromium import CHROMIUM_FLAGS, PyodidePage, chromium_path  # noqa: E402

SUITES = ("steady", "backends", "stages", "preprocess", "cold", "batch", "variants", "live", "soak")
#: The live suite's backends, and the seconds each side (Python stream, plain-JS loop) runs per round.
LIVE_ROWS = {"wasm": 6.0, "webgl": 12.0}
#: The backends suite's rows, each side by side with plain-JS TF.js on the same backend.
BACKEND_ROWS = ("wasm", "webgl", "webgpu", "cpu")
#: The preprocess suite's decode rows: encoded bytes through each decoder and path.
DECODE_PATHS = ("browser_numpy_ms", "browser_backend_ms", "pillow_numpy_ms")


def summary(values: list[float]) -> dict[str, float]:
    """median / p90 / min / mean of a list of ms."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p90": p90,
        "min": ordered[0],
        "mean": statistics.fmean(values),
    }


class Bench:
    def __init__(self, browser: Any, url: str, backend: str) -> None:
        self.browser = browser
        self.url = url
        self.backend = backend
        self.context = browser.new_context()
        page = self.context.new_page()
        page.goto(url + "__bench__/bench.html")
        page.evaluate("() => benchReady")
        self.py = PyodidePage(page)

    def call(self, fn: str, *args: Any) -> Any:
        arglist = ", ".join(json.dumps(a) for a in args)
        return self.py.run(f"import bench_py\n__value__ = await bench_py.{fn}({arglist})", timeout=3600)

    def close(self) -> None:
        self.context.close()


#: Added to the app's pages in the cold suite: a visitor who has a photo at hand, on their own disk (its bytes are
#: in this script: nothing of it comes from the server, so the bytes on the wire are the app's alone). It is
#: chosen (the page's own file input) as soon as the page can take it, and the app keeps it through the boot,
#: as the plain TF.js page has its photo from the start; handing it over from here after the boot would add this
#: harness's own delay (0.1-0.35 s, measured). The first document's time origin is kept in the tab's
#: sessionStorage, so that a first visit that reloads itself once (a headerless host: isolation from the
#: service worker) is timed from the first navigation, not from the reload.
_VISITOR = """(() => {
    if (!sessionStorage.getItem('bench-t0')) sessionStorage.setItem('bench-t0', String(performance.timeOrigin));
    document.addEventListener('DOMContentLoaded', () => {
        const bytes = Uint8Array.from(atob('PHOTO'), (c) => c.charCodeAt(0));
        const input = document.getElementById('file-input');
        const files = new DataTransfer();
        files.items.add(new File([bytes], 'chelsea.png', { type: 'image/png' }));
        input.files = files.files;
        input.dispatchEvent(new Event('change'));
    });
})();"""


def _visitor_script() -> str:
    photo = (ROOT / "web" / "vendor" / "samples" / "chelsea.png").read_bytes()
    return _VISITOR.replace("PHOTO", base64.b64encode(photo).decode())


def _app_first_prediction(page: Any, url: str) -> float:
    """Open the app with a photo chosen at once (``_VISITOR``); ms from the first navigation's start to the
    shown result (the page's own ``pyapp:first-result`` mark, as the reference pages mark theirs)."""
    page.goto(url)
    page.wait_for_selector("#results .result.done", timeout=300_000)
    return float(
        page.evaluate(
            "performance.timeOrigin + performance.getEntriesByName('pyapp:first-result')[0].startTime"
            " - Number(sessionStorage.getItem('bench-t0'))"
        )
    )


class ByteCounter:
    """Bytes the server wrote (status lines, headers and bodies, as sent: compressed where negotiated)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0

    def add(self, n: int) -> None:
        with self.lock:
            self.total += n

    def take(self) -> int:
        with self.lock:
            n, self.total = self.total, 0
            return n

    def wrap(self, handler: type) -> type:
        counter = self

        class Counting(handler):  # type: ignore[misc, valid-type]
            def setup(self) -> None:
                super().setup()
                raw = self.wfile

                class Out:
                    def write(self, data: bytes) -> int:
                        counter.add(len(data))
                        return int(raw.write(data))

                    def flush(self) -> None:
                        raw.flush()

                    def __getattr__(self, name: str) -> Any:
                        return getattr(raw, name)

                self.wfile = Out()

        return Counting


def _plain_host(site: Path, counter: ByteCounter) -> tuple[Any, str]:
    """Python's stdlib static server over an exported site: no COOP/COEP/CSP headers, no compression."""
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = counter.wrap(Quiet)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(site)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _visits(browser: Any, url: str, counter: ByteCounter) -> dict[str, tuple[float, int]]:
    """A first and a repeat visit of the app in one fresh context: (ms to first prediction, bytes sent)."""
    out: dict[str, tuple[float, int]] = {}
    context = browser.new_context()
    context.add_init_script(_visitor_script())
    page = context.new_page()
    counter.take()
    ms = _app_first_prediction(page, url)
    out["first"] = (ms, counter.take())
    page.wait_for_selector("body[data-offline='ready']", timeout=300_000)
    # The first visit's last piece of work: the Pyodide snapshot the repeat visit restores (saved, or why not).
    page.wait_for_function(
        "() => document.body.dataset.snapshot && document.body.dataset.snapshot !== 'saving'", timeout=300_000
    )
    out["offline"] = (0.0, counter.take())
    page.close()
    again = context.new_page()
    ms = _app_first_prediction(again, url)
    out["repeat"] = (ms, counter.take())
    context.close()
    return out


def cold_start(browser: Any, url: str, backend: str, repeats: int, counter: ByteCounter) -> dict[str, Any]:
    """Time to first prediction and bytes on the wire: the app on a first and a repeat (service-worker
    cached) visit, from serve.py (headers, brotli) and from a headerless stdlib static server over
    ``serve.py build --out`` (isolation from the service worker: one reload); a plain TF.js page, and
    Pyodide + numpy alone. Fresh contexts (empty caches), interleaved, in one browser."""
    import tempfile

    site = Path(tempfile.mkdtemp(prefix="pyapp-bench-site-")) / "site"
    if serve.main(["build", "--out", str(site)]) != 0:
        raise SystemExit("serve.py build --out failed")
    plain_counter = ByteCounter()
    plain, plain_url = _plain_host(site, plain_counter)
    marks = {
        "plain TF.js page (first visit)": f"{url}__bench__/plain.html?backend={backend}",
        "Pyodide + numpy boot only (first visit)": f"{url}__bench__/pyodide_only.html",
    }
    rows = [
        "pyapp app, serve.py (first visit)",
        "pyapp app, serve.py (repeat visit)",
        "pyapp app, headerless static host (first visit)",
        "pyapp app, headerless static host (repeat visit)",
        *marks,
    ]
    times: dict[str, list[float]] = {k: [] for k in rows}
    sent: dict[str, list[int]] = {k: [] for k in rows}
    offline: dict[str, list[int]] = {"serve.py": [], "headerless static host": []}
    try:
        for _ in range(repeats):
            for host, host_url, count in (
                ("serve.py", url, counter),
                ("headerless static host", plain_url, plain_counter),
            ):
                got = _visits(browser, f"{host_url}?backend={backend}", count)
                for visit in ("first", "repeat"):
                    times[f"pyapp app, {host} ({visit} visit)"].append(got[visit][0])
                    sent[f"pyapp app, {host} ({visit} visit)"].append(got[visit][1])
                offline[host].append(got["offline"][1])
            for name, page_url in marks.items():
                context = browser.new_context()
                page = context.new_page()
                counter.take()
                page.goto(page_url)
                page.wait_for_function(
                    "() => performance.getEntriesByName('pyapp:first-prediction').length > 0", timeout=300_000
                )
                times[name].append(page.evaluate("performance.getEntriesByName('pyapp:first-prediction')[0].startTime"))
                sent[name].append(counter.take())
                context.close()
    finally:
        plain.shutdown()
        plain.server_close()
    result: dict[str, Any] = {
        name: {**summary(times[name]), "bytes_sent": statistics.median(sent[name])} for name in rows
    }
    floor = result["Pyodide + numpy boot only (first visit)"]["median"]
    plain_tf = result["plain TF.js page (first visit)"]["median"]
    result["ratios"] = {
        "first visit / Pyodide+numpy (serve.py)": result["pyapp app, serve.py (first visit)"]["median"] / floor,
        "first visit / Pyodide+numpy (headerless)": result["pyapp app, headerless static host (first visit)"]["median"]
        / floor,
        "repeat visit / plain TF.js (serve.py)": result["pyapp app, serve.py (repeat visit)"]["median"] / plain_tf,
        "repeat visit / plain TF.js (headerless)": result["pyapp app, headerless static host (repeat visit)"]["median"]
        / plain_tf,
    }
    result["offline_copy_bytes"] = {k: statistics.median(v) for k, v in offline.items()}
    return result


def live(pw: Any, url: str, rounds: int) -> dict[str, Any]:
    """The live suite, in a browser whose camera shows the scene video (pyapp_build/camera.py) at 60 fps."""
    import tempfile

    from pyapp_build.camera import scene_images, write_scenes

    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = write_scenes(Path(tmp) / "scenes.y4m", scene_images(), fps=60)
        flags = [*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={video}"]
        browser = pw.chromium.launch(executable_path=chromium_path(shell=False), args=flags)
        try:
            for name, seconds in LIVE_ROWS.items():
                bench = Bench(browser, url, name)
                try:
                    raw = bench.call("live", name, seconds, rounds)
                finally:
                    bench.close()
                py, jsr = statistics.median(raw["python"]), statistics.median(raw["plain_js"])
                rows[name] = {
                    "python_fps": raw["python"],
                    "plain_js_fps": raw["plain_js"],
                    "python_latency_ms": summary(raw["python_latency_ms"]),
                    "plain_js_latency_ms": summary(raw["plain_js_latency_ms"]),
                    "ratio_fps": py / jsr,
                    "path": raw["path"],
                    "python_dropped": raw["python_dropped"],
                }
        finally:
            browser.close()
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    import pyapp_build

    pyapp_build.build()
    mounts = {**serve.default_mounts(), "/__bench__/": ROOT / "benchmarks"}
    counter = ByteCounter()
    server = serve.make_server("127.0.0.1", 0, mounts, quiet=True, csp_exempt=("/__bench__/",))
    server.RequestHandlerClass = counter.wrap(server.RequestHandlerClass)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    suites = args.suite.split(",")
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "suites": {}}
    with sync_playwright() as pw:
        # WebGPU for the backends suite's row (a real adapter here only with this flag: SwiftShader's Vulkan);
        # every other suite names its backend, so the flag changes nothing for them.
        flags = [*CHROMIUM_FLAGS, "--enable-unsafe-webgpu"]
        browser = pw.chromium.launch(executable_path=chromium_path(shell=False), args=flags)
        results["browser"] = browser.version
        bench = Bench(browser, url, args.backend)
        results["environment"] = bench.call("environment", args.backend)
        s = results["suites"]
        try:
            for suite in suites:
                started = time.perf_counter()
                print(f"[bench] {suite} ...", file=sys.stderr, flush=True)
                if suite == "steady":
                    raw = bench.call("steady", args.backend, args.n, args.warmup)
                    py, jsb = summary(raw["py_ms"]), summary(raw["js_ms"])
                    s[suite] = {
                        "python": py,
                        "plain_js": jsb,
                        "ratio_median": py["median"] / jsb["median"],
                        "same_output": raw["same_output"],
                    }
                elif suite == "backends":
                    s[suite] = {}
                    for name in BACKEND_ROWS:
                        # Seconds a prediction on SwiftShader's WebGPU and on plain-JS cpu here: fewer of them.
                        n, warmup = (args.n, args.warmup) if name in ("wasm", "webgl") else (min(args.n, 10), 2)
                        raw = bench.call("steady", name, n, warmup)
                        py, jsb = summary(raw["py_ms"]), summary(raw["js_ms"])
                        s[suite][name] = {
                            "python": py,
                            "plain_js": jsb,
                            "ratio_median": py["median"] / jsb["median"],
                            "same_output": raw["same_output"],
                        }
                elif suite == "stages":
                    raw = bench.call("stages", args.backend, args.n, args.warmup)
                    s[suite] = {k: summary(v) for k, v in raw.items()}
                elif suite == "preprocess":
                    raw = bench.call("preprocess", args.backend, args.n)
                    s[suite] = {k: summary(v) if isinstance(v, list) else v for k, v in raw.items()}
                    s[suite]["decode"] = {
                        size: {k: summary(v) if isinstance(v, list) else v for k, v in paths.items()}
                        for size, paths in raw["decode"].items()
                    }
                    # Like for like: the two ways a browser image object can become model input.
                    s[suite]["ratio_numpy_over_gpu"] = (
                        s[suite]["numpy_from_bitmap_ms"]["median"] / s[suite]["gpu_ms"]["median"]
                    )
                elif suite == "cold":
                    s[suite] = cold_start(browser, url, args.backend, args.cold_repeats, counter)
                elif suite == "batch":
                    s[suite] = bench.call("batch", args.backend, 64, 16)
                    s[suite]["speedup"] = s[suite]["one_by_one_ms"] / s[suite]["batched_ms"]
                elif suite == "variants":
                    raw = bench.call("variants", args.backend, args.n)
                    s[suite] = {k: {**v, "predict_ms": summary(v["predict_ms"])} for k, v in raw.items()}
                elif suite == "live":
                    s[suite] = live(pw, url, args.live_rounds)
                elif suite == "soak":
                    raw = bench.call("soak", args.backend, args.soak_n, max(1, args.soak_n // 20))
                    first, last = raw["samples"][0], raw["samples"][-1]
                    growth = {
                        k: last[k] - first[k]
                        for k in ("num_tensors", "num_bytes", "live_proxies", "tf_wasm_heap_bytes", "python_heap_bytes")
                        if isinstance(first.get(k), int) and isinstance(last.get(k), int)
                    }
                    s[suite] = {"n": raw["n"], "growth": growth, "samples": raw["samples"], "seconds": last["t_s"]}
                else:
                    raise SystemExit(f"unknown suite {suite!r}; choose from {SUITES}")
                print(f"[bench] {suite} done in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
        finally:
            bench.close()
            browser.close()
    server.shutdown()
    return results


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [
        "# pyapp benchmarks",
        "",
        f"Chromium {results['browser']}, backend **{env['backend']}**, "
        f"crossOriginIsolated={env['cross_origin_isolated']}, "
        f"WASM SIMD={env['wasm_simd']}, threads={env['wasm_threads']}, cores={env['hardware_concurrency']}, "
        f"TF.js {env['tfjs']}. Run {results['started']}.",
        "",
    ]
    s = results["suites"]
    ms = "{:.1f}".format
    if "steady" in s:
        r = s["steady"]
        lines += [
            "## Steady-state prediction (alternating in one page)",
            "",
            "| path | n | median ms | p90 ms |",
            "|---|---|---|---|",
            f"| pyapp (Python) | {r['python']['n']} | {ms(r['python']['median'])} | {ms(r['python']['p90'])} |",
            f"| plain-JS TF.js | {r['plain_js']['n']} | {ms(r['plain_js']['median'])} | {ms(r['plain_js']['p90'])} |",
            "",
            f"Ratio Python/JS (median): **{r['ratio_median']:.3f}**; same output: {r['same_output']}",
            "",
        ]
    if "backends" in s:
        lines += [
            "## Prediction on every backend (pyapp beside plain-JS TF.js on the same backend, one page)",
            "",
            "| backend | n | pyapp median ms | plain-JS median ms | ratio | same output |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in s["backends"].items():
            lines.append(
                f"| {name} | {r['python']['n']} | {ms(r['python']['median'])} | {ms(r['plain_js']['median'])} "
                f"| {r['ratio_median']:.3f} | {r['same_output']} |"
            )
        lines.append("")
    if "stages" in s:
        lines += [
            "## Python path, per stage (encoded 300x451 PNG -> top-5)",
            "",
            "| stage | median ms | p90 ms |",
            "|---|---|---|",
        ]
        lines += [f"| {k} | {ms(v['median'])} | {ms(v['p90'])} |" for k, v in s["stages"].items()]
        lines.append("")
    if "preprocess" in s:
        r = s["preprocess"]
        lines += [
            f"## Preprocessing a {r['pixels'] / 1e6:.2f} MP photo to 1x224x224x3",
            "",
            "| path | median ms | p90 ms |",
            "|---|---|---|",
            f"| numpy (decoded array) | {ms(r['numpy_ms']['median'])} | {ms(r['numpy_ms']['p90'])} |",
            f"| numpy incl. PNG decode | {ms(r['numpy_with_decode_ms']['median'])} | "
            f"{ms(r['numpy_with_decode_ms']['p90'])} |",
            f"| ImageBitmap -> tensor, numpy path (read pixels, resize, upload) | "
            f"{ms(r['numpy_from_bitmap_ms']['median'])} | {ms(r['numpy_from_bitmap_ms']['p90'])} |",
            f"| ImageBitmap -> tensor, backend path (fromPixels, resize) | {ms(r['gpu_ms']['median'])} | "
            f"{ms(r['gpu_ms']['p90'])} |",
            "",
            f"ImageBitmap -> tensor, numpy path / backend path (median): **{r['ratio_numpy_over_gpu']:.2f}** "
            "(above 1: the backend path is faster)",
            "",
            "Encoded JPEG bytes -> 1x224x224x3, by decoder and path:",
            "",
            "| JPEG | browser decode + numpy | browser decode + backend | Pillow decode + numpy |",
            "|---|---|---|---|",
        ]
        for size, d in r["decode"].items():
            cells = [f"{ms(d[k]['median'])} (p90 {ms(d[k]['p90'])})" for k in DECODE_PATHS]
            lines.append(f"| {size} ({d['jpeg_bytes'] / 1e6:.1f} MB) | " + " | ".join(cells) + " |")
        lines += [
            "",
        ]
    if "cold" in s:
        cold = s["cold"]
        rows = {k: v for k, v in cold.items() if k not in ("ratios", "offline_copy_bytes")}
        lines += [
            "## Cold start: time to first prediction (fresh context, empty cache)",
            "",
            "Bytes: what the server wrote up to the first prediction (headers and bodies, compressed where "
            "negotiated); serve.py negotiates brotli, the headerless stdlib server sends files as they are.",
            "",
            "| page | n | median ms | min ms | bytes sent (median) |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {v['n']} | {ms(v['median'])} | {ms(v['min'])} | {v['bytes_sent']:,.0f} |" for k, v in rows.items()
        ]
        lines += ["", "| ratio (medians) | value |", "|---|---|"]
        lines += [f"| {k} | **{v:.2f}** |" for k, v in cold["ratios"].items()]
        lines += ["", "Bytes for the offline copy after the first prediction (the service worker caches the rest):"]
        lines += [f"{k} {v:,.0f};" for k, v in cold["offline_copy_bytes"].items()]
        lines.append("")
    if "batch" in s:
        r = s["batch"]
        lines += [
            "## Batch",
            "",
            f"{r['count']} images: one by one {ms(r['one_by_one_ms'])} ms, "
            f"batched ({r['batch_size']}) {ms(r['batched_ms'])} ms, speed-up **{r['speedup']:.2f}x**",
            "",
        ]
    if "variants" in s:
        lines += [
            "## Model variants",
            "",
            "| variant | bytes | load ms | predict median ms | top-1 vs float32 | max prob diff |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {v['bytes']:,} | {ms(v['load_ms'])} | {ms(v['predict_ms']['median'])} | "
            f"{v['top1_agreement']} | {v['max_prob_diff']:.4f} |"
            for k, v in s["variants"].items()
        ]
        lines.append("")
    if "live" in s:
        lines += [
            "## Live camera stream (640x480 at 60 fps; the Python stream beside a plain-JS rVFC + predict loop, "
            "same page, model and camera, alternating)",
            "",
            "| backend | Python fps | plain-JS fps | ratio | Python latency median (p90) ms | "
            "plain-JS latency median (p90) ms | Python path |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in s["live"].items():
            pyl, jsl = r["python_latency_ms"], r["plain_js_latency_ms"]
            lines.append(
                f"| {name} | {statistics.median(r['python_fps']):.2f} | {statistics.median(r['plain_js_fps']):.2f} | "
                f"**{r['ratio_fps']:.3f}** | {ms(pyl['median'])} ({ms(pyl['p90'])}) | "
                f"{ms(jsl['median'])} ({ms(jsl['p90'])}) | {', '.join(r['path'])} |"
            )
        lines.append("")
    if "soak" in s:
        r = s["soak"]
        lines += [
            f"## Soak: {r['n']:,} classifications in {r['seconds']:.0f} s",
            "",
            "| measure | growth first -> last sample |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v:+,} |" for k, v in r["growth"].items()]
        lines.append("")
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    """A small bar chart of the medians (Pillow only)."""
    from PIL import Image, ImageDraw

    bars: list[tuple[str, float]] = []
    s = results["suites"]
    if "steady" in s:
        bars += [
            ("predict: Python", s["steady"]["python"]["median"]),
            ("predict: plain JS", s["steady"]["plain_js"]["median"]),
        ]
    if "stages" in s:
        bars += [(f"stage: {k}", v["median"]) for k, v in s["stages"].items()]
    if "preprocess" in s:
        bars += [
            ("prep bitmap: numpy path", s["preprocess"]["numpy_from_bitmap_ms"]["median"]),
            ("prep bitmap: backend path", s["preprocess"]["gpu_ms"]["median"]),
        ]
    if "variants" in s:
        bars += [(f"predict {k}", v["predict_ms"]["median"]) for k, v in s["variants"].items()]
    if not bars:
        return
    width, row = 900, 28
    img = Image.new("RGB", (width, 60 + row * len(bars)), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), f"pyapp medians (ms), backend {results['environment']['backend']}", fill="black")
    peak = max(v for _, v in bars) or 1.0
    for i, (label, value) in enumerate(bars):
        y = 40 + i * row
        draw.text((10, y + 6), label, fill="black")
        length = int((width - 330) * value / peak)
        draw.rectangle((240, y + 4, 240 + max(length, 1), y + row - 6), fill=(11, 95, 255))
        draw.text((248 + length, y + 6), f"{value:.1f}", fill="black")
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--suite", default=",".join(SUITES))
    parser.add_argument("--backend", default="wasm", choices=("wasm", "webgl", "cpu", "webgpu"))
    parser.add_argument("--n", type=int, default=60, help="timed iterations (after warm-up)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--soak-n", type=int, default=10_000)
    parser.add_argument("--live-rounds", type=int, default=5, help="alternations of the live suite, per backend")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    (args.out / "results.md").write_text(table + "\n")
    chart(results, args.out / "chart.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
