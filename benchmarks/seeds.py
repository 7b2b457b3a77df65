#!/usr/bin/env python3
"""How the seeded training tests score over many seeds: the margin each threshold keeps.

    flock /tmp/pyapp-browser.lock .venv/bin/python benchmarks/seeds.py            # seeds 0-9, both tests
    flock /tmp/pyapp-browser.lock .venv/bin/python benchmarks/seeds.py --seeds 0-19 --only transfer

In one headless Chromium page on the wasm backend, trains what the tests train, once per
seed: the digits CNN of tests/test_training.py (held-out accuracy on 397 digits, bar 0.95)
and the face head of tests/test_transfer.py (held-out accuracy on 180 photos, bar 0.90),
with the tests' data and splits; only the training seed changes. Prints seed, accuracy and
seconds per run, then min / median / max, then trains the first seed again to show that a
seed repeats (the same logs, epoch by epoch). Keep the code below in step with the tests.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import serve  # noqa: E402
from pyapp_build.chromium import CHROMIUM_FLAGS, PyodidePage, chromium_path  # noqa: E402

# As tests/test_training.py::test_seed_cnn_learns_digits_on_wasm_with_no_leaks trains and scores.
DIGITS = """
import time, numpy as np, testutil
from pyapp import datasets
from pyapp.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from pyapp.training import Sequential

await testutil.use_backend("wasm")
x, y = await datasets.digits()
order = np.random.default_rng(0).permutation(len(x))
x, y = x[order], y[order]
out = []
for seed in SEEDS:
    start = time.perf_counter()
    model = Sequential(
        [
            Conv2D(32, 3, activation="relu", padding="same", input_shape=(8, 8, 1)),
            MaxPool2D(2),
            Conv2D(64, 3, activation="relu", padding="same"),
            MaxPool2D(2),
            Conv2D(128, 3, activation="relu", padding="same"),
            MaxPool2D(2),
            Flatten(),
            Dense(256, activation="relu"),
            Dropout(0.5),
            Dense(10, activation="softmax"),
        ],
        name="digits_cnn",
        seed=seed,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = await model.fit(x[:1400], y[:1400], epochs=12, batch_size=32, validation_split=0.1, seed=seed)
    scores = await model.evaluate(x[1400:], y[1400:])
    model.dispose()
    out.append({"seed": seed, "accuracy": scores["accuracy"], "seconds": time.perf_counter() - start,
                "logs": history.history})
__value__ = out
"""

# As tests/test_transfer.py's TRAIN picks, adds and scores (held-out features computed once:
# classify_many computes the same features, in the same single batch, on every call).
TRANSFER = """
import time, numpy as np, testutil
from pyapp import datasets
from pyapp.transfer import TransferClassifier

await testutil.use_backend("wasm")
images, labels = await datasets.faces()
rng = np.random.default_rng(7)
faces = rng.permutation(np.flatnonzero(labels == 1))
others = rng.permutation(np.flatnonzero(labels == 0))
held_out = np.concatenate([faces[10:], others[10:]])
base = await testutil.classifier("wasm")
learner = await TransferClassifier.create(base, ["not a face", "face"])
await learner.add_many([images[i] for i in others[:10]], "not a face")
for i in faces[:10]:
    await learner.add(images[i], "face")
features = await learner.extractor.features([images[i] for i in held_out])
truth = labels[held_out].astype(bool)
out = []
for seed in SEEDS:
    start = time.perf_counter()
    history = await learner.train(epochs=40, seed=seed)
    probs = await learner.head.predict(features)
    said_face = probs.argmax(1) == learner.classes.index("face")
    out.append({"seed": seed, "accuracy": float((said_face == truth).mean()), "seconds": time.perf_counter() - start,
                "logs": history.history})
learner.dispose()
__value__ = out
"""

TESTS = {"digits": (DIGITS, 0.95, 397), "transfer": (TRANSFER, 0.90, 180)}


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` or ``"3,5,8"`` (or both, comma-separated) -> a list of seeds.

    >>> parse_seeds("0-3,7")
    [0, 1, 2, 3, 7]
    """
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def table(name: str, rows: list[dict[str, Any]], bar: float, n: int) -> str:
    """Per seed accuracy and time, then min / median / max and the margin the bar keeps below the worst."""
    lines = [f"{name}: held-out accuracy over {n} examples (bar {bar:.2f})", "seed  accuracy  right  seconds"]
    for row in rows:
        right = round(row["accuracy"] * n)
        lines.append(f"{row['seed']:>4}  {row['accuracy']:8.4f}  {right:>5}  {row['seconds']:7.1f}")
    acc = [row["accuracy"] for row in rows]
    secs = [row["seconds"] for row in rows]
    lines.append(f" min  {min(acc):8.4f}  {round(min(acc) * n):>5}  {min(secs):7.1f}")
    lines.append(f" med  {statistics.median(acc):8.4f}  {'':>5}  {statistics.median(secs):7.1f}")
    lines.append(f" max  {max(acc):8.4f}  {round(max(acc) * n):>5}  {max(secs):7.1f}")
    worst = min(acc)
    slack = round(worst * n) - math.ceil(bar * n - 1e-9)  # right answers the worst seed can lose and still pass
    lines.append(f"margin below the worst seed: {worst - bar:+.4f} ({slack} of {n} examples)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0-9", help="seeds to train with, e.g. 0-9 or 0-4,11 (default 0-9)")
    parser.add_argument("--only", choices=sorted(TESTS), help="run one of the two tests' trainings")
    parser.add_argument("--json", type=Path, help="also write the rows (with per-epoch logs) here")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)

    from playwright.sync_api import sync_playwright

    import pyapp_build

    pyapp_build.build()
    mounts = {**serve.default_mounts(), "/__tests__/": ROOT / "tests" / "browser"}
    server = serve.make_server("127.0.0.1", 0, mounts, quiet=True, csp_exempt=("/__tests__/",))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    host, port = server.server_address[:2]
    results: dict[str, Any] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(shell=False), args=CHROMIUM_FLAGS)
            try:
                page = PyodidePage.boot(
                    browser.new_context().new_page(), f"http://{host}:{port}/__tests__/harness.html", "harnessReady"
                )
                for name, (code, bar, n) in TESTS.items():
                    if args.only and name != args.only:
                        continue
                    rows = page.run(f"SEEDS = {seeds!r}\n" + code, timeout=3600)
                    again = page.run(f"SEEDS = {seeds[:1]!r}\n" + code, timeout=3600)[0]
                    repeats = again["logs"] == rows[0]["logs"] and again["accuracy"] == rows[0]["accuracy"]
                    print(table(name, rows, bar, n))
                    same = "the same logs and accuracy" if repeats else "DIFFERENT"
                    print(f"seed {seeds[0]} trained again: {same}\n")
                    results[name] = {"bar": bar, "n": n, "rows": rows, "repeats": repeats}
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if all(r["repeats"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
