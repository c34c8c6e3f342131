"""Unique and timed sessions, across threads, against a real Redis."""

import threading
import time
from pyramid.interfaces import IRequestFactory
import pytest
from webtest import TestApp

from pyramid_session_suite.events import LoginRefused, SessionExpired
from pyramid_session_suite.interfaces import IUserIndex

from .conftest import ended_reason, live_keys
from .usersapp import make_config

POLICY = 'pyramid_session_suite.policy'


def policy_app(redis_url, events=None, **settings):
    settings = {f'session_suite.policy.{k}': v for k, v in settings.items()}
    config = make_config(redis_url, include=POLICY, **settings)
    if events is not None:
        config.add_subscriber(events.append, LoginRefused)
        config.add_subscriber(events.append, SessionExpired)
    config.add_route('home', '/')
    config.add_view(lambda request: {}, route_name='home', renderer='json')
    app = config.make_wsgi_app()
    return app, config.registry.getUtility(IUserIndex)


def browser(app):
    return TestApp(app, extra_environ={'REMOTE_ADDR': '198.51.100.7'})


def test_a_second_login_within_the_lock_is_refused(redis_url, redis_client):
    events = []
    app, tracker = policy_app(redis_url, events)
    first, second = browser(app), browser(app)
    first.get('/login?user=alice')
    keys = sorted(redis_client.keys('*'))
    res = second.get('/login?user=alice', status=409)
    assert 200 < int(res.headers['Retry-After']) <= 300
    assert 'signed in elsewhere' in res.text
    assert 'main' not in second.cookies
    assert sorted(redis_client.keys('*')) == keys  # nothing changed
    assert [type(e).__name__ for e in events] == ['LoginRefused']
    assert first.get('/whoami').json['user'] == 'alice'
    json = second.get(
        '/login?user=alice', headers={'Accept': 'application/json'},
        status=409,
    )  # fmt: skip
    assert json.json['code'] == '409 Conflict'


def test_retry_after_never_exceeds_the_lock(redis_url):
    """Even when the other session's activity was recorded by a process
    whose clock is a minute ahead."""
    ahead, ahead_tracker = policy_app(redis_url, lock_seconds='60')
    now = ahead_tracker.index.clock
    ahead_tracker.index.clock = lambda: now() + 60_000
    browser(ahead).get('/login?user=alice')
    app, tracker = policy_app(redis_url, lock_seconds='60')
    res = browser(app).get('/login?user=alice', status=409)
    assert 55 < int(res.headers['Retry-After']) <= 60


def test_after_the_lock_the_oldest_session_is_displaced(redis_url):
    app, tracker = policy_app(redis_url, lock_seconds='60')
    first, second = browser(app), browser(app)
    first.get('/login?user=alice')
    now = tracker.index.clock
    tracker.index.clock = lambda: now() + 61_000  # first idle for 61 s
    second.get('/login?user=alice')
    assert second.get('/whoami').json['user'] == 'alice'
    # the displaced browser is told, once, and is anonymous afterwards
    res = first.get('/whoami', status=401)
    assert res.headers['X-Session-Ended'] == 'displaced'
    assert 'signed in somewhere else' in res.text
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    assert first.get('/whoami').json['user'] is None
    assert tracker.index.count('alice') == 1


def test_without_a_lock_the_newest_login_wins(redis_url):
    app, tracker = policy_app(redis_url, lock_seconds='0')
    first, second = browser(app), browser(app)
    first.get('/login?user=alice')
    second.get('/login?user=alice')
    first.get('/whoami', status=401)
    assert second.get('/whoami').json['user'] == 'alice'


def test_max_sessions_two(redis_url):
    app, tracker = policy_app(redis_url, max_sessions='2')
    one, two, three = browser(app), browser(app), browser(app)
    one.get('/login?user=alice')
    two.get('/login?user=alice')
    three.get('/login?user=alice', status=409)
    assert tracker.index.count('alice') == 2
    assert browser(app).get('/login?user=bob').status_int == 200


def test_zero_means_unlimited(redis_url):
    app, tracker = policy_app(redis_url, max_sessions='0')
    for _ in range(5):
        browser(app).get('/login?user=alice')
    assert tracker.index.count('alice') == 5


def race(app, count=40):
    """``count`` browsers log alice in at the same moment; return their
    statuses and the browsers."""
    barrier = threading.Barrier(count)
    browsers = [browser(app) for _ in range(count)]
    statuses = [None] * count

    def run(i):
        barrier.wait()
        statuses[i] = browsers[i].get('/login?user=alice', expect_errors=True)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return [res.status_int for res in statuses], browsers


def test_forty_concurrent_logins_admit_exactly_one(redis_url, redis_client):
    app, tracker = policy_app(redis_url)
    statuses, browsers = race(app)
    assert sorted(statuses) == [200] + [409] * 39
    assert tracker.index.count('alice') == 1
    assert len(live_keys(redis_client, '*:main:*')) == 1
    signed_in = [b for b in browsers if b.get('/whoami').json['user']]
    assert len(signed_in) == 1


def test_forty_concurrent_logins_without_lock_leave_one(
    redis_url, redis_client
):
    app, tracker = policy_app(redis_url, lock_seconds='0')
    statuses, browsers = race(app)
    assert statuses == [200] * 40
    assert tracker.index.count('alice') == 1
    assert len(live_keys(redis_client, '*:main:*')) == 1
    signed_in = [
        b
        for b in browsers
        if b.get('/whoami', expect_errors=True).status_int == 200
        and b.get('/whoami').json['user']
    ]
    assert len(signed_in) == 1


def test_absolute_timeout_ends_the_session(redis_url, redis_client):
    events = []
    app, tracker = policy_app(redis_url, events, absolute_timeout='100')
    alice = browser(app)
    alice.get('/login?user=alice')
    assert alice.get('/whoami').json['user'] == 'alice'
    [key] = live_keys(redis_client, '*:main:*')
    # a day and 50 s later: no 24-hour wrap makes it look 50 s old
    tracker.policy.clock = lambda: time.time() + 86400 + 50
    res = alice.get('/whoami', status=401)
    assert res.headers['X-Session-Ended'] == 'absolute'
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    assert [(type(e).__name__, e.kind) for e in events] == [
        ('SessionExpired', 'absolute')
    ]
    assert tracker.index.count('alice') == 0
    assert live_keys(redis_client, '*:main:*') == []
    # ended in place: what a later request of that cookie is told
    assert ended_reason(redis_client, key) == 'expired'
    assert alice.get('/whoami').json['user'] is None


def test_absolute_timeout_is_not_early(redis_url):
    app, tracker = policy_app(redis_url, absolute_timeout='100')
    alice = browser(app)
    alice.get('/login?user=alice')
    tracker.policy.clock = lambda: time.time() + 99
    assert alice.get('/whoami').json['user'] == 'alice'


def test_idle_timeout(redis_url):
    app, tracker = policy_app(redis_url, idle_timeout='60')
    assert tracker.touch_interval == 6
    alice = browser(app)
    alice.get('/login?user=alice')
    tracker.policy.clock = lambda: time.time() + 30
    assert alice.get('/whoami').json['user'] == 'alice'
    tracker.policy.clock = lambda: time.time() + 66
    res = alice.get('/whoami', status=401)
    assert res.headers['X-Session-Ended'] == 'idle'


def test_clock_skew_between_workers(redis_url):
    """Two workers share Redis; one clock runs 4 s ahead, the other 4 s
    behind. Neither ends a session early, and both end it at the latest
    clock_skew + 4 s late."""
    ahead, tracker_a = policy_app(redis_url, absolute_timeout='60')
    behind, tracker_b = policy_app(redis_url, absolute_timeout='60')
    start = time.time()
    tracker_a.policy.clock = lambda: time.time() + 4
    alice = browser(ahead)
    # the login happens on the worker whose clock is ahead
    alice.get('/login?user=alice')

    def at(worker, tracker, offset, real):
        tracker.policy.clock = lambda: start + real + offset
        app = TestApp(worker, extra_environ={'REMOTE_ADDR': '198.51.100.7'})
        app.set_cookie('main', alice.cookies['main'])
        return app.get('/whoami', expect_errors=True).status_int

    assert at(behind, tracker_b, -4, 59) == 200
    assert at(ahead, tracker_a, +4, 59) == 200
    assert at(behind, tracker_b, -4, 60 + 5 + 4 + 8 + 1) == 401


def test_redirect_to_the_login_route(redis_url):
    app, tracker = policy_app(
        redis_url, absolute_timeout='10', on_end='redirect',
        login_route='login',
    )  # fmt: skip
    alice = browser(app)
    alice.get('/login?user=alice')
    tracker.policy.clock = lambda: time.time() + 3600
    res = alice.get('/whoami', status=303)
    assert res.location.endswith('/login?session_ended=absolute')


def test_steady_state_checks_cost_no_round_trip(redis_url, round_trips):
    app, tracker = policy_app(redis_url, absolute_timeout='3600')
    client = round_trips.client(redis_url)
    client.ping()
    tracker.factory.redis = client
    alice = browser(app)
    alice.get('/login?user=alice')
    round_trips.reset()
    alice.get('/whoami')
    assert round_trips.trips == [['GETEX']]
    round_trips.reset()
    alice.get('/')  # the view does not read the session: the policy does
    assert round_trips.trips == [['GETEX']]


def test_settings_are_checked(redis_url):
    from pyramid.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match='login_route is required'):
        policy_app(redis_url, on_end='redirect')
    with pytest.raises(ConfigurationError, match='max_sessions: must be 0'):
        policy_app(redis_url, max_sessions='-1')
    with pytest.raises(ConfigurationError, match='unknown setting'):
        policy_app(redis_url, max_session='1')


def test_the_tween_is_under_the_exception_view(redis_url):
    app, tracker = policy_app(redis_url)
    from pyramid.interfaces import ITweens

    names = app.registry.getUtility(ITweens).implicit()
    names = [name for name, _ in names]
    assert names.index('pyramid.tweens.excview_tween_factory') < names.index(
        'pyramid_session_suite.policy.policy_tween_factory'
    )
    assert app.registry.queryUtility(IRequestFactory) is not None


def test_signing_in_again_in_the_same_browser_is_not_refused(redis_url):
    app, tracker = policy_app(redis_url)
    alice = browser(app)
    alice.get('/login?user=alice')
    first = tracker.index.list('alice')
    alice.get('/login?user=alice')
    [entry] = tracker.index.list('alice')
    assert entry['handle'] != first[0]['handle']  # rotated again
    assert alice.get('/whoami').json['user'] == 'alice'


def test_skipped_paths_and_static_assets_do_not_load_the_session(
    redis_url, round_trips, tmp_path
):
    (tmp_path / 'app.css').write_text('body {}')
    settings = {
        'session_suite.policy.skip_paths': '/health',
        'session_suite.policy.absolute_timeout': '60',
    }
    config = make_config(redis_url, include=POLICY, **settings)
    config.add_static_view('static', str(tmp_path))
    config.add_route('health', '/health/ping')
    config.add_view(lambda r: {}, route_name='health', renderer='json')
    app = config.make_wsgi_app()
    tracker = app.registry.getUtility(IUserIndex)
    client = round_trips.client(redis_url)
    client.ping()
    tracker.factory.redis = client
    alice = browser(app)
    alice.get('/login?user=alice')
    tracker.policy.clock = lambda: time.time() + 3600  # expired by now
    round_trips.reset()
    assert alice.get('/static/app.css').text == 'body {}'
    assert alice.get('/health/ping').json == {}
    assert round_trips.trips == []
    alice.get('/whoami', status=401)  # the policy still runs elsewhere


def test_a_login_displaced_before_it_was_written_is_told_so(redis_url):
    def login_then_displaced(request):
        from pyramid_session_suite import login

        request.response.headerlist.extend(login(request, 'alice'))
        # a concurrent login elsewhere ends it before the response
        index = request.registry.getUtility(IUserIndex).index
        index.revoke_all('alice', reason='displaced')
        return {'user': 'alice'}

    config = make_config(redis_url, include=POLICY)
    config.add_route('racy', '/racy')
    config.add_view(login_then_displaced, route_name='racy', renderer='json')
    alice = browser(config.make_wsgi_app())
    res = alice.get('/racy')
    assert 'main=' in res.headers['Set-Cookie']
    res = alice.get('/whoami', status=401)
    assert res.headers['X-Session-Ended'] == 'displaced'
