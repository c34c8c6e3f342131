"""``session_lock``: requests of one session to a locked view run one at a
time, over real HTTP and a real Redis."""

from concurrent.futures import ThreadPoolExecutor
import threading
import time
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
import pytest

from pyramid_session_suite.redis.locking import (
    SessionLock,
    SessionLocked,
    lock_key,
)

from .conftest import SECRET, serve, stored
from .test_faults import Browser
from .usersapp import redis_main


def count(request):
    """A read-modify-write that takes a while."""
    session = request.session
    n = session.get('n', 0)
    time.sleep(0.02)
    session['n'] = n + 1
    return {'n': n + 1}


def hold(request):
    """Held until the test lets it go; sets ``held``."""
    request.registry['gate'].wait(10)
    request.session['held'] = True
    return {}


def other(request):
    request.session['other'] = request.params.get('value', 1)
    return {}


def lock_app(connection, **settings):
    settings = dict(redis_main(connection), **settings)
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    config.registry['gate'] = threading.Event()
    for name, view, lock in [
        ('count', count, 'main'),
        ('count_unlocked', count, None),
        ('hold', hold, 'main'),
        ('other', other, None),
    ]:
        config.add_route(name, '/' + name)
        config.add_view(
            view, route_name=name, renderer='json', session_lock=lock
        )
    return config.make_wsgi_app()


def overlapping(url, cookies, path, times):
    def send(_):
        browser = Browser(url)
        browser.cookies.update(cookies)
        return browser.get(path)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(send, range(times)))


def test_twenty_locked_increments_count_twenty(connection):
    app = lock_app(connection)
    with serve(app, threads=8) as url:
        browser = Browser(url)
        browser.get('/other')
        answers = overlapping(url, browser.cookies, '/count', 20)
        assert {answer.status for answer in answers} == {200}
        assert sorted(a.json['n'] for a in answers) == list(range(1, 21))
        unlocked = overlapping(url, browser.cookies, '/count_unlocked', 20)
        final = browser.get('/count').json['n']
    # without the lock, overlapping increments overwrite each other
    assert {answer.status for answer in unlocked} == {200}
    assert final < 20 + 20 + 1


def test_a_request_that_cannot_get_the_lock_is_told_to_retry(
    redis_url, redis_client
):
    app = lock_app(
        redis_url, **{'session_suite.namespace.main.lock_wait': '0.2'}
    )
    with serve(app, threads=8) as url:
        browser = Browser(url)
        browser.get('/other')
        cookies = dict(browser.cookies)
        holder = threading.Thread(
            target=overlapping, args=(url, cookies, '/hold', 1)
        )
        holder.start()
        factory = session_factory(app)
        sid = factory.session_id_from_cookie(cookies['main'])
        wait_for(lambda: redis_client.exists(lock_key(sid)))
        before = redis_client.get(sid)
        start = time.monotonic()
        [answer] = overlapping(url, cookies, '/count', 1)
        waited = time.monotonic() - start
        # other views of the same session are never blocked
        [free] = overlapping(url, cookies, '/other?value=2', 1)
        app.registry['gate'].set()
        holder.join(10)
    assert answer.status == 409
    assert int(answer.headers['Retry-After']) >= 1
    assert 'retry' in answer.body
    assert 'Traceback' not in answer.body
    assert answer.set_cookies == []
    assert 0.2 <= waited < 2
    assert free.status == 200
    data = stored(redis_client, sid)['m']
    assert 'n' not in data  # the refused request changed nothing
    assert data['held'] is True and data['other'] == '2'
    assert before != redis_client.get(sid)
    assert redis_client.exists(lock_key(sid)) == 0  # given back


@pytest.mark.parametrize(
    'lock_timeout, retry_after', [('0.5', 0), ('2.5', 2), ('30', 30)]
)
def test_retry_after_never_exceeds_the_lock(
    redis_url, lock_timeout, retry_after
):
    app = lock_app(
        redis_url,
        **{
            'session_suite.namespace.main.lock_timeout': lock_timeout,
            'session_suite.namespace.main.lock_wait': '0',
        },
    )
    factory = session_factory(app)
    holder = SessionLock(factory, 'session_suite:main:sid')
    holder.acquire()
    waiter = SessionLock(factory, 'session_suite:main:sid')
    with pytest.raises(SessionLocked) as info:
        waiter.acquire()
    assert info.value.headers['Retry-After'] == str(retry_after)
    # given back meanwhile: retry at once
    holder.release_if_held()
    assert waiter.locked().headers['Retry-After'] == '0'


def test_a_lock_whose_holder_died_expires(redis_url, redis_client):
    app = lock_app(
        redis_url, **{'session_suite.namespace.main.lock_wait': '5'}
    )
    with serve(app) as url:
        browser = Browser(url)
        browser.get('/other')
        sid = session_factory(app).session_id_from_cookie(
            browser.cookies['main']
        )
        # a worker took the lock and died: nobody gives it back
        redis_client.set(lock_key(sid), 'dead worker', px=400)
        start = time.monotonic()
        answer = browser.get('/count')
        waited = time.monotonic() - start
    assert answer.status == 200 and answer.json == {'n': 1}
    assert 0.3 < waited < 3


def test_the_lock_is_held_for_lock_timeout_at_most(redis_url, redis_client):
    app = lock_app(
        redis_url, **{'session_suite.namespace.main.lock_timeout': '0.5'}
    )
    with serve(app) as url:
        browser = Browser(url)
        browser.get('/other')
        cookies = dict(browser.cookies)
        sid = session_factory(app).session_id_from_cookie(cookies['main'])
        holder = threading.Thread(
            target=overlapping, args=(url, cookies, '/hold', 1)
        )
        holder.start()
        wait_for(lambda: redis_client.exists(lock_key(sid)))
        assert 0 < redis_client.pttl(lock_key(sid)) <= 500
        # the holder is stuck: its lock expires, the next request runs
        answer = browser.get('/count')
        app.registry['gate'].set()
        holder.join(10)
    assert answer.status == 200


def test_a_locked_view_reads_the_session_once_it_holds_the_lock(
    redis_url, round_trips, counted
):
    from pyramid_session_suite import RedisSessionFactory

    config = Configurator()
    config.include('pyramid_session_suite')
    config.register_session_factory(
        'main',
        RedisSessionFactory(SECRET, redis_client=counted, cookie_name='main'),
    )
    config.set_session_factory(lambda request: request.session_multi['main'])

    config.add_tween('tests.test_session_lock.early_tween_factory')
    config.add_route('count', '/count')
    config.add_view(count, route_name='count', renderer='json',
                    session_lock='main')  # fmt: skip
    from webtest import TestApp

    app = TestApp(config.make_wsgi_app())
    assert app.get('/count').json == {'n': 1}  # a new session: no lock
    round_trips.reset()
    assert app.get('/count').json == {'n': 2}
    # the lock, the early read, the read under the lock, and the write
    # that gives the lock back
    assert round_trips.trips == [
        ['GETEX'],
        ['SET'],
        ['GETEX'],
        ['EVAL', 'EVAL'],
    ]


def test_session_lock_names_a_redis_namespace(redis_url):
    with pytest.raises(ConfigurationError) as error:
        app_with_lock(redis_url, 'nope')
    assert "session_lock='nope'" in str(error.value)
    assert 'no namespace' in str(error.value)
    with pytest.raises(ConfigurationError) as error:
        app_with_lock(redis_url, 'prefs')
    assert 'only Redis sessions can be locked' in str(error.value)


def test_lock_settings_are_checked(redis_url):
    for name, value in [('lock_timeout', '0'), ('lock_wait', '-1')]:
        key = f'session_suite.namespace.main.{name}'
        with pytest.raises(ConfigurationError) as error:
            lock_app(redis_url, **{key: value})
        assert key in str(error.value)


def app_with_lock(redis_url, namespace):
    settings = redis_main(redis_url)
    settings['session_suite.namespaces'] = 'main prefs'
    settings['session_suite.namespace.prefs.secret'] = SECRET
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    config.add_route('count', '/count')
    config.add_view(count, route_name='count', session_lock=namespace)
    return config.make_wsgi_app()


def early_tween_factory(handler, registry):
    """A tween that reads the session before the lock is held."""

    def early(request):
        request.session_multi['main'].get('n')
        return handler(request)

    return early


def session_factory(app):
    intr = app.registry.introspector.get('session_suite namespaces', 'main')
    return intr['factory']


def wait_for(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)
