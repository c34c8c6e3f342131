"""OpenTelemetry spans of the session store:
``config.include('pyramid_session_suite.tracing')`` (the ``otel`` extra:
``opentelemetry-api``).

Each load of a Redis session (its ``GETEX``) is a ``session_suite.load``
span, each save of a request's sessions (one round trip per client) a
``session_suite.save`` span; the user index's scripts are
``session_suite.login``, ``.list``, ``.revoke`` and ``.count`` spans (and
``.forget``, its round trip that drops a session's entry), the claim of a
cross-domain token a ``session_suite.claim`` span: all of kind
``CLIENT``, children of the current span (the request's, when the
application traces its requests). Their attributes:

- ``db.system.name``: ``redis``;
- ``db.operation.name``: ``GETEX`` (loads), ``EVALSHA`` (the user index's
  scripts), ``EVAL`` (claims);
- ``session_suite.namespace``: the session namespace (of the first
  session of a save);
- ``session_suite.outcome``: ``hit``, ``miss``, ``ended`` (loads), ``ok``
  (the others) or ``error``;
- ``session_suite.payload_bytes``: bytes read or written;
- ``session_suite.round_trips``: Redis round trips;
- ``error.type``: the Redis error class, on an error (the span's status is
  then ``ERROR``, with the exception recorded).

The spans go to the tracer provider the application set up
(``opentelemetry.trace.set_tracer_provider``), or to the one named by
``session_suite.tracing.tracer_provider`` (a dotted name, or the object
itself in the settings). Until there is a provider, no span is made: the
API's no-op tracer would make spans that record nothing.
"""

from __future__ import annotations

from time import time_ns
from typing import TYPE_CHECKING, Any

from ._settings import PREFIX, parse_settings
from .metrics import as_object
from .watch import add_watcher

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer
    from pyramid.config import Configurator

    from .watch import Operation

SETTINGS_PREFIX = PREFIX + 'tracing.'

#: the instrumentation scope of the spans
SCOPE = 'pyramid_session_suite'

TRACING_SETTINGS = (('tracer_provider', as_object, None),)

#: ``db.operation.name`` of the operations that are one Redis command
COMMANDS = {
    'load': 'GETEX',
    'login': 'EVALSHA',
    'list': 'EVALSHA',
    'revoke': 'EVALSHA',
    'count': 'EVALSHA',
    'claim': 'EVAL',
}


class TracingWatcher:
    """Makes a span of every operation (see :mod:`.watch`)."""

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry.trace import NoOpTracer, ProxyTracer, SpanKind

        self.tracer = tracer
        self.kind = SpanKind.CLIENT
        self._noop = NoOpTracer
        #: whether ``tracer`` stands for the global provider's, which the
        #: application may set after the configuration
        self._proxied = isinstance(tracer, ProxyTracer)
        #: (namespace, operation): (span name, attributes at the start)
        self._starts: dict[tuple[str | None, str], Any] = {}

    def _tracing(self) -> bool:
        """Whether spans can record: not while the tracer is the API's
        no-op one (no provider), whose spans would record nothing."""
        tracer = self.tracer
        if self._proxied:
            # the proxy's tracer: the provider's once one is set
            tracer = getattr(tracer, '_tracer', tracer)
            if isinstance(tracer, self._noop):
                return False
            self.tracer = tracer
            self._proxied = False
        return not isinstance(tracer, self._noop)

    def loaded(
        self,
        namespace: str | None,
        started: float,
        ended: float,
        outcome: str,
        size: int,
    ) -> None:
        if self._proxied and not self._tracing():
            return
        span, now = self._span(namespace, 'load', ended - started)
        if span.is_recording():
            span.set_attribute('session_suite.outcome', outcome)
            span.set_attribute('session_suite.payload_bytes', size)
            span.set_attribute('session_suite.round_trips', 1)
        span.end(end_time=now)

    def observe(self, operation: Operation) -> None:
        if self._proxied and not self._tracing():
            return
        span, now = self._span(
            operation.namespace, operation.name, operation.seconds
        )
        if span.is_recording():
            span.set_attribute('session_suite.outcome', operation.outcome)
            span.set_attribute('session_suite.payload_bytes', operation.size)
            span.set_attribute(
                'session_suite.round_trips', operation.round_trips
            )
            error = operation.error
            if error is not None:
                from opentelemetry.trace import Status, StatusCode

                span.set_attribute('error.type', type(error).__qualname__)
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end(end_time=now)

    def _span(
        self, namespace: str | None, operation: str, seconds: float
    ) -> tuple[Span, int]:
        """The span of an operation that ended now (the time returned, in
        nanoseconds since the epoch), after ``seconds``."""
        key = namespace, operation
        try:
            name, attributes = self._starts[key]
        except KeyError:
            name, attributes = self._starts[key] = self._start(*key)
        now = time_ns()
        span = self.tracer.start_span(
            name,
            kind=self.kind,
            attributes=attributes,
            start_time=now - int(seconds * 1e9),
        )
        return span, now

    @staticmethod
    def _start(namespace: str | None, operation: str) -> tuple[str, Any]:
        attributes = {'db.system.name': 'redis'}
        command = COMMANDS.get(operation)
        if command is not None:
            attributes['db.operation.name'] = command
        if namespace is not None:
            attributes['session_suite.namespace'] = namespace
        return f'session_suite.{operation}', attributes


def tracer_of(provider: Any = None) -> Tracer:
    """The tracer of the spans: of ``provider``, else of the global tracer
    provider (a proxy until the application sets one)."""
    from opentelemetry import trace

    version = _version()
    if provider is not None:
        tracer: Tracer = provider.get_tracer(SCOPE, version)
        return tracer
    return trace.get_tracer(SCOPE, version)


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(SCOPE)
    except PackageNotFoundError:  # pragma: no cover - run from a checkout
        return None


def includeme(config: Configurator) -> None:
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError as exc:
        from pyramid.exceptions import ConfigurationError

        raise ConfigurationError(
            'pyramid_session_suite.tracing needs the "otel" extra: '
            'pip install "pyramid_session_suite[otel]"'
        ) from exc
    settings = parse_settings(
        config.registry.settings,
        TRACING_SETTINGS,
        SETTINGS_PREFIX,
        strict=True,
    )

    def register() -> None:
        tracer = tracer_of(settings['tracer_provider'])
        add_watcher(config, TracingWatcher(tracer))

    config.action(('session_suite', 'tracing'), register)
