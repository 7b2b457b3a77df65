"""One lifecycle for everything that holds TF.js memory: disposed once, checked in one place, ``async with``.

As httpx's client has it: a state to read (``disposed``), ``dispose()`` safe to call twice, and a clear
:class:`~pyapp.errors.DisposedError` when a disposed object is used again, ``async with`` included.
:class:`~pyapp.model.Model`, :class:`~pyapp.training.TrainableModel`,
:class:`~pyapp.classifier.ImageClassifier` and :class:`~pyapp.transfer.TransferClassifier` are each one.

Example::

    >>> class Buffer(Disposable):
    ...     released = 0
    ...     def _dispose(self):
    ...         self.released += 1
    ...     @property
    ...     def disposed(self):
    ...         return self.released > 0
    >>> buffer = Buffer()
    >>> buffer.dispose(); buffer.dispose(); buffer.released
    1
    >>> buffer._check_usable("async with")  # what ``async with buffer`` does first
    Traceback (most recent call last):
    ...
    pyapp.errors.DisposedError: async with: Buffer was disposed
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

from pyapp.errors import DisposedError


class Disposable(ABC):
    """Something that holds memory until :meth:`dispose`; an ``async with`` block disposes it on the way out."""

    @property
    @abstractmethod
    def disposed(self) -> bool:
        """Whether :meth:`dispose` has run (or begun: a model in training lets go after its batch)."""

    @abstractmethod
    def _dispose(self) -> None:
        """Release what the object holds and mark it disposed; called once, by :meth:`dispose`."""

    def _describe(self) -> str:
        """How errors name the object."""
        return type(self).__name__

    def _check_usable(self, what: str) -> None:
        """Raise :class:`DisposedError` naming ``what`` was attempted; subclasses add their own states."""
        if self.disposed:
            raise DisposedError(f"{what}: {self._describe()} was disposed")

    def dispose(self) -> None:
        """Free what the object holds; safe to call twice."""
        if not self.disposed:
            self._dispose()

    async def __aenter__(self) -> Self:
        self._check_usable("async with")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.dispose()
