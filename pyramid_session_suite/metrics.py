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
failed ``session_suite_store_errors_total``. A load that finds its session
costs two histogram observations, nothing more.

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

from bisect import bisect_left
from collections.abc import Callable
import threading
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


def observer(child: Any) -> Callable[[float], None]:
    """``child.observe`` of a labelled histogram, as few calls as it can
    be: the observation's bucket found by bisection, the sum and the
    bucket counted (what ``Histogram.observe`` does, without its checks,
    which the labelled child passed once)."""
    try:
        add_to_sum = child._sum.inc
        bounds = list(child._upper_bounds)
        counts = [bucket.inc for bucket in child._buckets]
    except AttributeError:  # pragma: no cover - another prometheus_client
        observe: Callable[[float], None] = child.observe
        return observe

    def observe_fast(amount: float) -> None:
        add_to_sum(amount)
        counts[bisect_left(bounds, amount)](1)

    return observe_fast


class MetricsWatcher:
    """Counts and times the loads and saves of the application's sessions
    (see :mod:`.watch`); the labelled children are looked up once."""

    #: the suite's events it counts: event class -> handler
    handlers: dict[type, Any] = {}

    def __init__(self, collectors: Collectors) -> None:
        self.collectors = collectors
        self._seconds: dict[tuple[str | None, str], Any] = {}
        self._payload: dict[str | None, Any] = {}
        self._created: dict[str | None, Any] = {}

    def begin(self, operation: Operation) -> None:
        return None

    def event(self, event: object) -> None:
        """Count one of the suite's events (see :func:`.watch.notify`)."""
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event)

    def end(self, operation: Operation, token: None) -> None:
        namespace = operation.namespace
        name = operation.name
        try:
            timed = self._seconds[namespace, name]
        except KeyError:
            timed = self._seconds[namespace, name] = observer(
                self.collectors.seconds.labels(
                    namespace_label(namespace), name
                )
            )
        timed(operation.seconds)
        outcome = operation.outcome
        if outcome == 'hit':
            try:
                sized = self._payload[namespace]
            except KeyError:
                sized = self._payload[namespace] = observer(
                    self.collectors.payload.labels(namespace_label(namespace))
                )
            sized(operation.size)
        elif operation.error is not None:
            count_error(self.collectors, operation.error, namespace)
        elif name == 'load':
            self.collectors.misses.labels(
                namespace_label(namespace), outcome or UNKNOWN
            ).inc()

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
