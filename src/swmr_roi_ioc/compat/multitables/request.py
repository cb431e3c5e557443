"""Requests (futures of a result in a stage) and RequestPool."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ._stage import Stage

__all__ = ["Request", "RequestPool"]

_T = TypeVar("_T")


class Request:
    """The future result of ``reader.request(op, stage)``.

    ``get()`` returns a copy; ``get_unsafe()`` (a context manager) the array
    in the shared stage itself, valid inside the ``with``; ``get_proxy()``
    the same behind a proxy that refuses use after the ``with``;
    ``get_direct(fn)`` returns ``fn(array)``. The stage is free again after
    any of them.
    """

    def __init__(self, stage: Stage) -> None:
        self._stage = stage
        self._done = threading.Event()
        self._dtype: np.dtype[Any] | None = None
        self._shape: tuple[int, ...] = ()
        self._error: BaseException | None = None
        self._consumed = False

    def _finish(self, dtype: Any, shape: Any, error: BaseException | None) -> None:
        self._dtype = None if dtype is None else np.dtype(dtype)
        self._shape = tuple(shape or ())
        self._error = error
        self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def _view(self) -> NDArray[Any]:
        self._done.wait()
        if self._error is not None:
            self._release()
            raise self._error
        assert self._dtype is not None
        return np.ndarray(self._shape, dtype=self._dtype, buffer=self._stage.buf)

    def _release(self) -> None:
        # the first use frees the stage; the result stays readable (as in
        # multitables) until another request reuses the stage
        if not self._consumed:
            self._consumed = True
            self._stage.release()

    @contextlib.contextmanager
    def get_unsafe(self) -> Generator[NDArray[Any], None, None]:
        view = self._view()
        try:
            yield view
        finally:
            del view
            self._release()

    @contextlib.contextmanager
    def get_proxy(self) -> Generator[_Proxy, None, None]:
        with self.get_unsafe() as view:
            proxy = _Proxy(view)
            try:
                yield proxy
            finally:
                proxy._array = None  # noqa: SLF001 - invalidate the proxy

    def get_direct(self, action: Callable[[NDArray[Any]], _T]) -> _T:
        with self.get_unsafe() as view:
            return action(view)

    def get(self) -> NDArray[Any]:
        with self.get_unsafe() as view:
            return view.copy()


class _Proxy:
    """Forwards to the stage's array while the ``with`` lasts."""

    def __init__(self, array: NDArray[Any]) -> None:
        self._array: NDArray[Any] | None = array

    def _get(self) -> NDArray[Any]:
        if self._array is None:
            raise RuntimeError("the proxy was used after its 'with' block ended")
        return self._array

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        return np.asarray(self._get(), dtype=dtype)

    def __getitem__(self, key: Any) -> Any:
        return self._get()[key]

    def __len__(self) -> int:
        return len(self._get())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


class RequestPool:
    """Requests in the order they were added; ``next()`` waits for the next one."""

    def __init__(self) -> None:
        self._requests: collections.deque[Request] = collections.deque()
        self._cond = threading.Condition()

    def add(self, req: Request) -> None:
        with self._cond:
            self._requests.append(req)
            self._cond.notify()

    def next(self) -> Request:
        with self._cond:
            while not self._requests:
                self._cond.wait()
            return self._requests.popleft()

    def __len__(self) -> int:
        return len(self._requests)
