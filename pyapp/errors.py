"""The exceptions pyapp raises. One root, a small tree::

    PyAppError
    ├── BackendUnavailable      no requested TF.js backend could start
    ├── BackendLost             the active backend's device went away (WebGL context lost)
    ├── FetchError              a file could not be fetched (network, HTTP status)
    ├── ModelLoadError          a model could not be fetched, parsed or built
    │   └── ModelIntegrityError a file's bytes differ from its manifest sha256
    ├── ConvertError (+ValueError)  a Keras file that cannot be converted faithfully (names the layer, says why)
    ├── InvalidInput (+ValueError)  wrong shape, dtype or value handed to the API
    │   └── InvalidImage        bytes or objects that are not a usable image
    ├── StateError              the object is in the wrong lifecycle state
    │   └── DisposedError       used after dispose()
    ├── VideoError              a camera that cannot open, a video source that stopped giving frames
    ├── TidyError               awaiting inside ``with tidy():``
    ├── LeakError (+AssertionError)  ``assert_no_leaks`` found tensors/bytes/proxies left
    └── JSError                 any other JavaScript exception, message kept

Example::

    >>> from pyapp.errors import InvalidImage, PyAppError
    >>> issubclass(InvalidImage, PyAppError) and issubclass(InvalidImage, ValueError)
    True
"""

from __future__ import annotations


class PyAppError(Exception):
    """Root of every exception pyapp raises on purpose."""


class BackendUnavailable(PyAppError):
    """None of the requested backends could be initialised.

    ``reasons`` maps each backend tried to why it was rejected.
    """

    def __init__(self, message: str, reasons: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reasons: dict[str, str] = dict(reasons or {})


class BackendLost(PyAppError):
    """The active backend can no longer compute: its WebGL context was lost (GPU reset, driver
    crash, too many contexts). Tensors on it are gone. :meth:`pyapp.model.Model.predict`
    recovers by itself; code holding its own tensors calls :func:`pyapp.runtime.recover`.
    """


class FetchError(PyAppError):
    """A file could not be fetched: a network failure or an HTTP error status."""


class ModelLoadError(PyAppError):
    """A model (or every variant of it) failed to load; ``attempts`` says why for each."""

    def __init__(self, message: str, attempts: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.attempts: dict[str, str] = dict(attempts or {})


class ModelIntegrityError(ModelLoadError):
    """A model file's sha256 does not match its manifest."""


class ConvertError(PyAppError, ValueError):
    """A Keras model file could not be converted to TF.js without changing what it computes:
    an unsupported layer or option, a malformed or hostile file. ``layer`` names the layer
    when one is to blame.

    >>> str(ConvertError("groups=2 is not supported", layer="conv2d"))
    "layer 'conv2d': groups=2 is not supported"
    """

    def __init__(self, message: str, layer: str | None = None) -> None:
        super().__init__(f"layer {layer!r}: {message}" if layer is not None else message)
        self.layer = layer


class InvalidInput(PyAppError, ValueError):
    """An argument has the wrong shape, dtype, range or type."""


class InvalidImage(InvalidInput):
    """Input that cannot be decoded as an image; the message names the cause."""


class StateError(PyAppError):
    """The object is not in a state that allows this call (e.g. still loading)."""


class DisposedError(StateError):
    """The object was disposed and cannot be used again."""


class VideoError(PyAppError):
    """A camera could not be opened (the message says why and what to do), or a video source stopped
    giving frames for no reason it would say."""


class TidyError(PyAppError):
    """An ``await`` happened inside ``with tidy():``; TF.js scopes are synchronous."""


class LeakError(PyAppError, AssertionError):
    """Memory was left behind inside ``with assert_no_leaks():``; the message is the report."""


class JSError(PyAppError):
    """A JavaScript exception that crossed into Python.

    ``js_name`` is the JS error's ``name`` (``TypeError``, ``Error``...).
    """

    def __init__(self, message: str, js_name: str = "Error") -> None:
        super().__init__(message)
        self.js_name = js_name
