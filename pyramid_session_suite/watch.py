"""Watching the session store: what metrics and traces see.

Each load of a Redis session (its ``GETEX``) and each save of a request's
sessions (one round trip per client) is an :class:`Operation`. Watchers
registered on the application's registry (:func:`add_watcher`, as
``pyramid_session_suite.metrics`` and ``.tracing`` do) are told when one
begins and ends. Without watchers, an operation costs one dictionary
lookup.
"""

import time

#: registry key: the watchers of the application
WATCHERS_KEY = 'session_suite.watchers'

#: attribute of a Redis error: the namespace whose operation raised it
NAMESPACE_ATTR = 'session_suite_namespace'


class Operation:
    """One ``load`` or ``save`` of ``namespace``: when it ends, ``seconds``
    it took, ``size`` (bytes read or written), ``round_trips`` and
    ``outcome`` (``hit``, ``miss`` or ``ended`` for a load, ``ok`` for a
    save, ``error`` with ``error`` the exception)."""

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

    def __init__(self, namespace, name):
        self.namespace = namespace
        self.name = name
        self.seconds = 0.0
        self.size = 0
        self.round_trips = 1
        self.outcome = None
        self.error = None


def add_watcher(config, watcher):
    """Tell ``watcher`` about every operation of the application
    (configuration time): ``watcher.begin(operation)`` returns a token,
    ``watcher.end(operation, token)`` gets it back; ``watcher.created(
    namespace)``, if it has one, is called for each new session."""
    config.registry.setdefault(WATCHERS_KEY, []).append(watcher)


def watchers_of(registry):
    """The watchers of ``registry`` (an empty tuple when none)."""
    return registry.get(WATCHERS_KEY, ()) if registry is not None else ()


def begin(watchers, namespace, name):
    operation = Operation(namespace, name)
    operation.tokens = [watcher.begin(operation) for watcher in watchers]
    operation.started = time.perf_counter()
    return operation


def end(watchers, operation, outcome='ok', size=0, error=None):
    operation.seconds = time.perf_counter() - operation.started
    operation.outcome = 'error' if error is not None else outcome
    operation.size = size
    operation.error = error
    for watcher, token in zip(watchers, operation.tokens, strict=True):
        watcher.end(operation, token)


def created(watchers, namespace):
    """A new session of ``namespace`` was stored (a first write, or a
    login's new id): watchers with a ``created(namespace)`` method are
    told."""
    for watcher in watchers:
        tell = getattr(watcher, 'created', None)
        if tell is not None:
            tell(namespace)


def blame(exc, namespace):
    """Note on a Redis error the namespace whose operation raised it."""
    if getattr(exc, NAMESPACE_ATTR, None) is None:
        try:
            setattr(exc, NAMESPACE_ATTR, namespace)
        except AttributeError:  # pragma: no cover - exceptions take them
            pass
