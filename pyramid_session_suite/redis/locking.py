"""Requests of one session that run one at a time: the ``session_lock``
view option.

::

    config.add_view(add_to_cart, route_name='cart', session_lock='main')

    @view_config(route_name='counter', session_lock='main')
    def counter(request): ...

A request of such a view takes a lock in Redis for its session of that
namespace before the view runs, reads the session once it holds it, and
gives it back in the round trip that writes the session: a
read-modify-write of one session (a counter, a cart total) sees the
previous request's result. The lock has a TTL (the namespace's
``lock_timeout``), so a worker that dies holding it blocks nobody for
longer; a request that cannot get it within ``lock_wait`` is answered
409 with ``Retry-After`` and changes nothing. Requests to other views are
never blocked, and a request without a session has nothing to lock.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import math
import secrets
import time
from typing import TYPE_CHECKING, Any
from pyramid.httpexceptions import HTTPConflict
import redis

from .._namespaces import redis_factory
from .._request_cookies import readable_cookies
from ..interfaces import ISessionMultiManagerConfig
from ._persist import LOADED_SESSIONS_KEY, Command, queue_command
from .login_records import redis_key

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response

    from . import RedisSessionFactory

    #: a view as a view deriver sees it
    _View = Callable[[Any, Request], Response]

log = logging.getLogger(__name__)

#: registry key: ``(namespace, view description)`` of the locked views
LOCKED_VIEWS_KEY = 'session_suite.locked_views'

#: KEYS lock; ARGV token -> 1 released | 0 not ours (expired, taken)
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: the first pause between two attempts, and the longest (seconds)
FIRST_PAUSE = 0.005
LONGEST_PAUSE = 0.05


class SessionLocked(HTTPConflict):
    """Another request of the same session held its lock for longer than
    the namespace's ``lock_wait``."""

    explanation = (
        'Another request of this session is in progress; retry shortly.'
    )


def lock_key(session_id: str) -> str:
    """The Redis key of the lock of ``session_id``: in the session key's
    hash slot, so that on a cluster it is released in order with the
    session's write."""
    key = redis_key(session_id)
    if '{' in key:
        return key + ':lock'
    return '{' + key + '}:lock'


def session_lock_deriver(view: _View, info: Any) -> _View:
    """The ``session_lock`` view option: run the requests of one session to
    this view one at a time for the namespace it names."""
    namespace = info.options.get('session_lock')
    if namespace is None:
        return view
    registry = info.registry
    registry.setdefault(LOCKED_VIEWS_KEY, []).append(
        (namespace, info.original_view)
    )
    manager_config = registry.getUtility(ISessionMultiManagerConfig)

    def locked_view(context: Any, request: Request) -> Response:
        factory = manager_config.get_namespace_config(namespace)
        cookie = readable_cookies(request).get(factory.cookie_name)
        session_id = cookie and factory.session_id_from_cookie(cookie)
        if not session_id:
            return view(context, request)
        lock = SessionLock(factory, session_id)
        lock.acquire()
        request.add_finished_callback(lock.release_if_held)
        queue_command(request, factory.redis, lock.release_command())
        _reload(request, factory)
        return view(context, request)

    return locked_view


session_lock_deriver.options = ('session_lock',)  # type: ignore[attr-defined]


class SessionLock:
    """The lock of one session of a Redis namespace, for one request."""

    def __init__(
        self,
        factory: RedisSessionFactory,
        session_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = factory.redis
        self.key = lock_key(session_id)
        self.timeout_ms = max(1, int(factory.lock_timeout * 1000))
        self.wait = factory.lock_wait
        self.token = secrets.token_urlsafe(16)
        self.held = False
        self.clock = clock

    def acquire(self) -> None:
        """Take the lock, waiting up to ``lock_wait`` seconds; raise
        :class:`SessionLocked` if it stays taken."""
        deadline = self.clock() + self.wait
        pause = FIRST_PAUSE
        while not self.client.set(
            self.key, self.token, nx=True, px=self.timeout_ms
        ):
            left = deadline - self.clock()
            if left <= 0:
                raise self.locked()
            time.sleep(min(pause, left))
            pause = min(pause * 2, LONGEST_PAUSE)
        self.held = True

    def locked(self) -> SessionLocked:
        """The 409: ``Retry-After`` is the time the lock is still held, in
        whole seconds rounded up but never more than the lock's own
        timeout (0 when it was given back meanwhile)."""
        pttl = max(0, self.client.pttl(self.key))
        longest = self.timeout_ms // 1000
        retry_after = min(math.ceil(pttl / 1000), longest)
        return SessionLocked(headers={'Retry-After': str(retry_after)})

    def release_command(self) -> Command:
        """The :class:`.persist.Command` that gives the lock back, sent
        after the session's write in the same round trip."""

        def released(reply: Any) -> None:
            self.held = False

        return Command.eval(RELEASE, (self.key,), (self.token,), released)

    def release_if_held(self, request: Request | None = None) -> None:
        """Give the lock back now, if the write did not (an error before
        it); a store that fails here lets the lock expire."""
        if not self.held:
            return
        try:
            self.release_command().run(self.client)
        except redis.RedisError:
            log.warning('session lock %s left to expire', self.key)


def _reload(request: Request, factory: RedisSessionFactory) -> None:
    """A session of the namespace loaded before the lock was held (by a
    tween) is read again, so that the view sees the latest data."""
    for session in request.environ.get(LOADED_SESSIONS_KEY, ()):
        if session.cookie_name == factory.cookie_name:
            session.reload()


def check_locked_views(registry: Registry) -> None:
    """Every ``session_lock`` names a Redis namespace (after every view and
    namespace is registered)."""
    manager_config = registry.getUtility(ISessionMultiManagerConfig)
    for namespace, view in registry.get(LOCKED_VIEWS_KEY, ()):
        name = getattr(view, '__qualname__', repr(view))
        redis_factory(
            manager_config,
            namespace,
            f'session_lock={namespace!r} of view {name}',
            ': only Redis sessions can be locked',
        )


def includeme(config: Configurator) -> None:
    """The ``session_lock`` view option (part of the core)."""
    config.add_view_deriver(session_lock_deriver)
    from ..config import LATE

    config.action(
        ('session_suite', 'session_lock'),
        lambda: check_locked_views(config.registry),
        order=LATE,
    )
