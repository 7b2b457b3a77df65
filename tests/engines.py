"""One small driver interface over three browser engines, so a cross-engine test is written once.

=========  ============================  ==============================================================
engine     browser (Debian package)      driven through
=========  ============================  ==============================================================
chromium   ``chromium``                  Playwright (as the rest of the suite), one context per page
firefox    ``firefox-esr``               WebDriver BiDi, spoken here over one WebSocket (PyPI
                                         ``websocket-client``): Firefox serves BiDi itself
                                         (``--remote-debugging-port``), so no geckodriver, which no
                                         registry here ships; one user context (profile) per page
webkit     ``webkit2gtk-driver``         W3C WebDriver through Selenium and Debian's WebKitWebDriver,
           (WebKitGTK's MiniBrowser)     MiniBrowser on an Xvfb display (``xvfb``); one session per page
=========  ============================  ==============================================================

A :class:`Page` offers what the engines all can: ``goto``, ``reload``, ``evaluate`` (a JS function,
awaited; argument and result travel as JSON) and ``wait_for`` (a JS predicate polled from here, so
it survives the page navigating). Nothing engine-specific leaks into the tests: files are given to
the page by clicking its own buttons or by ``fetch`` inside it, never through a driver's file API.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

ENGINES = ("chromium", "firefox", "webkit")


class EngineUnavailable(RuntimeError):
    """The engine (or its driver) is not installed here."""


class DriverError(RuntimeError):
    """The driver refused a command, or a script in the page threw."""


class DriverHang(DriverError):
    """The driver itself stopped answering (not the page: a page's own timeouts raise other errors).

    Seen once in CI: a WebKitWebDriver command never returned, and the test's worker was killed by
    pytest-timeout at 600 s with no word on which command. Now the command fails within its own
    timeout plus :data:`DRIVER_GRACE_S`, names itself, and the session is ended.
    """


class EngineGone(DriverError):
    """The browser under the driver went away mid-test (the driver answers "invalid session id").

    Seen once in CI: WebKitGTK's MiniBrowser vanished during an app boot under full load, and the test
    polled a dead session for 240 s. Now the first such answer fails at once, with the tail of the
    driver's and browser's own log.
    """


#: How long past its own timeout a driver command may take before the driver counts as hung.
DRIVER_GRACE_S = 30.0


def _wrap(function: str) -> str:
    """``function`` (JS source of a possibly async function of one argument) as one that takes and gives JSON."""
    return (
        "async (argJson) => { const value = await (" + function + ")(JSON.parse(argJson));"
        " return JSON.stringify(value === undefined ? null : value); }"
    )


class Page:
    """A fresh, isolated tab (its own storage, cache and service workers)."""

    engine = ""

    def goto(self, url: str) -> None:
        raise NotImplementedError

    def reload(self) -> None:
        raise NotImplementedError

    def _call(self, wrapped: str, arg_json: str, timeout: float) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def logs(self) -> list[str]:
        """The page's console errors and uncaught exceptions, where the driver reports them."""
        return []

    def evaluate(self, function: str, arg: Any = None, timeout: float = 60.0) -> Any:
        """Call the JS ``function`` (source, may be async) with ``arg`` in the page; its result, via JSON."""
        return json.loads(self._call(_wrap(function), json.dumps(arg), timeout))

    def wait_for(self, predicate: str, arg: Any = None, timeout: float = 120.0, interval: float = 0.1) -> Any:
        """Poll the JS ``predicate`` until it returns something truthy, and return that.

        Errors while polling (the page is navigating) count as not yet; at the deadline the last one is shown.
        """
        deadline = time.monotonic() + timeout
        last: Exception | str = "never true"
        while True:
            try:
                value = self.evaluate(predicate, arg, timeout=max(1.0, deadline - time.monotonic()))
                if value:
                    return value
                last = f"still {value!r}"
            except (DriverHang, EngineGone):
                raise
            except Exception as exc:
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.engine}: {predicate} not true after {timeout:.0f} s (last: {last})")
            time.sleep(interval)

    def wait_for_selector(self, selector: str, timeout: float = 120.0) -> None:
        self.wait_for("(s) => document.querySelector(s) !== null", selector, timeout=timeout)

    def click(self, selector: str) -> None:
        self.evaluate("(s) => document.querySelector(s).click()", selector)


class Browser:
    """One running engine; :meth:`new_page` gives isolated pages."""

    name = ""
    version = ""

    def new_page(self) -> Page:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def page(self) -> Iterator[Page]:
        page = self.new_page()
        try:
            yield page
        finally:
            page.close()


# --------------------------------------------------------------------------- chromium (Playwright)


class ChromiumPage(Page):
    engine = "chromium"

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self._logs: list[str] = []
        self.page.on("pageerror", lambda exc: self._logs.append(f"uncaught: {exc}"))
        self.page.on("console", lambda m: m.type == "error" and self._logs.append(f"console: {m.text}"))

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def reload(self) -> None:
        self.page.reload()

    def _call(self, wrapped: str, arg_json: str, timeout: float) -> str:
        self.page.set_default_timeout(timeout * 1000)
        try:
            result: str = self.page.evaluate(f"({wrapped})", arg_json)
        except Exception as exc:
            raise DriverError(str(exc)) from exc
        return result

    def logs(self) -> list[str]:
        return list(self._logs)

    def close(self) -> None:
        self.context.close()


class ChromiumBrowser(Browser):
    """Wraps a Playwright Chromium (the test session's own, or one started by :func:`launch`)."""

    name = "chromium"

    def __init__(self, browser: Any, owner: Any = None) -> None:
        self.browser = browser
        self.version = str(browser.version)
        self._owner = owner  # a Playwright instance this object started, stopped on close

    def new_page(self) -> Page:
        return ChromiumPage(self.browser)

    def close(self) -> None:
        if self._owner is not None:
            self.browser.close()
            self._owner.stop()


# --------------------------------------------------------------------------- firefox (WebDriver BiDi)


def firefox_path() -> str:
    path = os.environ.get("PYAPP_FIREFOX") or shutil.which("firefox-esr") or shutil.which("firefox")
    if not path:
        raise EngineUnavailable("no Firefox: install Debian's `firefox-esr` or set PYAPP_FIREFOX=/path/to/firefox")
    return path


#: Preferences for the test profile (Firefox's remote agent sets its own recommended ones on top).
FIREFOX_PREFS: dict[str, Any] = {}


class _Bidi:
    """A blocking WebDriver BiDi client: one command at a time; events are kept for whoever asks."""

    def __init__(self, url: str) -> None:
        import websocket  # websocket-client

        self.ws = websocket.create_connection(url, suppress_origin=True, timeout=30)
        self.next_id = 0
        self.events: deque[dict[str, Any]] = deque(maxlen=500)

    def send(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"firefox: no answer to {method} in {timeout:.0f} s")
            self.ws.settimeout(remaining)
            message = json.loads(self.ws.recv())
            if message.get("type") == "event":
                self.events.append(message)
            elif message.get("id") == ident:
                if message.get("type") == "error":
                    raise DriverError(f"firefox: {method}: {message.get('error')}: {message.get('message')}")
                result: dict[str, Any] = message["result"]
                return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


class FirefoxPage(Page):
    engine = "firefox"

    def __init__(self, browser: FirefoxBrowser) -> None:
        self.bidi = browser.bidi
        self.user_context = self.bidi.send("browser.createUserContext", {})["userContext"]
        self.context = self.bidi.send("browsingContext.create", {"type": "tab", "userContext": self.user_context})[
            "context"
        ]

    def goto(self, url: str) -> None:
        self.bidi.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}, 120)

    def reload(self) -> None:
        self.bidi.send("browsingContext.reload", {"context": self.context, "wait": "complete"}, 120)

    def _call(self, wrapped: str, arg_json: str, timeout: float) -> str:
        out = self.bidi.send(
            "script.callFunction",
            {
                "functionDeclaration": wrapped,
                "arguments": [{"type": "string", "value": arg_json}],
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
            },
            timeout,
        )
        if out["type"] == "exception":
            details = out["exceptionDetails"]
            raise DriverError(f"firefox: the script threw: {details.get('text')}")
        value: str = out["result"]["value"]
        return value

    def logs(self) -> list[str]:
        return [
            f"{e['params'].get('type')}: {e['params'].get('text')}"
            for e in self.bidi.events
            if e.get("method") == "log.entryAdded"
            and e["params"].get("level") == "error"
            and e["params"].get("source", {}).get("context") == self.context
        ]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.bidi.send("browsingContext.close", {"context": self.context})
            self.bidi.send("browser.removeUserContext", {"userContext": self.user_context})


class FirefoxBrowser(Browser):
    """Firefox headless, a fresh profile, its own WebDriver BiDi server on a free port."""

    name = "firefox"

    def __init__(self, binary: str | None = None, prefs: dict[str, Any] | None = None, timeout: float = 60.0) -> None:
        binary = binary or firefox_path()
        self.profile = tempfile.mkdtemp(prefix="pyapp-firefox-")
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for key, value in {**FIREFOX_PREFS, **(prefs or {})}.items():
                f.write(f"user_pref({json.dumps(key)}, {json.dumps(value)});\n")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-remote", "--profile", self.profile, "--remote-debugging-port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: deque[str] = deque(maxlen=200)
        found = threading.Event()
        url: list[str] = []

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line.rstrip())
                m = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
                if m and not url:
                    url.append(m.group(1))
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(timeout) or not url:
            self._stop()
            raise EngineUnavailable(f"Firefox did not start its BiDi server: {list(self.stderr)[-10:]}")
        try:
            self.bidi = _Bidi(url[0].rstrip("/") + "/session")
            caps = self.bidi.send("session.new", {"capabilities": {}})["capabilities"]
            self.version = str(caps.get("browserVersion", "?"))
            self.bidi.send("session.subscribe", {"events": ["log.entryAdded"]})
        except Exception:
            self._stop()
            raise

    def new_page(self) -> Page:
        return FirefoxPage(self)

    def _stop(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.bidi.send("browser.close", {}, 10)
        self.bidi.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._stop()


# --------------------------------------------------------------------------- webkit (Selenium, WebKitWebDriver)


def minibrowser_path() -> str:
    found = [os.environ.get("PYAPP_MINIBROWSER", ""), *sorted(glob.glob("/usr/lib/*/webkit2gtk-4.*/MiniBrowser"))]
    path = next((p for p in found if p and os.access(p, os.X_OK)), "")
    if not path or not shutil.which("WebKitWebDriver"):
        raise EngineUnavailable("no WebKitGTK: install Debian's `webkit2gtk-driver` (WebKitWebDriver, MiniBrowser)")
    return path


class Xvfb:
    """A virtual X display (WebKitGTK's MiniBrowser has no headless mode of its own)."""

    def __init__(self) -> None:
        if not shutil.which("Xvfb"):
            raise EngineUnavailable("no Xvfb: install Debian's `xvfb`")
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.close()
            raise EngineUnavailable("Xvfb did not start")
        self.display = f":{number}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def proc_stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat``'s fields after the command name (state first, then the parent's pid); None once
    the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in glob.glob("/proc/[0-9]*"):
        child = int(entry.rsplit("/", 1)[1])
        fields = proc_stat(child)
        if fields:
            children.setdefault(int(fields[1]), []).append(child)
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


class WebKitPage(Page):
    """One WebDriver session (its own MiniBrowser). Selenium waits on the driver without a deadline,
    so every command runs on a helper thread and is given up, and the driver killed, past its deadline."""

    engine = "webkit"

    def __init__(self, browser: WebKitBrowser) -> None:
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.service import Service

        options = webdriver.WebKitGTKOptions()
        options.binary_location = browser.binary
        options.add_argument("--automation")  # without it MiniBrowser never answers the driver
        for arg in browser.args:
            options.add_argument(arg)
        # The driver's log, MiniBrowser's stderr included: the last lines go into an EngineGone.
        self.log = tempfile.NamedTemporaryFile(prefix="pyapp-webkit-", suffix=".log", delete=False)  # noqa: SIM115
        self.service = Service(
            executable_path=browser.driver,
            env={**os.environ, "DISPLAY": browser.xvfb.display},
            log_output=self.log.name,
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="webkit-driver")
        self._hung = ""
        self.driver: Any = None
        service = self.service
        self.driver = self._bounded("new session", lambda: webdriver.WebKitGTK(options=options, service=service), 60)
        self._bounded("set page load timeout", lambda: self.driver.set_page_load_timeout(120), 10)
        browser.version = str(self.driver.capabilities.get("browserVersion", "?"))

    def _bounded(self, what: str, call: Callable[[], T], timeout: float) -> T:
        if self._hung:
            raise DriverHang(self._hung)
        future = self._pool.submit(call)
        try:
            return future.result(timeout + DRIVER_GRACE_S)
        except concurrent.futures.TimeoutError:
            self._hung = (
                f"webkit: WebKitWebDriver did not answer `{what}` within {timeout + DRIVER_GRACE_S:.0f} s"
                f" (its own timeout was {timeout:.0f} s); the session was ended"
            )
            self._kill()
            raise DriverHang(self._hung) from None

    def _log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log.name, errors="replace") as f:
                tail = f.read().splitlines()[-lines:]
        except OSError:
            return ""
        return "; its log ends:\n" + "\n".join(tail) if tail else "; its log is empty"

    def _kill(self) -> None:
        """End the driver and the MiniBrowser it started; the blocked helper thread then gets a reset socket."""
        process = getattr(self.service, "process", None)
        if process is None:
            return
        for pid in reversed(_descendants(process.pid)):  # MiniBrowser's web process outlives MiniBrowser
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            process.kill()
            process.wait(10)

    def goto(self, url: str) -> None:
        self._bounded(f"get {url}", lambda: self.driver.get(url), 120)

    def reload(self) -> None:
        self._bounded("refresh", self.driver.refresh, 120)

    def _call(self, wrapped: str, arg_json: str, timeout: float) -> str:
        script = (
            "const done = arguments[arguments.length - 1];"
            f"({wrapped})(arguments[0]).then((ok) => done({{ ok }}),"
            " (e) => done({ error: String((e && e.stack) || e) }));"
        )

        def run() -> Any:
            self.driver.set_script_timeout(timeout)
            return self.driver.execute_async_script(script, arg_json)

        try:
            out = self._bounded("execute async script", run, timeout)
        except DriverHang:
            raise
        except Exception as exc:
            if type(exc).__name__ == "InvalidSessionIdException":
                self._hung = f"webkit: the browser went away (the driver answers: invalid session id){self._log_tail()}"
                self._kill()
                raise EngineGone(self._hung) from None
            raise DriverError(f"webkit: {exc}") from exc
        if "error" in out:
            raise DriverError(f"webkit: the script threw: {out['error']}")
        result: str = out["ok"]
        return result

    def close(self) -> None:
        if self.driver is not None and not self._hung:
            with contextlib.suppress(Exception):
                self._bounded("quit", self.driver.quit, 30)
        if self._hung:
            self._kill()
        self._pool.shutdown(wait=False)
        with contextlib.suppress(OSError):
            self.log.close()
            os.unlink(self.log.name)


class WebKitBrowser(Browser):
    """WebKitGTK's MiniBrowser on a private Xvfb display; each page is its own WebDriver session."""

    name = "webkit"

    def __init__(self, args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.binary = minibrowser_path()
        self.driver = shutil.which("WebKitWebDriver") or "WebKitWebDriver"
        self.xvfb = Xvfb()
        try:
            with self.page():  # the version, and a proof that the driver works
                pass
        except Exception as exc:
            self.xvfb.close()
            raise EngineUnavailable(f"WebKitWebDriver could not start MiniBrowser: {exc}") from exc

    def new_page(self) -> Page:
        return WebKitPage(self)

    def close(self) -> None:
        self.xvfb.close()


def launch(name: str) -> Browser:
    """Start one engine, for use outside pytest (a script measuring the compatibility table, say)."""
    if name == "chromium":
        from harness import CHROMIUM_FLAGS, chromium_path
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        return ChromiumBrowser(pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS), owner=pw)
    if name == "firefox":
        return FirefoxBrowser()
    if name == "webkit":
        return WebKitBrowser()
    raise ValueError(f"unknown engine {name!r}: one of {ENGINES}")
