"""Concurrent requests of one session, through a real waitress server and
a real Redis.

A write applies only the keys its request set, changed in place or
deleted, merged in Redis into what the session holds at that moment:
requests that change different keys keep each other's changes, the later
write of one key wins, and a session that ended (logout, revocation,
expiry) is never brought back by a request in flight.

The figures measured are written to ``test-artifacts/concurrent-writes.txt``.
"""

import threading
import time
import pytest

from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis.login_records import redis_key
from pyramid_session_suite.redis.session import decode, json_loads
from pyramid_session_suite.redis.stored import is_ended
from pyramid_session_suite.user_index.store import user_tag

from .conftest import ended_reason, live_keys, serve, stored
from .test_faults import Browser
from .usersapp import IPHONE, make_config

#: where the figures measured are written, under ``test-artifacts/``
FIGURES = 'concurrent-writes.txt'

POLICY = 'pyramid_session_suite.policy'


class Gate:
    """Holds requests in their view, session loaded, until the test opens
    their gate: requests in flight for as long as a test needs."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = {}

    def event(self, name):
        with self.lock:
            return self.events.setdefault(name, threading.Event())

    def hold(self, name):
        self.event('loaded ' + name).set()
        self.event('open ' + name).wait(10)

    def wait_loaded(self, *names):
        for name in names:
            assert self.event('loaded ' + name).wait(10)

    def open(self, name):
        self.event('open ' + name).set()

    def open_all(self):
        with self.lock:
            names = [n for n in self.events if n.startswith('open ')]
        for name in names:
            self.events[name].set()


def writers_app(redis_url, gate, include=POLICY, **extra):
    """The logins app, and ``/write?key=&value=`` which sets one key of
    the Redis session and answers with the whole session it wrote."""
    settings = {'session_suite.policy.max_sessions': '0'}
    settings.update(extra)
    config = make_config(redis_url, include=include, **settings)

    def write(request):
        session = request.session
        session.get('loaded')
        if request.params.get('hold'):
            gate.hold(request.params['hold'])
        session[request.params['key']] = int(request.params['value'])
        return {'view': dict(session)}

    config.add_route('write', '/write')
    config.add_view(write, route_name='write', renderer='json')
    return config.make_wsgi_app()


def send(url, cookie, path):
    """A request carrying the session cookie ``cookie``, whatever the
    answers to other requests said (a request already in flight)."""
    browser = Browser(url)
    browser.cookies['main'] = cookie
    return browser.get(path)


class Writer(threading.Thread):
    """Writes its own key of the session of ``cookie`` until stopped."""

    def __init__(self, url, cookie, key, stop, limit=None):
        super().__init__(daemon=True)
        self.url, self.cookie, self.key = url, cookie, key
        self.stop, self.limit = stop, limit
        self.exchanges = []

    def run(self):
        value = 0
        while not self.stop.is_set() and value != self.limit:
            value += 1
            path = f'/write?key={self.key}&value={value}'
            self.exchanges.append(send(self.url, self.cookie, path))


class Held(threading.Thread):
    """One request of the session of ``cookie``, held in its view; it sets
    ``key`` (its name) to ``value``."""

    def __init__(self, url, cookie, name, key=None, value=1):
        super().__init__(daemon=True)
        key = key or name
        self.path = f'/write?key={key}&value={value}&hold={name}'
        self.url, self.cookie = url, cookie
        self.exchange = None

    def run(self):
        self.exchange = send(self.url, self.cookie, self.path)


def session_id(app, cookie):
    tracker = app.registry.queryUtility(IUserIndex)
    if tracker is not None:
        return tracker.factory.session_id_from_cookie(cookie)
    intr = app.registry.introspector.get('session_suite namespaces', 'main')
    return intr['factory'].session_id_from_cookie(cookie)


def cookies_set(exchanges, name='main'):
    """The values set (not deleted) for cookie ``name``."""
    values = []
    for exchange in exchanges:
        for header in exchange.set_cookies:
            cookie, _, rest = header.partition('=')
            value = rest.partition(';')[0]
            if cookie == name and value and 'Max-Age=0' not in header:
                values.append(value)
    return values


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.open_all()


# --- the semantics -----------------------------------------------------------


def test_two_requests_that_change_different_keys_both_keep_them(
    redis_url, redis_client, gate
):
    app = writers_app(redis_url, gate)
    with serve(app) as url:
        browser = Browser(url)
        browser.get('/write?key=base&value=1')
        cookie = browser.cookies['main']
        first = Held(url, cookie, 'first')
        second = Held(url, cookie, 'second')
        first.start()
        second.start()
        gate.wait_loaded('first', 'second')  # both read {base}
        gate.open('first')
        first.join(10)
        gate.open('second')
        second.join(10)
    assert first.exchange.json['view'] == {'base': 1, 'first': 1}
    assert second.exchange.json['view'] == {'base': 1, 'second': 1}
    data = stored(redis_client, session_id(app, cookie))['m']
    assert data == {'base': 1, 'first': 1, 'second': 1}
    assert cookies_set([first.exchange, second.exchange]) == []


def test_the_later_write_of_one_key_wins(redis_url, redis_client, gate):
    app = writers_app(redis_url, gate)
    with serve(app) as url:
        browser = Browser(url)
        browser.get('/write?key=base&value=1')
        cookie = browser.cookies['main']
        first = Held(url, cookie, 'first', key='shared', value=1)
        second = Held(url, cookie, 'second', key='shared', value=2)
        first.start()
        second.start()
        gate.wait_loaded('first', 'second')
        gate.open('second')
        second.join(10)
        gate.open('first')  # loaded first, written last
        first.join(10)
    data = stored(redis_client, session_id(app, cookie))['m']
    assert data == {'base': 1, 'shared': 1}


def test_concurrent_writers_keep_every_last_value(
    redis_url, redis_client, figures
):
    app = writers_app(redis_url, Gate())
    with serve(app) as url:
        browser = Browser(url)
        assert browser.get('/login?user=alice').status == 200
        browser.get('/write?key=base&value=1')
        cookie = browser.cookies['main']
        sid = session_id(app, cookie)
        created = stored(redis_client, sid)['c']
        stop = threading.Event()
        writers = [Writer(url, cookie, f'w{n}', stop, 15) for n in range(6)]
        samples = []

        def sample():
            while not stop.is_set():
                samples.append(redis_client.get(redis_key(sid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(30)
        stop.set()
        sampler.join(5)
    exchanges = [e for w in writers for e in w.exchanges]
    assert len(exchanges) == 90
    assert {e.status for e in exchanges} == {200}
    # the cookie never changes: the same session all along
    assert cookies_set(exchanges) == []
    assert len(samples) > 50
    for raw in samples:
        payload = decode(raw, json_loads)[0]
        assert payload['c'] == created
        assert payload['m']['auth.userid'] == 'alice'
    final = stored(redis_client, sid)['m']
    lost = [n for n in range(6) if final.get(f'w{n}') != 15]
    figures.append(
        f'6 writers x 15 requests on one session: {len(samples)} samples of '
        f'the stored session, each whole; {len(lost)} of 6 writers\' last '
        'values missing from the final session'
    )
    assert lost == []
    assert final['base'] == 1


# --- an ended session stays ended ------------------------------------------


def end_among_writers(url, cookie, gate, end):
    """Two requests of ``cookie`` held with their session loaded and three
    writing all along; ``end()`` ends the session meanwhile; the held ones
    then write. Return every exchange of the writers."""
    held = [Held(url, cookie, f'held{n}') for n in range(2)]
    for thread in held:
        thread.start()
    gate.wait_loaded('held0', 'held1')
    stop = threading.Event()
    writers = [Writer(url, cookie, f'w{n}', stop) for n in range(3)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(0.15)
        end()
    finally:
        gate.open_all()
        for thread in held:
            thread.join(10)
        time.sleep(0.2)
        stop.set()
        for writer in writers:
            writer.join(10)
    exchanges = [e for w in writers for e in w.exchanges]
    exchanges += [thread.exchange for thread in held]
    assert len(exchanges) > 10
    assert {e.status for e in exchanges} == {200}
    # the held requests wrote after the session ended
    for n, thread in enumerate(held):
        assert thread.exchange.json['view'][f'held{n}'] == 1
    return exchanges


def gone(redis_client, sid):
    """Whether the session ``sid`` is gone (deleted, or ended in place)."""
    value = redis_client.get(redis_key(sid))
    return value is None or is_ended(value)


def assert_stays_deleted(redis_client, sid, times=10):
    for _ in range(times):
        assert gone(redis_client, sid)
        time.sleep(0.03)


def test_an_invalidated_session_stays_deleted_among_concurrent_writers(
    store, gate
):
    connection, redis_client = store
    app = writers_app(connection, gate, include='pyramid_session_suite')
    with serve(app) as url:
        browser = Browser(url)
        browser.get('/login?user=alice')
        browser.get('/write?key=base&value=1')
        cookie = browser.cookies['main']
        sid = session_id(app, cookie)

        def logout():
            res = browser.get('/logout')  # session.invalidate()
            assert res.status == 200
            assert 'main' not in browser.cookies
            assert gone(redis_client, sid)

        exchanges = end_among_writers(url, cookie, gate, logout)
    assert_stays_deleted(redis_client, sid)
    # the cookie is never set back to the ended session; a request that
    # came too late got a new, empty session under another id
    assert cookie not in cookies_set(exchanges)
    for key in redis_client.scan_iter('session_suite:main:*'):
        assert key.decode() != sid
        data = stored(redis_client, key)['m']
        assert 'auth.userid' not in data and 'base' not in data


@pytest.mark.parametrize(
    'ending, reason',
    [
        ('logout', 'logout'),
        ('revoked from another browser', 'revoked'),
        ('revoked through IUserIndex', 'revoked'),
    ],
)
def test_an_ended_session_is_not_resurrected_by_writers_in_flight(
    redis_url, redis_client, gate, ending, reason
):
    app = writers_app(
        redis_url, gate, **{'session_suite.user_index.touch_interval': '0'}
    )
    tracker = app.registry.getUtility(IUserIndex)
    z = tracker.index.index_key('alice')
    with serve(app) as url:
        firefox, iphone = Browser(url), Browser(url, IPHONE)
        firefox.get('/login?user=alice')
        firefox.get('/write?key=base&value=1')
        iphone.get('/login?user=alice')
        handle = firefox.get('/mine').json['current']
        cookie = firefox.cookies['main']
        sid = session_id(app, cookie)
        kept = session_id(app, iphone.cookies['main'])

        def end():
            if ending == 'logout':
                assert firefox.get('/logout').status == 200
            elif ending == 'revoked from another browser':
                res = iphone.get(f'/mine?do=revoke&handle={handle}')
                assert res.json == {'count': 1}
            else:
                assert tracker.revoke(None, 'alice', [handle]) == 1
            assert gone(redis_client, sid)

        exchanges = end_among_writers(url, cookie, gate, end)
    assert_stays_deleted(redis_client, sid)
    assert ended_reason(redis_client, sid) == reason
    # the index forgot it, and writers in flight (each one touching the
    # index) did not bring its entry back
    kept_slot = redis_key(kept).rpartition(':')[2]
    assert redis_client.zrange(z, 0, -1) == [kept_slot.encode()]
    listed = [entry.handle for entry in tracker.index.list('alice')]
    assert listed == [tracker.index.handle(kept)]
    assert cookie not in cookies_set(exchanges)
    # alice's only session is the iPhone's; the latecomers are anonymous
    tag = '{' + user_tag('alice') + '}'
    theirs = live_keys(redis_client, f'session_suite:main:{tag}:*')
    assert theirs == [redis_key(kept)]
    for value in cookies_set(exchanges):
        latecomer = stored(redis_client, session_id(app, value))
        assert 'auth.userid' not in latecomer['m']
