"""What a user runs in each host (tests/test_hosts.py): install pyapp's wheel, init, classify a photo.

Nothing of pyapp is on the page before: micropip installs the wheel (and, from the site's
pyodide-lock.json, its numpy and Pillow), and ``pyapp.init()`` loads TF.js itself.
"""

from __future__ import annotations

import json
from typing import Any


async def classify(wheel_url: str, root: str) -> dict[str, Any]:
    import js
    import pyodide_js  # type: ignore[import-not-found]

    await pyodide_js.loadPackage("micropip")
    import micropip  # type: ignore[import-not-found]

    await micropip.install(wheel_url)
    # The test pages live under /__tests__/hosts/; the site's files are under /.
    js.globalThis.PYAPP_ROOT = root
    import pyapp

    runtime = await pyapp.init()
    photo = await pyapp.fetch.fetch_bytes("vendor/samples/chelsea.png")
    async with await pyapp.ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json") as clf:
        top = await clf.classify(photo)
    return {
        "top": [[label, prob] for label, prob in top],
        "backend": runtime.backend,
        "tfjs_source": runtime.tfjs_source,
        "tfjs_version": runtime.tfjs_version,
        "pyapp_file": pyapp.__file__,
        "distribution": str(micropip.list()["pyapp-tfjs"].version),
        "global_scope": str(js.globalThis.constructor.name),
    }


def as_json(value: dict[str, Any]) -> str:
    return json.dumps(value)
