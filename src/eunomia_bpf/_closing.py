"""``Closing``: every kernel resource, server and client has an idempotent ``close()``;
a ``with`` block closes it (house rule 4)."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

__all__ = ["Closing"]


class Closing(abc.ABC):
    """Mixin: ``with resource:`` calls ``resource.close()`` on the way out."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the resource; calling it again does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
