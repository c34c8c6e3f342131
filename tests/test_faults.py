"""Redis failing under traffic: stopped, frozen, slow. A real waitress
server, browsers sending real HTTP requests from several threads, and a
private Redis server per test that the test stops and starts again.

The figures measured are written to ``test-artifacts/faults.txt``.
"""

import contextlib
import dataclasses
import http.client
import json
import signal
import statistics
import threading
import time
from urllib.parse import urlsplit
from pyramid.paster import get_app
import pytest

from pyramid_session_suite import RedisSessionFactory
from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis import login_records as lr
from pyramid_session_suite.redis.login_records import redis_key
from pyramid_session_suite.redis.stored import DIGEST_SIZE, unpack
from pyramid_session_suite.testing import RedisServer
from pyramid_session_suite.user_index import MARKER
from pyramid_session_suite.user_index.store import (
    UserRef,
    tag_of_key,
    user_tag,
)

from .conftest import SECRET, live_keys, serve, stored
from .usersapp import FIREFOX, make_config

#: where the figures measured are written, under ``test-artifacts/``
FIGURES = 'faults.txt'

#: routes whose requests load the Redis session (``main``)
REDIS_ROUTES = {'/login', '/whoami'}

#: routes that touch no Redis namespace: no session, the cookie namespace
QUIET_ROUTES = {'/health', '/prefs'}

USERS = ('alice', 'bob', 'carol', 'dave')

#: between two rounds of a visitor: leave some CPU to Redis and the server
PAUSE = 0.01


@dataclasses.dataclass
class Exchange:
    """One request and its answer, as the client saw them."""

    path: str
    sent: float
    done: float = 0.0
    status: int | None = None  # None: no answer
    headers: http.client.HTTPMessage | None = None
    body: str = ''
    error: str = ''

    @property
    def route(self):
        return self.path.partition('?')[0]

    @property
    def seconds(self):
        return self.done - self.sent

    @property
    def set_cookies(self):
        if self.headers is None:
            return []
        return self.headers.get_all('Set-Cookie') or []

    @property
    def json(self):
        return json.loads(self.body)


class Browser:
    """Real HTTP requests, one connection each, with a cookie jar and the
    ``Accept`` header of a browser."""

    def __init__(self, url, user_agent=FIREFOX):
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.user_agent = user_agent
        self.cookies = {}

    def get(self, path, timeout=10.0):
        headers = {
            'Accept': 'text/html,application/xhtml+xml,*/*;q=0.8',
            'User-Agent': self.user_agent,
        }
        if self.cookies:
            headers['Cookie'] = '; '.join(
                f'{name}={value}' for name, value in self.cookies.items()
            )
        exchange = Exchange(path, time.monotonic())
        connection = http.client.HTTPConnection(*self.address, timeout=timeout)
        try:
            connection.request('GET', path, headers=headers)
            response = connection.getresponse()
            exchange.body = response.read().decode('utf-8', 'replace')
            exchange.status = response.status
            exchange.headers = response.headers
        except OSError as exc:
            exchange.error = repr(exc)
        finally:
            connection.close()
            exchange.done = time.monotonic()
        for header in exchange.set_cookies:
            name, _, rest = header.partition('=')
            value = rest.partition(';')[0]
            if value and 'Max-Age=0' not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return exchange


class Visitor(threading.Thread):
    """Browses until stopped, in rounds: a health check and a preference
    change (no Redis), signing in as ``user`` when signed out, and a page
    that writes the Redis session."""

    def __init__(self, url, user, stop):
        super().__init__(daemon=True)
        self.browser = Browser(url)
        self.user = user
        self.stop = stop
        self.exchanges = []
        self.signed_in = False
        #: answers of the preference page that did not count on from the
        #: previous one
        self.prefs_lost = []
        #: answers of the Redis page that found this visitor signed out
        self.signed_out = []
        self.visits = 0

    def get(self, path):
        exchange = self.browser.get(path)
        self.exchanges.append(exchange)
        return exchange

    def run(self):
        while not self.stop.is_set():
            self.get('/health')
            prefs = self.get('/prefs')
            if prefs.status == 200:
                self.visits += 1
                if prefs.json['visits'] != self.visits:
                    self.prefs_lost.append(prefs)
                    self.visits = prefs.json['visits']
            if not self.signed_in:
                login = self.get(f'/login?user={self.user}')
                self.signed_in = login.status == 200
            page = self.get('/whoami?write=1')
            if page.status == 200 and page.json['user'] != self.user:
                self.signed_out.append(page)
                self.signed_in = False
            time.sleep(PAUSE)


def faults_app(redis_url, include='pyramid_session_suite.policy', **extra):
    """Logins on the Redis namespace ``main`` (user index, and the policy
    unless ``include`` says otherwise), a cookie namespace ``prefs``, and a
    health check. The policy loads ``main`` for every request carrying its
    cookie but under ``skip_paths``."""
    settings = {
        'session_suite.namespaces': 'main prefs',
        'session_suite.namespace.prefs.secret': SECRET + '-prefs',
    }
    if include.endswith('policy'):
        settings['session_suite.policy.lock_seconds'] = '0'
        settings['session_suite.policy.skip_paths'] = '/health /prefs'
    settings.update(extra)
    config = make_config(redis_url, include=include, **settings)

    def prefs(request):
        prefs = request.session_multi['prefs']
        prefs['visits'] = prefs.get('visits', 0) + 1
        return {'visits': prefs['visits']}

    config.add_route('health', '/health')
    config.add_view(lambda request: {'ok': True}, route_name='health',
                    renderer='json')  # fmt: skip
    config.add_route('prefs', '/prefs')
    config.add_view(prefs, route_name='prefs', renderer='json')
    return config.make_wsgi_app()


@contextlib.contextmanager
def private_redis():
    """A Redis server of the test's own, which it may stop and freeze."""
    with RedisServer(url='') as server:
        yield server


@contextlib.contextmanager
def traffic(url, users=USERS):
    """Visitors browsing ``url`` from their own threads; all signed in."""
    stop = threading.Event()
    visitors = [Visitor(url, user, stop) for user in users]
    for visitor in visitors:
        visitor.start()
    try:
        wait_until(lambda: all(v.signed_in for v in visitors))
        yield visitors
    finally:
        stop.set()
        for visitor in visitors:
            visitor.join(15)
    assert not any(visitor.is_alive() for visitor in visitors)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out waiting'
        time.sleep(0.01)


def recovery_seconds(url, since, limit=5.0):
    """Seconds from ``since`` to the answer of the first request that
    writes a Redis session and succeeds, polling every 25 ms."""
    while True:
        exchange = Browser(url).get('/whoami?write=1')
        if exchange.status == 200:
            return exchange.done - since
        assert exchange.status == 503, exchange
        assert time.monotonic() - since < limit, 'no recovery'
        time.sleep(0.025)


def assert_unavailable_page(exchange):
    """The 503 a browser gets while Redis is unavailable."""
    assert exchange.status == 503
    assert exchange.headers['Retry-After'] == '1'
    assert exchange.headers['Content-Type'].startswith('text/html')
    assert 'session store is unavailable' in exchange.body
    assert 'Traceback' not in exchange.body
    assert exchange.set_cookies == []


def assert_answers(exchanges):
    """Every request was answered: 200, or a 503 page for a request that
    loads the Redis session; never a 500."""
    assert [e for e in exchanges if e.status is None] == []
    assert {e.status for e in exchanges} <= {200, 503}
    assert {e.status for e in exchanges if e.route in QUIET_ROUTES} == {200}
    for exchange in exchanges:
        if exchange.status == 503:
            assert exchange.route in REDIS_ROUTES
            assert_unavailable_page(exchange)


def own_records(client, key):
    """The session's own records (names starting ``0xff``) stored at
    ``key``, those its login record holds included."""
    return lr.own_records(unpack(client.get(key))[1])


def is_signed_in(records):
    """Whether a session's own records hold a login."""
    return lr.LOGIN in records and lr.SECRET in records


def assert_index_agrees_with_sessions(client, tracker):
    """Nothing half-written: every stored session decodes, and a user's
    slot holds a whole login (its secret's digest and every index fact);
    every signed-in session is listed by its user's index under its own
    handle, and nothing else is; once pruned, the indexes name exactly the
    slots of the live signed-in sessions of the users with two or more."""
    prefix = tracker.factory.key_prefix
    index = tracker.index
    signed_in = {}  # tag -> {slot: handle}
    for key in live_keys(client, prefix + '*'):
        payload = stored(client, key)
        assert isinstance(payload['m'], dict) and payload['c']
        assert MARKER not in payload['m']
        records = own_records(client, key)
        tag = tag_of_key(key)
        if tag is None:  # anonymous
            assert not set(records) & {lr.SECRET, *lr.INDEX_RECORDS}, key
            continue
        assert lr.SLOT_KEY.search(key), key
        assert key.startswith(f'{prefix}{{{tag}}}:')
        assert is_signed_in(records), key
        assert len(records[lr.SECRET]) == DIGEST_SIZE
        for name in (lr.ACTIVE, lr.IP, lr.USER_AGENT):
            assert name in records, (key, name)
        assert lr.number(records, lr.LOGIN) > 0
        assert lr.number(records, lr.ACTIVE) >= lr.number(records, lr.LOGIN)
        slot = key.rpartition(':')[2]
        signed_in.setdefault(tag, {})[slot] = lr.handle(
            slot, records[lr.SECRET]
        )
    zsets = {
        tag_of_key(key.decode())
        for key in client.scan_iter(match=index.key_prefix + '{*}:i')
    }
    users = {user_tag(user) for user in index.users() if user is not None}
    for tag in sorted(set(signed_in) | zsets | users):
        user = UserRef(tag)
        handles = signed_in.get(tag, {})
        listed = {entry['handle'] for entry in index.list(user)}
        assert listed == set(handles.values()), tag
        index.prune(user)
        slots = {
            s.decode() for s in client.zrange(index.index_key(user), 0, -1)
        }
        # a user has an index only while it has two sessions or more
        assert slots == (set(handles) if len(handles) > 1 else set()), tag


def summary(exchanges, during):
    redis = [e for e in exchanges if e.route in REDIS_ROUTES]
    quiet = [e for e in exchanges if e.route in QUIET_ROUTES]
    unavailable = [e for e in exchanges if e.status == 503]
    return (
        f'{len(exchanges)} requests ({len(redis)} on Redis routes, '
        f'{len(quiet)} not), {len(unavailable)} answered 503, '
        f'{sum(1 for e in during if e.route in QUIET_ROUTES)} answered 200 '
        'during the fault without Redis, '
        f'{sum(1 for e in exchanges if e.status is None)} unanswered'
    )


# --- Redis stops and comes back ---------------------------------------------


@pytest.mark.parametrize(
    'include',
    ['pyramid_session_suite.policy', 'pyramid_session_suite.user_index'],
    ids=['policy', 'user_index'],
)
def test_redis_stopping_mid_traffic_is_a_503_and_service_resumes_by_itself(
    include, figures
):
    with private_redis() as server:
        app = faults_app(server.url, include)
        tracker = app.registry.getUtility(IUserIndex)
        with serve(app) as url, traffic(url) as visitors:
            time.sleep(0.3)
            server.stop(keep_port=True)
            down = time.monotonic()
            time.sleep(0.8)
            restarting = time.monotonic()
            server.start()
            up = time.monotonic()
            recovery = recovery_seconds(url, up)
            recovered = up + recovery
            time.sleep(0.5)
        exchanges = [e for v in visitors for e in v.exchanges]
        assert_answers(exchanges)
        # while Redis was down: a 503 page for every request that loads
        # the Redis session, the rest as usual, the cookie namespace intact
        during = [e for e in exchanges if down <= e.sent < e.done < restarting]
        redis_during = [e for e in during if e.route in REDIS_ROUTES]
        assert redis_during
        assert {e.status for e in redis_during} == {503}
        assert {e.status for e in during if e.route in QUIET_ROUTES} == {200}
        assert [v.prefs_lost for v in visitors] == [[]] * len(visitors)
        # back within a second of Redis, with no restart of the app; the
        # restarted Redis is empty, so the visitors signed in again
        assert recovery < 1.0
        after = [e for e in exchanges if e.sent > recovered]
        assert after and {e.status for e in after} == {200}
        assert all(v.signed_in for v in visitors)
        client = tracker.factory.redis
        assert_index_agrees_with_sessions(client, tracker)
    figures.append(
        f'Redis stopped for {restarting - down:.2f} s under traffic '
        f'({include.rpartition(".")[2]}): {summary(exchanges, during)}; '
        f'{len(redis_during)} of the Redis requests made during the outage '
        f'answered 503; recovered {recovery * 1000:.0f} ms after Redis was '
        'back'
    )


# --- Redis freezes: slower than the socket timeout -------------------------

SOCKET_TIMEOUT = 0.3


def test_a_frozen_redis_is_a_503_within_the_socket_timeout_and_nothing_is_lost(
    figures,
):
    with private_redis() as server:
        app = faults_app(
            server.url,
            **{
                'session_suite.namespace.main.redis_socket_timeout': str(
                    SOCKET_TIMEOUT
                ),
                'session_suite.namespace.main.redis_connect_timeout': '0.3',
            },
        )
        tracker = app.registry.getUtility(IUserIndex)
        client = tracker.factory.redis
        with serve(app) as url, traffic(url) as visitors:
            time.sleep(0.3)
            server.process.send_signal(signal.SIGSTOP)
            frozen = time.monotonic()
            try:
                time.sleep(1.2)
            finally:
                thawing = time.monotonic()
                server.process.send_signal(signal.SIGCONT)
            thawed = time.monotonic()
            recovery = recovery_seconds(url, thawed)
            recovered = thawed + recovery
            time.sleep(0.5)
        exchanges = [e for v in visitors for e in v.exchanges]
        assert_answers(exchanges)
        # bounded by the socket timeout: no request hangs on a frozen Redis
        redis = [e for e in exchanges if e.route in REDIS_ROUTES]
        assert max(e.seconds for e in redis) < SOCKET_TIMEOUT + 1.5
        during = [e for e in exchanges if frozen <= e.sent < e.done < thawing]
        redis_during = [e for e in during if e.route in REDIS_ROUTES]
        assert redis_during
        assert {e.status for e in redis_during} == {503}
        assert {e.status for e in during if e.route in QUIET_ROUTES} == {200}
        assert [v.prefs_lost for v in visitors] == [[]] * len(visitors)
        assert recovery < 1.0
        after = [e for e in exchanges if e.sent > recovered]
        assert after and {e.status for e in after} == {200}
        # Redis kept its data: nobody was signed out, nothing half-written
        assert [v.signed_out for v in visitors] == [[]] * len(visitors)
        assert_index_agrees_with_sessions(client, tracker)
    waits = sorted(e.seconds for e in exchanges if e.status == 503)
    figures.append(
        f'Redis frozen (SIGSTOP) for {thawing - frozen:.2f} s under traffic, '
        f'socket_timeout {SOCKET_TIMEOUT} s: {summary(exchanges, during)}; '
        f'503s answered in {waits[0]:.2f}-{waits[-1]:.2f} s (median '
        f'{statistics.median(waits):.2f} s); recovered '
        f'{recovery * 1000:.0f} ms after SIGCONT'
    )


# --- the timeouts ------------------------------------------------------------


def client_options(client):
    options = client.connection_pool.connection_kwargs
    return options['socket_timeout'], options['socket_connect_timeout']


def test_redis_clients_have_a_2_s_socket_and_1_s_connect_timeout_by_default(
    redis_url,
):
    config = make_config(redis_url)
    config.commit()
    tracker = config.registry.getUtility(IUserIndex)
    assert client_options(tracker.factory.redis) == (2.0, 1.0)
    assert tracker.index.client is tracker.factory.redis
    factory = RedisSessionFactory(SECRET, redis_url=redis_url)
    assert client_options(factory.redis) == (2.0, 1.0)


def test_the_timeouts_of_the_ini_file_reach_the_client(tmp_path, redis_url):
    ini = tmp_path / 'app.ini'
    ini.write_text(
        '[app:main]\n'
        'use = call:tests.scriptapp:main\n'
        f'session_suite.redis_url = {redis_url}\n'
        'session_suite.namespace.main.redis_socket_timeout = 0.3\n'
        'session_suite.namespace.main.redis_connect_timeout = 0.25\n'
    )
    tracker = get_app(str(ini)).registry.getUtility(IUserIndex)
    assert client_options(tracker.factory.redis) == (0.3, 0.25)
    assert tracker.index.client is tracker.factory.redis


def test_a_login_lost_to_a_stalled_redis_does_not_lock_out_its_retry():
    from webtest import TestApp

    from pyramid_session_suite.events import SessionRegistered

    with private_redis() as server:
        app = faults_app(
            server.url,
            **{
                'session_suite.policy.lock_seconds': '300',
                'session_suite.redis_socket_timeout': '0.3',
            },
        )
        tracker = app.registry.getUtility(IUserIndex)
        stalls = []

        def stall_once(event):
            # Redis stalls after the registration, which wrote the session,
            # before the request's other commands; it wakes once the
            # request has given up
            if not stalls:
                stalls.append(threading.Timer(0.8, wake))
                server.process.send_signal(signal.SIGSTOP)
                stalls[0].start()

        def wake():
            server.process.send_signal(signal.SIGCONT)

        app.registry.registerHandler(stall_once, (SessionRegistered,))
        browser = TestApp(app, extra_environ={'REMOTE_ADDR': '192.0.2.1'})
        browser.get('/whoami?write=1')
        res = browser.get('/login?user=alice', status=503)
        assert 'Set-Cookie' not in res.headers
        stalls[0].join()
        # the login's session is in Redis: a session that no browser
        # holds, counted by the index
        client = server.client()
        wait_until(lambda: tracker.index.count('alice') == 1)
        [ghost_key] = live_keys(client, '*:main:{*')
        assert is_signed_in(own_records(client, ghost_key))
        [ghost] = [entry['handle'] for entry in tracker.index.list('alice')]
        # the same browser tries again: its lost login does not count
        browser.get('/login?user=alice')
        assert browser.get('/whoami').json['user'] == 'alice'
        assert tracker.index.count('alice') == 1
        session_id = tracker.factory.session_id_from_cookie(
            browser.cookies['main']
        )
        [entry] = tracker.index.list('alice')
        assert entry['handle'] == tracker.index.handle(session_id) != ghost
        # the ghost is gone (its slot may hold the retry's session)
        assert live_keys(client, '*:main:{*') == [redis_key(session_id)]
        # another browser is still held off by the lock
        other = TestApp(app, extra_environ={'REMOTE_ADDR': '192.0.2.2'})
        other.get('/login?user=alice', status=409)
