"""Writing the Redis sessions of a request: at the end of the tween chain,
in one round trip per Redis client, or not at all.

The persist tween sits under Pyramid's exception view tween. When the view
returns (or raises), features get a last look (``before_flush`` hooks, e.g.
the user index), then every changed session and every queued command is
sent, one pipeline per client. A Redis failure raises, so the exception
view answers 503 and no cookie is set: nothing is half-written, nothing
silently lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
import functools
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar
from pyramid.httpexceptions import HTTPException, HTTPServiceUnavailable
import redis

from .. import watch
from ..events import StoreUnavailable
from ..watch import NAMESPACE_ATTR, notify, watchers_of

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response

    from ..watch import Watcher
    from .clients import RedisClient

log = logging.getLogger(__name__)

T = TypeVar('T')

#: environ key: the Redis sessions loaded during the request
LOADED_SESSIONS_KEY = 'session_suite.redis_sessions'

#: environ key: extra ``(client, Command)`` pairs to send with the sessions
QUEUED_KEY = 'session_suite.redis_queued'

#: registry key: ``hook(request, create)`` callables run before the flush
BEFORE_FLUSH_KEY = 'session_suite.before_flush'

#: Redis errors that mean "the session store is unavailable right now":
#: unreachable, too slow, refusing writes, loading, out of memory, a
#: reply that is not RESP, a cluster that is down or moving
UNAVAILABLE_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.MasterDownError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.AskError,
    redis.exceptions.MovedError,
    redis.exceptions.InvalidResponse,
    redis.exceptions.AuthenticationError,
    redis.exceptions.NoPermissionError,
    redis.exceptions.RedisClusterUnreachableError,
)

#: error codes of replies that mean the same, when the client knows no
#: class of its own for them (``BUSY``: a script runs too long;
#: ``MISCONF``: snapshots fail; ``NOREPLICAS``: too few replicas to write)
UNAVAILABLE_CODES = frozenset(
    {
        'BUSY',
        'CLUSTERDOWN',
        'LOADING',
        'MASTERDOWN',
        'MISCONF',
        'NOREPLICAS',
        'OOM',
        'READONLY',
        'TRYAGAIN',
        'UNBLOCKED',
    }
)

#: any error of the Redis client
REDIS_ERRORS = (redis.RedisError, *UNAVAILABLE_ERRORS)


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store cannot serve now (a 503), rather than
    that a command of ours is wrong (a bug: it stays an error)."""
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return True
    if isinstance(exc, redis.ResponseError):
        code = str(exc).split(' ', 1)[0]
        return code in UNAVAILABLE_CODES
    return False


class Command:
    """One Redis command and what to do with its reply."""

    __slots__ = ('name', 'args', 'options', 'on_reply')

    #: the method of the client (or pipeline) that sends it
    name: str
    args: Sequence[Any]
    options: Mapping[str, Any]
    #: called with the reply (not with an error: that is raised)
    on_reply: Callable[[Any], object] | None

    def __init__(
        self,
        name: str,
        args: Sequence[Any] = (),
        options: Mapping[str, Any] | None = None,
        on_reply: Callable[[Any], object] | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.options = options or {}
        self.on_reply = on_reply

    @classmethod
    def eval(
        cls,
        script: str,
        keys: Sequence[str],
        args: Sequence[Any],
        on_reply: Callable[[Any], object] | None = None,
    ) -> Command:
        """``EVAL`` of ``script``; sent with ``execute_command`` so that it
        can be queued in a Redis Cluster pipeline too (routed by its
        keys)."""
        return cls(
            'execute_command',
            ('EVAL', script, len(keys), *keys, *args),
            None,
            on_reply,
        )

    def send(self, target: Any) -> Any:
        return getattr(target, self.name)(*self.args, **self.options)

    def reply(self, value: Any) -> None:
        if isinstance(value, Exception):
            raise value
        if self.on_reply is not None:
            self.on_reply(value)

    def run(self, client: RedisClient) -> None:
        """Send the command now and handle its reply."""
        self.reply(self.send(client))


def run_commands(client: RedisClient, commands: Sequence[Command]) -> None:
    """Send ``commands`` to ``client`` in one round trip; handle replies."""
    if len(commands) == 1:
        commands[0].run(client)
        return
    pipe = client.pipeline(transaction=False)
    for command in commands:
        command.send(pipe)
    replies = pipe.execute(raise_on_error=False)
    for command, value in zip(commands, replies, strict=True):
        command.reply(value)


def watched(
    watchers: Sequence[Watcher],
    namespace: str | None,
    name: str,
    call: Callable[[], T],
    size: int = 0,
) -> T:
    """Return ``call()``, a round trip to the Redis store of ``namespace``
    that ``watchers`` see as the operation ``name`` (``size``: bytes
    written); a Redis error names the namespace (for the metrics of the
    503 it becomes). Without watchers, only the call."""
    started = perf_counter() if watchers else 0.0
    try:
        result = call()
    except REDIS_ERRORS as exc:
        watch.blame(exc, namespace)
        if watchers:
            watch.done(watchers, namespace, name, started, size, exc)
        raise
    if watchers:
        watch.done(watchers, namespace, name, started, size)
    return result


def queue_command(
    request: Request, client: RedisClient, command: Command
) -> None:
    """Send ``command`` to ``client`` with the request's session writes."""
    request.environ.setdefault(QUEUED_KEY, []).append((client, command))


def add_before_flush(
    config: Configurator, hook: Callable[[Request, bool], object]
) -> None:
    """Run ``hook(request, create)`` before each flush (configuration
    time)."""
    config.registry.setdefault(BEFORE_FLUSH_KEY, []).append(hook)


def persist_tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Write the request's changed Redis sessions before the response leaves
    the tween chain, so that a failed write becomes an error response
    instead of a lost write."""
    hooks: tuple[Callable[[Request, bool], object], ...] = tuple(
        registry.get(BEFORE_FLUSH_KEY, ())
    )

    def persist_tween(request: Request) -> Response:
        try:
            response = handler(request)
        except REDIS_ERRORS:
            discard_sessions(request)
            raise
        except Exception as exc:
            status = exc.code if isinstance(exc, HTTPException) else 500
            flush_sessions(request, status < 400, hooks)
            raise
        environ = request.environ
        if hooks or LOADED_SESSIONS_KEY in environ or QUEUED_KEY in environ:
            flush_sessions(request, response.status_code < 400, hooks)
        return response

    return persist_tween


def flush_sessions(
    request: Request,
    create: bool = True,
    hooks: Iterable[Callable[[Request, bool], object]] = (),
) -> None:
    """Write the changed Redis sessions and queued commands of ``request``,
    one round trip per client. New sessions are created only when
    ``create`` is true: an error response creates no session."""
    environ = request.environ
    namespace = None  # of the round trip in flight
    try:
        for hook in hooks:
            hook(request, create)
        batches: dict[int, tuple[RedisClient, str | None, list[Command]]]
        batches = {}
        for session in environ.get(LOADED_SESSIONS_KEY, ()):
            commands = session.flush_commands(create)
            if commands:
                batch = batches.setdefault(
                    id(session.redis),
                    (session.redis, getattr(session, 'namespace', None), []),
                )
                batch[2].extend(commands)
        for client, command in environ.pop(QUEUED_KEY, ()):
            batches.setdefault(id(client), (client, None, []))[2].append(
                command
            )
        watchers = watchers_of(request.registry)
        for client, namespace, commands in batches.values():
            watched(
                watchers,
                namespace,
                'save',
                functools.partial(run_commands, client, commands),
                _written(commands) if watchers else 0,
            )
    except REDIS_ERRORS as exc:
        watch.blame(exc, namespace)
        discard_sessions(request)
        raise


def _written(commands: Iterable[Command]) -> int:
    """About how many bytes ``commands`` sent: their bytes arguments."""
    return sum(
        len(arg)
        for command in commands
        for arg in command.args
        if isinstance(arg, bytes)
    )


def discard_sessions(request: Request) -> None:
    """Drop the pending changes of the request's Redis sessions."""
    request.environ.pop(QUEUED_KEY, None)
    for session in request.environ.get(LOADED_SESSIONS_KEY, ()):
        session.__dict__.pop('pending_deletes', None)
        state = session.__dict__.get('_session_state')
        if state is not None:
            state.dont_persist = state.dont_refresh = True


def session_store_unavailable(
    exc: BaseException, request: Request
) -> Response:
    """Exception view of Redis errors: the session store is down, too slow
    or refusing writes (a 503 with ``Retry-After``); any other error of the
    client (a command of ours that Redis rejects) is raised again."""
    if not store_unavailable(exc):
        raise exc
    notify(
        request,
        StoreUnavailable(request, exc, getattr(exc, NAMESPACE_ATTR, None)),
    )
    log.warning(
        'session store unavailable: %s.%s: %s',
        type(exc).__module__,
        type(exc).__name__,
        exc,
    )
    return HTTPServiceUnavailable(
        'The session store is unavailable; please retry shortly.',
        headers={'Retry-After': '1'},
    )
