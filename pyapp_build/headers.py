"""The HTTP headers the site is served with: one place for serve.py, ``_headers`` and the service worker.

Standard library only: serve.py imports it before anything else is installed.

Example::

    >>> SECURITY_HEADERS["Cross-Origin-Embedder-Policy"]
    'require-corp'
"""

from __future__ import annotations

from collections.abc import Mapping

#: The app's Content-Security-Policy. No ``unsafe-eval`` and no inline script:
#: ``wasm-unsafe-eval`` lets Pyodide and TF.js compile WebAssembly; ``blob:`` in
#: script-src/worker-src is for the workers PyScript and TF.js's WASM thread pool
#: start from blob URLs (their scripts are ours, not downloaded); images are
#: previewed from blob: URLs; nothing may be sent anywhere but this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self' blob: data:",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

#: Sent with every response. COOP+COEP make the page crossOriginIsolated
#: (SharedArrayBuffer, so WASM threads); CORP lets the isolated page load them.
SECURITY_HEADERS: Mapping[str, str] = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


#: What the service worker adds itself (web/sw.js, via vendor/build.json) on hosts that send no headers:
#: the headers that are not about isolation (it always adds COOP/COEP/CORP).
SERVICE_WORKER_HEADERS: Mapping[str, str] = {
    k: v for k, v in SECURITY_HEADERS.items() if not k.startswith("Cross-Origin-")
}
