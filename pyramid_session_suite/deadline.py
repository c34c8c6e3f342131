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

import functools
import threading
import time
from pyramid.threadlocal import manager
import redis

_local = threading.local()


class _Spent:
    __slots__ = ('request', 'seconds')

    def __init__(self, request):
        self.request = request
        self.seconds = 0.0


def _spent():
    """What the current request spent waiting on Redis, or ``None``
    outside a request."""
    request = manager.get()['request']
    if request is None:
        return None
    spent = getattr(_local, 'spent', None)
    if spent is None or spent.request is not request:
        spent = _local.spent = _Spent(request)
    return spent


def spent_seconds():
    """The seconds the current request waited on Redis so far."""
    spent = _spent()
    return 0.0 if spent is None else spent.seconds


class _Bounded:
    """A Redis connection that charges its time to the current request
    and sends nothing past the request's deadline (``bound`` seconds)."""

    bound = None

    def _refuse(self, spent, timeout):
        # half a timeout of slack: a retry after a timeout is always sent
        if (
            spent.seconds + (timeout or 0)
            > self.bound + (self.socket_timeout or 0) / 2
        ):
            raise redis.TimeoutError(
                f'this request waited {spent.seconds:.2f} s on Redis '
                f'already (deadline {self.bound:g} s)'
            )

    def connect(self):
        spent = _spent()
        if spent is None or self._sock:
            return super().connect()
        self._refuse(spent, 0)  # only once the time is up
        start = time.monotonic()
        try:
            return super().connect()
        finally:
            spent.seconds += time.monotonic() - start

    def send_packed_command(self, command, check_health=True):
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

    def read_response(self, *args, **kwargs):
        spent = _spent()
        if spent is None:
            return super().read_response(*args, **kwargs)
        start = time.monotonic()
        try:
            return super().read_response(*args, **kwargs)
        finally:
            spent.seconds += time.monotonic() - start


@functools.cache
def bounded(connection_class, bound):
    """``connection_class`` with a request deadline of ``bound`` seconds."""
    return type(
        connection_class.__name__,
        (_Bounded, connection_class),
        {'bound': bound, '__module__': __name__},
    )
