"""Read HDF5 files through one small interface: h5py where it is installed, else pyfive.

Keras keeps weights in HDF5. On the host h5py (libhdf5) reads them; in Pyodide there is
no libhdf5, so the pure-Python ``pyfive`` reads the same files through the same
:class:`Group` methods. Only what Keras files need is here: groups, string attributes
and whole numeric datasets, each dataset's declared size checked against a byte budget
*before* it is read, so a file declaring absurd shapes cannot exhaust memory.

Example::

    >>> import io, numpy as np
    >>> import h5py
    >>> buf = io.BytesIO()
    >>> with h5py.File(buf, "w") as f:
    ...     f.attrs["note"] = "hi"
    ...     f.create_dataset("g/w", data=np.arange(3, dtype=np.float32))
    <HDF5 dataset "w": shape (3,), type "<f4">
    >>> for reader in READERS:
    ...     root = open_hdf5(buf.getvalue(), reader=reader)
    ...     print(reader, root.attr_text("note"), root.group("g").array("w").tolist())
    h5py hi [0.0, 1.0, 2.0]
    pyfive hi [0.0, 1.0, 2.0]
"""

from __future__ import annotations

import importlib
import io
import math
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from pyapp._js import IN_BROWSER, pyodide_js
from pyapp.errors import ConvertError

Reader = Literal["h5py", "pyfive"]
READERS: tuple[Reader, ...] = ("h5py", "pyfive")
_NUMERIC = frozenset("fiub")  # float, signed, unsigned, bool: what weights are made of


class Budget:
    """Bytes still allowed to be read; every dataset draws from it before it is read.

    >>> b = Budget(10)
    >>> b.take(8, "a")
    >>> b.take(8, "b")
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: b: declares 8 bytes, over the 2 bytes left of the 10-byte limit
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self, nbytes: int, where: str) -> None:
        """Draw ``nbytes`` for ``where``; :class:`ConvertError` when that is more than is left."""
        if nbytes > self.left:
            raise ConvertError(
                f"{where}: declares {nbytes} bytes, over the {self.left} bytes left of the {self.limit}-byte limit"
            )
        self.left -= nbytes


class Group:
    """One HDF5 group (or the file's root), whichever library reads it.

    >>> import io, h5py
    >>> buf = io.BytesIO()
    >>> with h5py.File(buf, "w") as f:
    ...     _ = f.create_group("a/b")
    >>> list(open_hdf5(buf.getvalue(), reader="pyfive").keys())
    ['a']
    """

    def __init__(self, node: Any, path: str, reader: Reader, budget: Budget) -> None:
        self._node = node
        self.path = path
        self.reader = reader
        self._budget = budget

    def keys(self) -> Iterator[str]:
        """Member names, as the file stores them (sorted by name in both readers)."""
        return iter(sorted(str(k) for k in self._node))

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def __contains__(self, name: str) -> bool:
        return name in set(self.keys())

    def _member(self, name: str) -> Any:
        try:
            return self._node[name]
        except (KeyError, ValueError) as exc:
            raise ConvertError(f"{self.path}/{name}: not in the HDF5 file ({exc})") from None

    def _is_group(self, obj: Any) -> bool:
        return hasattr(obj, "keys") and not hasattr(obj, "shape")

    def group(self, name: str) -> Group:
        """The member group ``name`` (a path like ``a/b`` works too)."""
        obj = self._member(name)
        if not self._is_group(obj):
            raise ConvertError(f"{self.path}/{name}: expected an HDF5 group, found a dataset")
        return Group(obj, f"{self.path}/{name}".replace("//", "/"), self.reader, self._budget)

    def is_dataset(self, name: str) -> bool:
        """Whether member ``name`` is a dataset (not a group)."""
        return not self._is_group(self._member(name))

    def array(self, name: str) -> np.ndarray:
        """The whole numeric dataset ``name``, read only after its declared size fits the budget."""
        where = f"{self.path}/{name}".replace("//", "/")
        obj = self._member(name)
        if self._is_group(obj):
            raise ConvertError(f"{where}: expected a dataset, found a group")
        try:
            shape = tuple(int(d) for d in obj.shape)
            dtype = np.dtype(obj.dtype)
        except (TypeError, ValueError) as exc:
            raise ConvertError(f"{where}: unreadable shape or dtype ({exc})") from None
        if dtype.kind not in _NUMERIC:
            raise ConvertError(f"{where}: dtype {dtype} is not numeric")
        if any(d < 0 for d in shape) or len(shape) > 8:
            raise ConvertError(f"{where}: absurd shape {shape}")
        # math.prod on Python ints cannot overflow, unlike numpy's product.
        self._budget.take(math.prod(shape) * dtype.itemsize, f"{where} (shape {shape}, {dtype})")
        try:
            value = np.asarray(obj[()])
        except Exception as exc:  # either library, many failure types: all mean "unreadable"
            raise ConvertError(f"{where}: could not be read ({type(exc).__name__}: {exc})") from None
        if value.shape != shape:
            raise ConvertError(f"{where}: read shape {value.shape}, declared {shape}")
        return value

    def attr_text(self, name: str) -> str | None:
        """A string attribute (bytes decoded as UTF-8), or None when it is absent."""
        if name not in self._node.attrs:
            return None
        return _text(self._node.attrs[name], f"{self.path} attribute {name!r}")

    def attr_texts(self, name: str) -> list[str] | None:
        """A list-of-strings attribute (Keras's ``weight_names``), or None when it is absent."""
        if name not in self._node.attrs:
            return None
        raw = np.asarray(self._node.attrs[name])
        if raw.size == 0:
            return []  # h5py reads an empty string list back as an empty float64 array
        return [_text(x, f"{self.path} attribute {name!r}") for x in raw.reshape(-1)]


def _text(value: Any, where: str) -> str:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ConvertError(f"{where}: not UTF-8 text") from None
    if isinstance(value, str):
        return value
    raise ConvertError(f"{where}: expected text, found {type(value).__name__}")


def available_reader() -> Reader:
    """h5py when it imports, else pyfive (Pyodide), else :class:`ConvertError`.

    >>> available_reader() in READERS
    True
    """
    for reader in READERS:
        try:
            __import__(reader)
        except ImportError:
            continue
        return reader
    raise ConvertError("reading HDF5 needs h5py or pyfive; install one (pyfive is pure Python)")


async def load_reader() -> Reader:
    """:func:`available_reader`, after loading pyfive into Pyodide when no reader is there yet.

    The page does not load pyfive at boot (most visits never read HDF5); this loads it from
    the site's own lock (``vendor/pyodide/pyodide-lock.json``, sha256-checked by Pyodide) the
    first time a Keras file arrives. On the host it only looks.

    >>> import asyncio
    >>> asyncio.run(load_reader()) in READERS
    True
    """
    try:
        return available_reader()
    except ConvertError:
        if not IN_BROWSER:
            raise
    try:
        await pyodide_js.loadPackage("pyfive")  # checks the sha256 the lock pins
    except Exception as exc:  # a JsException (offline, blocked): the reason is in its message
        raise ConvertError(f"could not load pyfive (the HDF5 reader) into Pyodide: {exc}") from None
    importlib.invalidate_caches()  # the wheel was unpacked after this interpreter listed site-packages
    return available_reader()


def open_hdf5(data: bytes, reader: Reader | None = None, limit_bytes: int = 1 << 30) -> Group:
    """The root group of the HDF5 file ``data``; datasets read from it share ``limit_bytes``.

    >>> open_hdf5(b"not hdf5", reader="h5py")
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: not an HDF5 file (h5py: OSError)
    """
    reader = reader or available_reader()
    if not data.startswith(b"\x89HDF\r\n\x1a\n"):
        # Both libraries also look for the signature at 512, 1024...; Keras never writes a user block.
        raise ConvertError(f"not an HDF5 file ({reader}: OSError)")
    try:
        if reader == "h5py":
            import h5py

            node: Any = h5py.File(io.BytesIO(data), "r")
        else:
            import pyfive

            node = pyfive.File(io.BytesIO(data))
    except Exception as exc:  # a corrupt file fails in many ways inside either library
        raise ConvertError(f"not a readable HDF5 file ({reader}: {type(exc).__name__}: {exc})") from None
    return Group(node, "/", reader, Budget(limit_bytes))
