"""Prometheus metrics of the sessions and their store:
``config.include('pyramid_session_suite.metrics')`` (the ``metrics``
extra: ``prometheus_client``).

========================================== ========= =================
metric                                     kind      labels
========================================== ========= =================
``session_suite_sessions_created_total``   counter   namespace
``session_suite_sessions_ended_total``     counter   namespace, reason
``session_suite_store_errors_total``       counter   namespace, error
``session_suite_unavailable_total``        counter   namespace
``session_suite_logins_total``             counter   result
``session_suite_crossdomain_tokens_total`` counter   result, reason
``session_suite_load_misses_total``        counter   namespace, outcome
``session_suite_store_seconds``            histogram namespace, operation
``session_suite_payload_bytes``            histogram namespace
========================================== ========= =================

``session_suite_store_seconds`` times each round trip to a session store,
by ``operation``: ``load`` (a session's ``GETEX``), ``save`` (a request's
writes, one round trip per client), the user index's ``login`` (its
registration of a login, admitted or refused, or of the new id of
``credentials_changed()``), ``list``, ``revoke`` (logouts, revocations,
the policy's timeouts, ``credentials_changed()``), ``count`` and
``forget`` (the index entry of a session that changed users), and the
cross-domain token ``claim``. A request that runs none of them pays
nothing for them.

``session_suite_payload_bytes`` is the size of each session loaded: its
count is the number of loads that found a session; those that found none
are ``session_suite_load_misses_total`` (``miss``: expired, evicted or
never stored; ``ended``: logged out, revoked, displaced…), those that
failed ``session_suite_store_errors_total``.

A load costs the append of its observation to a list: the histograms are
counted in batches (:class:`Pending`), when the registry is scraped, at
least once a second while sessions are loaded, and when the process
exits. A scrape in ``prometheus_client``'s multiprocess mode, which reads
the workers' files, sees a busy worker's observations within a second
(an idle worker's last ones at its next load). Counters count at once.

They are registered in ``prometheus_client``'s default registry, or in the
``CollectorRegistry`` named by ``session_suite.metrics.registry`` (a dotted
name, or the object itself in the settings). Several applications of one
process share the collectors of their registry: their counts add up.

Every label takes few values: namespaces, reasons, outcomes and Redis
error class names, never a user or a session (``unknown`` is the namespace
of an error or a 503 whose namespace is not known). Logins count when the
user index admits or refuses one; ``credentials_changed()`` is not a
login. Accepted tokens count by what became of the site's session:
``adopted``, ``replaced`` or ``kept``. The application exposes them as it
exposes its other metrics (a ``/metrics`` view, ``prometheus_client``'s
own server, multiprocess mode under gunicorn: see the README).
"""

from __future__ import annotations

import atexit
from bisect import bisect_left
from collections.abc import Sequence
import threading
from time import perf_counter
from typing import TYPE_CHECKING, Any
import weakref
from pyramid.path import DottedNameResolver

from ._settings import PREFIX, parse_settings
from .events import (
    LoginRefused,
    SessionRegistered,
    SessionRevoked,
    StoreUnavailable,
    TokenAccepted,
    TokenRejected,
)
from .interfaces import IUserIndex
from .watch import add_watcher

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from pyramid.config import Configurator

    from .watch import Operation

SETTINGS_PREFIX = PREFIX + 'metrics.'

#: the label of a namespace that is not known
UNKNOWN = 'unknown'

#: ``session_suite_store_seconds``: one Redis round trip on loopback is
#: about 0.1 ms, a slow network or a busy server some milliseconds, a
#: timeout (2 s by default) the last buckets
SECONDS_BUCKETS = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

#: ``session_suite_payload_bytes``: a session of a few keys is 100–300
#: bytes; past some kilobytes it slows every request
BYTES_BUCKETS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)

#: the attribute set on a Redis error once counted (by the watcher or the
#: 503): one error, one count
COUNTED_ATTR = 'session_suite_counted'


def as_object(value: Any) -> Any:
    """A dotted name (``package.module.attribute``) resolved; an object as
    it is; empty: ``None``."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            return DottedNameResolver().resolve(value)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f'cannot import {value!r}: {exc}') from None
    return value


def as_registry(value: Any) -> Any:
    """A ``prometheus_client.CollectorRegistry``, or its dotted name."""
    registry = as_object(value)
    if registry is not None and not hasattr(registry, 'register'):
        raise ValueError(f'{value!r} is not a CollectorRegistry')
    return registry


METRICS_SETTINGS = (('registry', as_registry, None),)


class Collectors:
    """The metrics of one ``CollectorRegistry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Histogram

        #: the observations of the histograms not counted yet; registered
        #: first, so that a scrape counts them before it reads the
        #: histograms
        self.pending = Pending(self)
        registry.register(self.pending)

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.created = counter(
            'session_suite_sessions_created_total',
            'Sessions stored for the first time (new visitors, logins).',
            'namespace',
        )
        self.ended = counter(
            'session_suite_sessions_ended_total',
            'Sessions ended, by reason (logout, revoked, displaced, '
            'expired, admin, operator, credentials...).',
            'namespace',
            'reason',
        )
        self.errors = counter(
            'session_suite_store_errors_total',
            'Errors of the session store, by Redis error class.',
            'namespace',
            'error',
        )
        self.unavailable = counter(
            'session_suite_unavailable_total',
            '503 responses answered because the session store failed.',
            'namespace',
        )
        self.logins = counter(
            'session_suite_logins_total',
            'Logins of the user index: admitted or refused.',
            'result',
        )
        self.tokens = counter(
            'session_suite_crossdomain_tokens_total',
            'Cross-domain tokens: accepted (adopted, replaced, kept) or '
            'rejected (with the reason code).',
            'result',
            'reason',
        )
        self.misses = counter(
            'session_suite_load_misses_total',
            'Loads that found no session (miss) or an ended one (ended).',
            'namespace',
            'outcome',
        )
        self.seconds = Histogram(
            'session_suite_store_seconds',
            'Time of the round trips to the session store: loads '
            '(GETEX), saves (one per client at the end of a request), '
            'the user index (login, list, revoke, count, forget) and '
            'cross-domain token claims.',
            ('namespace', 'operation'),
            registry=registry,
            buckets=SECONDS_BUCKETS,
        )
        self.payload = Histogram(
            'session_suite_payload_bytes',
            'Size of the sessions loaded, in bytes.',
            ('namespace',),
            registry=registry,
            buckets=BYTES_BUCKETS,
        )


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, Collectors]
_collectors = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def collectors_for(registry: CollectorRegistry | None = None) -> Collectors:
    """The collectors of ``registry`` (default: ``prometheus_client``'s),
    registered there on first use."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    with _lock:
        found = _collectors.get(registry)
        if found is None:
            found = _collectors[registry] = Collectors(registry)
        return found


def namespace_label(namespace: str | None) -> str:
    return namespace or UNKNOWN


def observe_all(child: Any, amounts: Sequence[float]) -> None:
    """``child.observe(amount)`` of a labelled histogram for each of
    ``amounts``, in as few calls as it can be: the buckets counted by
    bisection, each bucket and the sum incremented once."""
    try:
        add_to_sum = child._sum.inc
        bounds = child._upper_bounds
        buckets = child._buckets
    except AttributeError:  # pragma: no cover - another prometheus_client
        for amount in amounts:
            child.observe(amount)
        return
    counts = [0] * len(bounds)
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1
    add_to_sum(sum(amounts))
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)


class Pending:
    """The observations of the histograms of a registry that are not
    counted yet: a request appends its own (a list's ``append`` takes no
    lock), and they are counted in batches, when the registry is scraped
    and at least once a second while sessions are loaded. Registered in
    the registry as a collector of no metric of its own."""

    #: seconds an observation may wait, at most, while sessions are loaded
    DELAY = 1.0

    def __init__(self, collectors: Collectors) -> None:
        self.collectors = collectors
        #: (namespace, operation, seconds, bytes loaded or -1)
        self.items: list[tuple[str | None, str, float, int]] = []
        #: ``time.perf_counter()`` when they are next counted
        self.due = perf_counter() + self.DELAY
        self._lock = threading.Lock()
        _all_pending.add(self)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self.count()
        return []

    def count(self) -> None:
        """Count the observations waiting."""
        with self._lock:
            items = self.items
            taken = len(items)
            batch = items[:taken]
            del items[:taken]  # (what came meanwhile stays, for the next)
            self.due = perf_counter() + self.DELAY
        if not batch:
            return
        seconds: dict[tuple[str | None, str], list[float]] = {}
        sizes: dict[str | None, list[float]] = {}
        for namespace, operation, took, size in batch:
            try:
                seconds[namespace, operation].append(took)
            except KeyError:
                seconds[namespace, operation] = [took]
            if size >= 0:
                try:
                    sizes[namespace].append(size)
                except KeyError:
                    sizes[namespace] = [size]
        histogram = self.collectors.seconds
        for (namespace, operation), amounts in seconds.items():
            child = histogram.labels(namespace_label(namespace), operation)
            observe_all(child, amounts)
        histogram = self.collectors.payload
        for namespace, amounts in sizes.items():
            observe_all(histogram.labels(namespace_label(namespace)), amounts)


#: every registry's :class:`Pending`, counted when the process exits
_all_pending: weakref.WeakSet[Pending] = weakref.WeakSet()


@atexit.register
def _count_at_exit() -> None:
    for pending in list(_all_pending):
        pending.count()


class MetricsWatcher:
    """Counts and times the loads and saves of the application's sessions
    (see :mod:`.watch`); a load costs the append of one observation (see
    :class:`Pending`)."""

    #: the suite's events it counts: event class -> handler
    handlers: dict[type, Any] = {}

    def __init__(self, collectors: Collectors) -> None:
        self.collectors = collectors
        self.pending = collectors.pending
        self._created: dict[str | None, Any] = {}

    def event(self, event: object) -> None:
        """Count one of the suite's events (see :func:`.watch.notify`)."""
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event)

    def loaded(
        self,
        namespace: str | None,
        started: float,
        ended: float,
        outcome: str,
        size: int,
    ) -> None:
        pending = self.pending
        if outcome == 'hit':
            pending.items.append((namespace, 'load', ended - started, size))
        else:
            pending.items.append((namespace, 'load', ended - started, -1))
            self.collectors.misses.labels(
                namespace_label(namespace), outcome
            ).inc()
        if ended > pending.due:
            pending.count()

    def observe(self, operation: Operation) -> None:
        namespace = operation.namespace
        if operation.error is not None:
            count_error(self.collectors, operation.error, namespace)
        pending = self.pending
        pending.items.append(
            (namespace, operation.name, operation.seconds, -1)
        )
        if operation.started + operation.seconds > pending.due:
            pending.count()

    def created(self, namespace: str | None) -> None:
        try:
            counter = self._created[namespace]
        except KeyError:
            counter = self._created[namespace] = (
                self.collectors.created.labels(namespace_label(namespace))
            )
        counter.inc()


def count_error(
    collectors: Collectors, exc: BaseException, namespace: str | None
) -> None:
    """Count the store error ``exc``, once."""
    if getattr(exc, COUNTED_ATTR, False):
        return
    try:
        setattr(exc, COUNTED_ATTR, True)
    except AttributeError:  # pragma: no cover - exceptions take them
        pass
    collectors.errors.labels(
        namespace_label(namespace), type(exc).__name__
    ).inc()


def subscribers(collectors: Collectors) -> dict[type, Any]:
    """The event subscribers that count logins, ends, tokens and 503s."""

    def registered(event: SessionRegistered) -> None:
        if event.login:  # not the new id of credentials_changed()
            collectors.logins.labels('admitted').inc()

    def refused(event: LoginRefused) -> None:
        collectors.logins.labels('refused').inc()

    def revoked(event: SessionRevoked) -> None:
        tracker = event.request.registry.queryUtility(IUserIndex)
        namespace = getattr(tracker, 'namespace', None)
        collectors.ended.labels(namespace_label(namespace), event.reason).inc(
            event.count
        )

    def accepted(event: TokenAccepted) -> None:
        collectors.tokens.labels('accepted', event.outcome).inc()

    def rejected(event: TokenRejected) -> None:
        collectors.tokens.labels('rejected', event.reason).inc()

    def unavailable(event: StoreUnavailable) -> None:
        namespace = namespace_label(event.namespace)
        collectors.unavailable.labels(namespace).inc()
        count_error(collectors, event.exc, event.namespace)

    return {
        SessionRegistered: registered,
        LoginRefused: refused,
        SessionRevoked: revoked,
        TokenAccepted: accepted,
        TokenRejected: rejected,
        StoreUnavailable: unavailable,
    }


def includeme(config: Configurator) -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        from pyramid.exceptions import ConfigurationError

        raise ConfigurationError(
            'pyramid_session_suite.metrics needs the "metrics" extra: '
            'pip install "pyramid_session_suite[metrics]"'
        ) from exc
    registry = config.registry
    settings = parse_settings(
        registry.settings, METRICS_SETTINGS, SETTINGS_PREFIX, strict=True
    )

    def register() -> None:
        collectors = collectors_for(settings['registry'])
        watcher = MetricsWatcher(collectors)
        # the suite's events reach the watcher directly (watch.notify): no
        # Pyramid subscriber, so no per-request events for an application
        # that has none of its own
        watcher.handlers = subscribers(collectors)
        add_watcher(config, watcher)

    config.action(('session_suite', 'metrics'), register)
