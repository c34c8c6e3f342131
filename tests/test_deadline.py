"""A request waits on Redis about as long as one command may, however
many round trips it makes: ``socket_timeout × (redis_retries + 1)`` in all
(:mod:`pyramid_session_suite.redis.deadline`)."""

import signal
import time
from pyramid.config import Configurator
from pyramid.response import Response
import pytest
import redis
from webtest import TestApp

from pyramid_session_suite.redis.clients import redis_client
from pyramid_session_suite.redis.deadline import spent_seconds
from pyramid_session_suite.testing import RedisServer

from .conftest import SECRET

TIMEOUT = 0.3
RETRIES = 1
DEADLINE = TIMEOUT * (RETRIES + 1)


@pytest.fixture
def server():
    with RedisServer(url='') as server:
        yield server


def app_of(url, calls):
    """An application whose view makes ``calls`` Redis commands on its
    namespace's client, catching their errors (as an application might),
    and says how each ended and how long the request waited on Redis."""
    config = Configurator(
        settings={
            'session_suite.redis_url': url,
            'session_suite.redis_socket_timeout': str(TIMEOUT),
            'session_suite.redis_connect_timeout': str(TIMEOUT),
            'session_suite.redis_retries': str(RETRIES),
            'session_suite.namespaces': 'main',
            'session_suite.namespace.main.backend': 'redis',
            'session_suite.namespace.main.secret': SECRET,
        }
    )
    config.include('pyramid_session_suite')

    def view(request):
        client = request.session_multi.get_namespace_config('main').redis
        outcomes = []
        for n in range(calls):
            start = time.monotonic()
            try:
                client.get(f'k{n}')
                outcome = 'ok'
            except redis.TimeoutError as exc:
                outcome = 'deadline' if 'deadline' in str(exc) else 'timeout'
            except redis.ConnectionError:
                outcome = 'timeout'
            outcomes.append((outcome, time.monotonic() - start))
        return Response(
            json_body={'outcomes': outcomes, 'spent': spent_seconds()}
        )

    config.add_route('calls', '/calls')
    config.add_view(view, route_name='calls')
    return TestApp(config.make_wsgi_app())


def test_many_round_trips_of_a_healthy_request_all_go_through(server):
    res = app_of(server.url, 200).get('/calls')
    assert [o for o, _ in res.json['outcomes']] == ['ok'] * 200
    assert 0 < res.json['spent'] < DEADLINE


def test_a_frozen_redis_costs_a_request_one_deadline_in_all(server):
    app = app_of(server.url, 5)
    app.get('/calls')  # connected
    server.process.send_signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        res = app.get('/calls')
        elapsed = time.monotonic() - start
    finally:
        server.process.send_signal(signal.SIGCONT)
    (first, waited), *others = res.json['outcomes']
    # the first command waits for its timeout and its retry (which ends
    # with a timeout, or the deadline); the others are not sent: the
    # request has no time left
    assert first in ('timeout', 'deadline') and waited >= TIMEOUT
    assert [o for o, _ in others] == ['deadline'] * 4
    assert all(seconds < 0.05 for _, seconds in others)
    assert elapsed < DEADLINE + 0.5
    # the next request has its own deadline, and Redis is back
    assert [o for o, _ in app.get('/calls').json['outcomes']] == ['ok'] * 5


def test_outside_a_request_each_command_has_its_own_timeouts(server):
    client = redis_client(
        server.url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retries=RETRIES,
    )
    client.ping()
    server.process.send_signal(signal.SIGSTOP)
    try:
        for _ in range(2):
            with pytest.raises(redis.TimeoutError) as raised:
                client.get('k')
            assert 'deadline' not in str(raised.value)
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert client.get('k') is None
