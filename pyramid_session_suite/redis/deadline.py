"""The Redis deadline of a request.

However many round trips a request makes (a read, a login's script, the
write, a second namespace), it waits on Redis about as long as one
command may in all: ``socket_timeout × (redis_retries + 1)``, and never
more than half a ``socket_timeout`` beyond. The clients
made by :func:`.clients.redis_client` charge the time each request spends
in their connections to that request; a command that could not finish
within what is left is not sent, and raises :class:`redis.TimeoutError`
(a 503, like any other). Outside a request (scripts, tests) nothing is
charged.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import TYPE_CHECKING, Any
from pyramid.threadlocal import manager
import redis

if TYPE_CHECKING:
    from pyramid.request import Request

    class _Connection:
        """What :class:`_Bounded` needs of the Redis connection class it is
        mixed into."""

        _sock: Any
        socket_timeout: float | None
        socket_connect_timeout: float | None

        def connect(self) -> None: ...

        def send_packed_command(
            self, command: Any, check_health: bool = True
        ) -> None: ...

        def read_response(self, *args: Any, **kwargs: Any) -> Any: ...

else:
    _Connection = object

_local = threading.local()


class _Spent:
    __slots__ = ('request', 'seconds')

    def __init__(self, request: Request) -> None:
        self.request = request
        self.seconds = 0.0


def _spent() -> _Spent | None:
    """What the current request spent waiting on Redis, or ``None``
    outside a request."""
    request = manager.get()['request']
    if request is None:
        return None
    spent: _Spent | None = getattr(_local, 'spent', None)
    if spent is None or spent.request is not request:
        spent = _local.spent = _Spent(request)
    return spent


def spent_seconds() -> float:
    """The seconds the current request waited on Redis so far."""
    spent = _spent()
    return 0.0 if spent is None else spent.seconds


class _Bounded(_Connection):
    """A Redis connection that charges its time to the current request
    and sends nothing past the request's deadline (``bound`` seconds)."""

    bound: float | None = None

    def _refuse(self, spent: _Spent, timeout: float | None) -> None:
        assert self.bound is not None  # set by bounded()
        # half a timeout of slack: a retry after a timeout is always sent
        if (
            spent.seconds + (timeout or 0)
            > self.bound + (self.socket_timeout or 0) / 2
        ):
            raise redis.TimeoutError(
                f'this request waited {spent.seconds:.2f} s on Redis '
                f'already (deadline {self.bound:g} s)'
            )

    def connect(self) -> None:
        spent = _spent()
        if spent is None or self._sock:
            return super().connect()
        if spent.seconds:
            # not the request's first connect: it must fit in what is left
            self._refuse(spent, self.socket_connect_timeout)
        start = time.monotonic()
        try:
            return super().connect()
        finally:
            spent.seconds += time.monotonic() - start

    def send_packed_command(
        self, command: Any, check_health: bool = True
    ) -> None:
        spent = _spent()
        if spent is None:
            return super().send_packed_command(command, check_health)
        if not self._sock:
            self.connect()  # charged on its own
        self._refuse(spent, self.socket_timeout)
        start = time.monotonic()
        try:
            return super().send_packed_command(command, check_health)
        finally:
            spent.seconds += time.monotonic() - start

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        spent = _spent()
        if spent is None:
            return super().read_response(*args, **kwargs)
        start = time.monotonic()
        try:
            return super().read_response(*args, **kwargs)
        finally:
            spent.seconds += time.monotonic() - start


@functools.cache
def bounded(connection_class: type[Any], bound: float) -> type[Any]:
    """``connection_class`` with a request deadline of ``bound`` seconds."""
    return type(
        connection_class.__name__,
        (_Bounded, connection_class),
        {'bound': bound, '__module__': __name__},
    )
