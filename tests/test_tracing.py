"""OpenTelemetry spans of session loads and saves, of the user index's
scripts and of cross-domain token claims, checked with the SDK's in-memory
exporter; without a tracer provider, the API's no-op tracer and its
cost."""

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode
from pyramid.config import Configurator
import pytest
from webtest import TestApp

from pyramid_session_suite import watch
from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY
from pyramid_session_suite.testing import RedisServer

from . import crossdomainapp
from .conftest import SECRET
from .crossdomainapp import HUB, SITE
from .usersapp import make_config

TRACING = 'pyramid_session_suite.tracing'


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def traced(redis_url, provider, namespace='main', **settings):
    """A Redis namespace (also ``request.session``) with ``/write`` and
    ``/read``, traced to ``provider``."""
    prefix = f'session_suite.namespace.{namespace}.'
    settings = {
        'session_suite.namespaces': namespace,
        'session_suite.request_session': namespace,
        prefix + 'backend': 'redis',
        prefix + 'secret': SECRET,
        prefix + 'redis_url': redis_url,
        prefix + 'redis_socket_timeout': '0.5',
        prefix + 'redis_connect_timeout': '0.3',
        **settings,
    }
    if provider is not None:
        settings['session_suite.tracing.tracer_provider'] = provider
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    config.include(TRACING)

    def write(request):
        request.session['n'] = request.session.get('n', 0) + 1
        return {'n': request.session['n']}

    def read(request):
        return {'n': request.session.get('n')}

    config.add_route('write', '/write')
    config.add_view(write, route_name='write', renderer='json')
    config.add_route('read', '/read')
    config.add_view(read, route_name='read', renderer='json')
    return config.make_wsgi_app()


def spans(exporter):
    found = exporter.get_finished_spans()
    exporter.clear()
    return [(span.name, dict(span.attributes)) for span in found]


def test_loads_and_saves_are_spans(redis_url, provider, exporter):
    browser = TestApp(traced(redis_url, provider, namespace='prefs'))
    browser.get('/write')  # a new session: a save only
    [(name, attributes)] = spans(exporter)
    assert name == 'session_suite.save'
    assert attributes == {
        'db.system.name': 'redis',
        'session_suite.namespace': 'prefs',
        'session_suite.outcome': 'ok',
        'session_suite.payload_bytes': attributes[
            'session_suite.payload_bytes'
        ],
        'session_suite.round_trips': 1,
    }
    assert 0 < attributes['session_suite.payload_bytes'] < 100
    browser.get('/read')  # a load only
    [(name, attributes)] = spans(exporter)
    assert name == 'session_suite.load'
    assert attributes['db.operation.name'] == 'GETEX'
    assert attributes['session_suite.outcome'] == 'hit'
    assert 0 < attributes['session_suite.payload_bytes'] < 100
    browser.get('/write')
    assert [name for name, _ in spans(exporter)] == [
        'session_suite.load',
        'session_suite.save',
    ]


def test_spans_are_children_of_the_request_span(redis_url, provider, exporter):
    browser = TestApp(traced(redis_url, provider))
    browser.get('/write')
    exporter.clear()
    tracer = provider.get_tracer('the application')
    with tracer.start_as_current_span('GET /write') as request_span:
        browser.get('/write')
    load, save, request = exporter.get_finished_spans()
    assert request.name == 'GET /write'
    for span in (load, save):
        assert span.kind is SpanKind.CLIENT
        assert span.parent.span_id == request_span.get_span_context().span_id
        assert span.context.trace_id == request.context.trace_id
        assert span.instrumentation_scope.name == 'pyramid_session_suite'
        assert request.start_time <= span.start_time <= span.end_time
        assert span.end_time <= request.end_time


def test_a_miss_and_an_ended_session(
    redis_url, redis_client, provider, exporter
):
    browser = TestApp(traced(redis_url, provider))
    browser.get('/write')
    redis_client.flushdb()  # as if the session had expired
    exporter.clear()
    assert browser.get('/read').json == {'n': None}
    [(name, attributes)] = spans(exporter)
    assert attributes['session_suite.outcome'] == 'miss'
    assert attributes['session_suite.payload_bytes'] == 0

    config = make_config(
        redis_url, **{'session_suite.tracing.tracer_provider': provider}
    )
    config.include(TRACING)
    app = config.make_wsgi_app()
    first, second = TestApp(app), TestApp(app)
    first.get('/login?user=alice')
    second.get('/login?user=alice')
    assert second.get('/mine?do=others').json['count'] == 1
    exporter.clear()
    first.get('/whoami')  # ended by the other browser
    [(name, attributes)] = spans(exporter)
    assert attributes['session_suite.outcome'] == 'ended'


def test_a_failed_load_is_an_error_span(provider, exporter):
    with RedisServer(url='') as server:
        browser = TestApp(traced(server.url, provider))
        browser.get('/write')
        server.stop()
        exporter.clear()
        browser.get('/read', status=503)
    [span] = exporter.get_finished_spans()
    assert span.name == 'session_suite.load'
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == 'ConnectionError'
    assert span.attributes['error.type'] == 'ConnectionError'
    assert span.attributes['session_suite.outcome'] == 'error'
    [event] = span.events
    assert event.name == 'exception'
    assert event.attributes['exception.type'].endswith('ConnectionError')


def logins(redis_url, provider, **settings):
    """The logins application of the user index tests, traced."""
    settings['session_suite.tracing.tracer_provider'] = provider
    config = make_config(redis_url, **settings)
    config.include(TRACING)
    return config.make_wsgi_app()


def test_the_user_index_scripts_are_spans(redis_url, provider, exporter):
    browser = TestApp(logins(redis_url, provider))
    browser.get('/login?user=alice')
    (login, attributes), (save, _) = spans(exporter)
    assert (login, save) == ('session_suite.login', 'session_suite.save')
    assert attributes == {
        'db.system.name': 'redis',
        'db.operation.name': 'EVALSHA',
        'session_suite.namespace': 'main',
        'session_suite.outcome': 'ok',
        'session_suite.payload_bytes': attributes[
            'session_suite.payload_bytes'
        ],
        'session_suite.round_trips': 1,
    }
    # the session the script stores: its login records (the user id in
    # its data comes with the save)
    assert 32 < attributes['session_suite.payload_bytes'] < 128
    browser.get('/whoami')  # a read: its load, nothing more
    assert [name for name, _ in spans(exporter)] == ['session_suite.load']
    browser.get('/mine')
    assert [name for name, _ in spans(exporter)] == [
        'session_suite.load',
        'session_suite.list',
    ]
    browser.get('/login?user=bob')  # alice's entry is forgotten
    assert [name for name, _ in spans(exporter)] == [
        'session_suite.load',
        'session_suite.login',
        'session_suite.forget',
        'session_suite.save',
    ]
    browser.get('/logout')
    (_, _), (name, attributes) = spans(exporter)
    assert name == 'session_suite.revoke'
    assert attributes['db.operation.name'] == 'EVALSHA'
    assert attributes['session_suite.namespace'] == 'main'
    assert attributes['session_suite.outcome'] == 'ok'


def test_a_failed_login_is_an_error_span(provider, exporter):
    with RedisServer(url='') as server:
        browser = TestApp(logins(server.url, provider))
        server.stop()
        browser.get('/login?user=alice', status=503)
    [span] = exporter.get_finished_spans()
    assert span.name == 'session_suite.login'
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes['error.type'] == 'ConnectionError'
    assert span.attributes['session_suite.outcome'] == 'error'
    assert span.attributes['session_suite.namespace'] == 'main'


def test_a_token_claim_is_a_span(redis_url, provider, exporter):
    def site():
        settings = crossdomainapp.site_settings(redis_url)
        settings['session_suite.tracing.tracer_provider'] = provider
        config = Configurator(settings=settings)
        config.include('pyramid_session_suite.crossdomain')
        config.include(TRACING)
        config.add_route('login', '/login')
        config.add_view(crossdomainapp.login, route_name='login')
        return config.make_wsgi_app()

    hub, other = site(), site()
    at_hub = TestApp(hub, extra_environ={'HTTP_HOST': 'www.site-a.test'})
    at_hub.get(HUB + '/login?user=dave')
    crossdomain = hub.registry[CROSSDOMAIN_KEY]
    sid = crossdomain.factory.session_id_from_cookie(at_hub.cookies['main'])
    state = 's' * 32
    token = crossdomain.codec.mint(sid, HUB, SITE, state=state)
    url = SITE + '/_session_suite/xd/import?next=/page&t=' + token
    cookie = {'Cookie': 'session_suite_xd_state=' + state}
    tab = TestApp(other, extra_environ={'HTTP_HOST': 'www.site-b.test'})
    exporter.clear()
    tab.get(url, headers=cookie, status=303)
    [(name, attributes)] = spans(exporter)
    assert name == 'session_suite.claim'
    assert attributes == {
        'db.system.name': 'redis',
        'db.operation.name': 'EVAL',
        'session_suite.namespace': 'main',
        'session_suite.outcome': 'ok',
        'session_suite.payload_bytes': 0,
        'session_suite.round_trips': 1,
    }
    tab.get(url, headers=cookie, status=400)  # replayed: claimed before
    [(name, attributes)] = spans(exporter)
    assert (name, attributes['session_suite.outcome']) == (
        'session_suite.claim',
        'ok',
    )


def test_a_sampler_that_drops_everything(redis_url, exporter):
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    browser = TestApp(traced(redis_url, provider))
    browser.get('/write')
    browser.get('/read')
    assert exporter.get_finished_spans() == ()


def test_without_a_provider_no_span_is_made(redis_url, monkeypatch):
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    browser = TestApp(traced(redis_url, None))
    [watcher] = browser.app.registry[watch.WATCHERS_KEY]

    def start_span(*args, **kwargs):
        raise AssertionError('a span was made')

    monkeypatch.setattr(watcher.tracer, 'start_span', start_span)
    assert browser.get('/write').json == {'n': 1}
    assert browser.get('/read').json == {'n': 1}


def test_a_provider_set_after_the_configuration_gets_the_spans(
    redis_url, exporter, monkeypatch
):
    browser = TestApp(traced(redis_url, None))  # the global provider's
    browser.get('/write')
    assert exporter.get_finished_spans() == ()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # what opentelemetry.trace.set_tracer_provider() sets, undone after
    monkeypatch.setattr(trace, '_TRACER_PROVIDER', provider)
    assert browser.get('/read').json == {'n': 1}
    [load] = exporter.get_finished_spans()
    assert load.name == 'session_suite.load'
    assert load.attributes['session_suite.outcome'] == 'hit'
