"""Watching the session store: what metrics and traces see.

Each round trip to a Redis session store is an :class:`Operation`: the
load of a session (its ``GETEX``), the save of a request's sessions (one
round trip per client), a script of the user index (``login``, ``list``,
``revoke``, ``count``; ``forget``) and the claim of a cross-domain token
(``claim``). Watchers registered on the application's registry
(:func:`add_watcher`, as ``pyramid_session_suite.metrics`` and
``.tracing`` do) are told when one begins and ends. Without watchers, an
operation costs one lookup; a request pays only for the operations it
runs.
"""

from __future__ import annotations

from collections.abc import Sequence
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.registry import Registry
    from pyramid.request import Request

#: registry key: the watchers of the application
WATCHERS_KEY = 'session_suite.watchers'

#: attribute of a Redis error: the namespace whose operation raised it
NAMESPACE_ATTR = 'session_suite_namespace'


class Operation:
    """One operation ``name`` (``load``, ``save``, ``login``…) of
    ``namespace``: when it ends, ``seconds`` it took, ``size`` (bytes read
    or written), ``round_trips`` and ``outcome`` (``hit``, ``miss`` or
    ``ended`` for a load, ``ok`` for the others, ``error`` with ``error``
    the exception)."""

    __slots__ = (
        'namespace',
        'name',
        'started',
        'seconds',
        'size',
        'round_trips',
        'outcome',
        'error',
        'tokens',
    )

    namespace: str | None
    name: str
    started: float
    seconds: float
    size: int
    round_trips: int
    outcome: str | None
    error: BaseException | None
    tokens: list[object]

    def __init__(self, namespace: str | None, name: str) -> None:
        self.namespace = namespace
        self.name = name
        self.seconds = 0.0
        self.size = 0
        self.round_trips = 1
        self.outcome = None
        self.error = None


class Watcher(Protocol):
    """What :func:`add_watcher` takes (``created`` is optional)."""

    def begin(self, operation: Operation) -> object: ...

    def end(self, operation: Operation, token: Any) -> object: ...


def add_watcher(config: Configurator, watcher: Watcher) -> None:
    """Tell ``watcher`` about every operation of the application
    (configuration time): ``watcher.begin(operation)`` returns a token,
    ``watcher.end(operation, token)`` gets it back; ``watcher.created(
    namespace)``, if it has one, is called for each new session."""
    config.registry.setdefault(WATCHERS_KEY, []).append(watcher)


def watchers_of(registry: Registry | None) -> Sequence[Watcher]:
    """The watchers of ``registry`` (an empty tuple when none)."""
    if registry is None:
        return ()
    watchers: Sequence[Watcher] = registry.get(WATCHERS_KEY, ())
    return watchers


def begin(
    watchers: Sequence[Watcher], namespace: str | None, name: str
) -> Operation:
    operation = Operation(namespace, name)
    tokens = operation.tokens = []
    for watcher in watchers:  # (a loop: no frame of its own, unlike [...])
        tokens.append(watcher.begin(operation))
    operation.started = time.perf_counter()
    return operation


def end(
    watchers: Sequence[Watcher],
    operation: Operation,
    outcome: str = 'ok',
    size: int = 0,
    error: BaseException | None = None,
) -> None:
    operation.seconds = time.perf_counter() - operation.started
    operation.outcome = 'error' if error is not None else outcome
    operation.size = size
    operation.error = error
    for watcher, token in zip(watchers, operation.tokens, strict=True):
        watcher.end(operation, token)


def created(watchers: Sequence[Watcher], namespace: str | None) -> None:
    """A new session of ``namespace`` was stored (a first write, or a
    login's new id): watchers with a ``created(namespace)`` method are
    told."""
    for watcher in watchers:
        tell = getattr(watcher, 'created', None)
        if tell is not None:
            tell(namespace)


def notify(request: Request, event: object) -> None:
    """Send one of the suite's events: to the application's subscribers
    (``registry.notify``) and to the watchers that have an ``event(event)``
    method. Watchers hear the suite's events without subscribing, so an
    application with no subscriber of its own does not pay for Pyramid's
    per-request events."""
    registry = request.registry
    registry.notify(event)
    for watcher in registry.get(WATCHERS_KEY, ()):
        tell = getattr(watcher, 'event', None)
        if tell is not None:
            tell(event)


def blame(exc: BaseException, namespace: str | None) -> None:
    """Note on a Redis error the namespace whose operation raised it."""
    if getattr(exc, NAMESPACE_ATTR, None) is None:
        try:
            setattr(exc, NAMESPACE_ATTR, namespace)
        except AttributeError:  # pragma: no cover - exceptions take them
            pass
