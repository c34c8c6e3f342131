"""Watching the session store: what metrics and traces see.

Each round trip to a Redis session store is watched: the load of a
session (its ``GETEX``), the save of a request's sessions (one round trip
per client, an :class:`Operation` ``save``), a script of the user index
(``login``, ``list``, ``revoke``, ``count``; ``forget``) and the claim of a
cross-domain token (``claim``). Watchers registered on the application's
registry (:func:`add_watcher`, as ``pyramid_session_suite.metrics`` and
``.tracing`` do) are told when one has ended. Without watchers, an
operation costs one lookup; a request pays only for the operations it
runs, a read one call per watcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Protocol

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
    ``namespace``, after it ended: ``started`` (``time.perf_counter()``),
    ``seconds`` it took, ``size`` (bytes read or written), ``round_trips``
    and ``outcome`` (``ok``, or ``error`` with ``error`` the exception)."""

    __slots__ = (
        'namespace',
        'name',
        'started',
        'seconds',
        'size',
        'round_trips',
        'outcome',
        'error',
    )

    def __init__(
        self,
        namespace: str | None,
        name: str,
        started: float = 0.0,
        seconds: float = 0.0,
        size: int = 0,
        error: BaseException | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.started = started
        self.seconds = seconds
        self.size = size
        self.round_trips = 1
        self.outcome = 'ok' if error is None else 'error'
        self.error = error


class Watcher(Protocol):
    """What :func:`add_watcher` takes (``created`` and ``event`` are
    optional)."""

    def loaded(
        self,
        namespace: str | None,
        started: float,
        ended: float,
        outcome: str,
        size: int,
    ) -> object:
        """A session of ``namespace`` was read from ``started`` to
        ``ended`` (``time.perf_counter()``): ``outcome`` ``hit`` (``size``
        bytes), ``miss`` or ``ended``. The one call of a read request."""

    def observe(self, operation: Operation) -> object:
        """Any other operation ended (a load that failed, ``load`` with
        ``outcome`` ``error``)."""


def add_watcher(config: Configurator, watcher: Watcher) -> None:
    """Tell ``watcher`` about every operation of the application
    (configuration time): ``watcher.loaded(...)`` about each load of a
    session, ``watcher.observe(operation)`` about the other operations;
    ``watcher.created(namespace)``, if it has one, about each new session,
    ``watcher.event(event)`` about each of the suite's events. Watchers are
    told after the fact, so that a load pays one call per watcher."""
    config.registry.setdefault(WATCHERS_KEY, []).append(watcher)


def watchers_of(registry: Registry | None) -> Sequence[Watcher]:
    """The watchers of ``registry`` (an empty tuple when none)."""
    if registry is None:
        return ()
    watchers: Sequence[Watcher] = registry.get(WATCHERS_KEY, ())
    return watchers


def done(
    watchers: Sequence[Watcher],
    namespace: str | None,
    name: str,
    started: float,
    size: int = 0,
    error: BaseException | None = None,
) -> None:
    """Tell ``watchers`` that the operation ``name`` of ``namespace``,
    begun at ``started`` (``time.perf_counter()``), ended now."""
    operation = Operation(
        namespace, name, started, perf_counter() - started, size, error
    )
    for watcher in watchers:
        watcher.observe(operation)


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
