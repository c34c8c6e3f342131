"""Per-user session management, against a real Redis server."""

import time
from pyramid.csrf import get_csrf_token
from pyramid.interfaces import IRequestFactory
from pyramid.request import Request, apply_request_extensions
import pytest
import redis
from webtest import TestApp

from pyramid_session_suite.events import (
    SessionEnded,
    SessionRegistered,
    SessionRevoked,
)
from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis.login_records import redis_key
from pyramid_session_suite.user_index.store import user_tag

from .conftest import ended_reason, live_keys, stored
from .usersapp import FIREFOX, IPHONE, add_plain_views, make_config


def browser(app, ua=FIREFOX, ip='198.51.100.7'):
    return TestApp(
        app, extra_environ={'HTTP_USER_AGENT': ua, 'REMOTE_ADDR': ip}
    )


@pytest.fixture
def events():
    return []


@pytest.fixture
def config(redis_url, events):
    config = make_config(redis_url)
    for event in (SessionRegistered, SessionRevoked, SessionEnded):
        config.add_subscriber(events.append, event)
    return config


@pytest.fixture
def app(config):
    return config.make_wsgi_app()


def test_a_login_is_listed_with_its_client(app, redis_client):
    firefox = browser(app)
    firefox.get('/login?user=alice')
    listing = firefox.get('/mine').json
    [entry] = listing['sessions']
    assert entry['current'] is True
    assert entry['handle'] == listing['current']
    assert entry['label'] == 'Firefox on Linux'
    assert entry['ip'] == '198.51.100.7'
    assert entry['mobile'] is False
    assert entry['location'] is None
    assert 1190 < entry['expires_in'] <= 1200
    assert entry['created'] <= entry['last_seen']
    assert 'sid' not in entry
    # one user's keys share one hash slot, and all of them expire
    tag = user_tag('alice')
    keys = sorted(k.decode() for k in redis_client.keys('*'))
    assert all('{' + tag + '}' in key for key in keys), keys
    assert all(redis_client.pttl(key) > 0 for key in keys)
    assert not any(entry['handle'] in key for key in keys)


def test_each_browser_sees_all_and_revokes_the_others(app, events):
    firefox, iphone = browser(app), browser(app, IPHONE, '198.51.100.9')
    firefox.get('/login?user=alice')
    iphone.get('/login?user=alice')
    listing = firefox.get('/mine').json['sessions']
    # most recently active first
    assert [e['label'] for e in listing] == [
        'Safari on iPhone',
        'Firefox on Linux',
    ]
    assert [e['mobile'] for e in listing] == [True, False]
    assert [e['current'] for e in listing].count(True) == 1
    assert firefox.get('/mine?do=others').json == {'count': 1}
    # the revoked browser is anonymous on its next request, and told why
    res = iphone.get('/whoami')
    assert res.json == {'user': None, 'n': None, 'ended': 'revoked'}
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    assert 'main' not in iphone.cookies
    assert len(firefox.get('/mine').json['sessions']) == 1
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        'SessionRegistered',
        'SessionRegistered',
        'SessionRevoked',
        'SessionEnded',
    ]
    assert events[2].reason == 'revoked' and events[2].count == 1


def test_revoking_the_current_session_logs_out(app):
    firefox = browser(app)
    firefox.get('/login?user=alice')
    handle = firefox.get('/mine').json['current']
    res = firefox.get('/mine', {'do': 'revoke', 'handle': handle})
    assert res.json == {'count': 1}
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    assert firefox.get('/whoami').json['user'] is None


def test_a_user_cannot_revoke_another_users_session(app):
    alice, bob = browser(app), browser(app)
    alice.get('/login?user=alice')
    bob.get('/login?user=bob')
    bobs = bob.get('/mine').json['current']
    assert alice.get('/mine', {'do': 'revoke', 'handle': bobs}).json == {
        'count': 0
    }
    assert bob.get('/whoami').json['user'] == 'bob'


def test_revoke_all_ends_every_session(app):
    one, two = browser(app), browser(app)
    one.get('/login?user=alice')
    two.get('/login?user=alice')
    assert one.get('/mine?do=all').json == {'count': 2}
    assert one.get('/whoami').json['user'] is None
    assert two.get('/whoami').json['user'] is None


def test_logout_removes_the_entry(app, config):
    one, two = browser(app), browser(app)
    one.get('/login?user=alice')
    two.get('/login?user=alice')
    res = one.get('/logout')
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    tracker = config.registry.getUtility(IUserIndex)
    assert tracker.index.count('alice') == 1


def test_login_rotates_the_session_id(app, redis_client):
    firefox = browser(app)
    firefox.get('/whoami?write=1')
    anonymous = firefox.cookies['main']
    [before] = redis_client.keys('session_suite:main:*')
    firefox.get('/login?user=alice')
    assert firefox.cookies['main'] != anonymous
    keys = redis_client.keys('session_suite:main:*')
    assert before not in keys
    # the data of the anonymous session came along
    assert firefox.get('/whoami').json == {
        'user': 'alice',
        'n': 1,
        'ended': None,
    }


@pytest.mark.parametrize(
    'include', ['pyramid_session_suite', 'pyramid_session_suite.user_index']
)
def test_login_renews_the_csrf_token(redis_url, redis_client, include):
    config = make_config(redis_url, include=include)
    config.set_default_csrf_options(require_csrf=True)
    config.add_route('token', '/token')
    config.add_view(get_csrf_token, route_name='token', renderer='json')
    config.add_route('change', '/change')
    config.add_view(
        lambda request: 'changed', route_name='change', renderer='json'
    )
    firefox = browser(config.make_wsgi_app())
    # a token obtained anonymously (or planted with a session cookie)
    anonymous = firefox.get('/token').json
    firefox.post('/login', {'user': 'alice', 'csrf_token': anonymous})
    [key] = redis_client.keys('session_suite:main:*')
    fresh = firefox.get('/token').json
    assert fresh != anonymous
    res = firefox.post('/change', {'csrf_token': anonymous}, status=400)
    assert 'check_csrf_token(): Invalid token' in res.text
    res = firefox.post('/change', {'csrf_token': fresh}, status=200)
    assert res.json == 'changed'
    assert stored(redis_client, key)['m']['_csrft_'] == fresh
    assert firefox.get('/whoami').json['user'] == 'alice'


def test_steady_state_costs_no_extra_round_trip(
    config, round_trips, redis_url
):
    factory = _counted(config, round_trips, redis_url)
    firefox = browser(config.make_wsgi_app())
    firefox.get('/login?user=alice')
    round_trips.reset()
    firefox.get('/whoami')
    assert round_trips.trips == [['GETEX']]
    round_trips.reset()
    firefox.get('/whoami?write=1')
    assert round_trips.trips == [['GETEX'], ['EVALSHA']]
    assert factory.redis is not None


def test_a_touch_rides_along_with_the_session_write(redis_url, round_trips):
    config = make_config(
        redis_url, **{'session_suite.user_index.touch_interval': '0'}
    )
    _counted(config, round_trips, redis_url)
    app = config.make_wsgi_app()
    firefox = browser(app)
    firefox.get('/login?user=alice')
    # the activity is recorded in milliseconds: the next request comes later
    time.sleep(0.005)
    round_trips.reset()
    firefox.get('/whoami')
    # the touch: the session's last activity, merged, and its deadline in
    # the index (if the user has more than one session)
    touch = ['GETEX'], ['EVAL', 'ZADD', 'PEXPIRE']
    assert round_trips.trips == list(touch)
    # a new IP address is recorded in the session, in the same write
    moved = browser(app, ip='198.51.100.99')
    moved.set_cookie('main', firefox.cookies['main'])
    round_trips.reset()
    moved.get('/whoami')
    assert round_trips.trips == list(touch)
    [entry] = moved.get('/mine').json['sessions']
    assert entry['ip'] == '198.51.100.99'


def test_login_costs(config, round_trips, redis_url):
    _counted(config, round_trips, redis_url)
    firefox = browser(config.make_wsgi_app())
    firefox.get('/login?user=alice')
    assert round_trips.trips == [['EVALSHA'], ['EVALSHA']]
    firefox.get('/logout')
    firefox.get('/whoami?write=1')
    round_trips.reset()
    firefox.get('/login?user=alice')
    assert round_trips.trips == [['GETEX'], ['EVALSHA'], ['DEL', 'EVAL']]


def test_a_session_revoked_in_flight_is_not_resurrected(
    redis_url, redis_client
):
    config = make_config(redis_url)
    tracker = {}

    def race(request):
        session = request.session
        session.get('n')
        tracker['t'].revoke_all(request, 'alice')  # from another browser
        session['n'] = 99
        return {}

    config.add_route('race', '/race')
    config.add_view(race, route_name='race', renderer='json')
    app = config.make_wsgi_app()
    tracker['t'] = config.registry.getUtility(IUserIndex)
    firefox = browser(app)
    firefox.get('/login?user=alice')
    firefox.get('/race')
    assert live_keys(redis_client, 'session_suite:main:*') == []
    assert tracker['t'].index.list('alice') == []
    assert firefox.get('/whoami').json['user'] is None


def test_expired_sessions_are_never_listed(config, app, redis_client):
    one, two = browser(app), browser(app)
    one.get('/login?user=alice')
    two.get('/login?user=alice')
    tracker = config.registry.getUtility(IUserIndex)
    kept = tracker.factory.session_id_from_cookie(one.cookies['main'])
    [gone] = [
        key
        for key in live_keys(redis_client, 'session_suite:main:*')
        if key != redis_key(kept)
    ]
    redis_client.pexpire(gone, 1)  # Redis expires it, nobody is told
    time.sleep(0.01)
    assert redis_client.exists(gone) == 0
    # its entry is pruned by whatever reads the index
    z = tracker.index.index_key('alice')
    assert redis_client.zcard(z) == 2
    assert len(one.get('/mine').json['sessions']) == 1
    assert tracker.index.count('alice') == 1
    # one session left, in the first slot: no index key any more
    assert redis_client.exists(z) == 0


def test_listing_a_thousand_sessions_is_one_round_trip(
    config, redis_url, round_trips, redis_client
):
    _counted(config, round_trips, redis_url)
    tracker = config.registry.getUtility(IUserIndex)
    request_class = config.registry.getUtility(IRequestFactory)
    for n in range(1000):
        request = request_class.blank(
            '/', remote_addr=f'10.0.{n // 250}.{n % 4}'
        )
        request.registry = config.registry
        apply_request_extensions(request)
        session = tracker.session(request)
        session['n'] = n
        tracker.register(request, session, 'bob', limits=False)
    round_trips.reset()
    entries = tracker.index.list('bob')
    assert len(entries) == 1000
    assert round_trips.trips == [['EVALSHA']]
    assert entries[0]['last_seen'] >= entries[-1]['last_seen']
    assert len({entry['handle'] for entry in entries}) == 1000


def test_location_from_a_geoip_database(redis_url, city_db):
    config = make_config(
        redis_url,
        **{
            'session_suite.user_index.geoip_db': str(city_db),
            'session_suite.user_index.trusted_proxies': '1',
        },
    )
    app = TestApp(
        config.make_wsgi_app(),
        extra_environ={
            'REMOTE_ADDR': '10.0.0.1',
            'HTTP_X_FORWARDED_FOR': '81.2.69.160',
        },
    )
    app.get('/login?user=alice')
    [entry] = app.get('/mine').json['sessions']
    assert entry['location'] == 'London, United Kingdom'
    assert entry['ip'] == '81.2.69.160'


def test_the_request_attribute_is_on_the_request_class(config):
    config.commit()
    factory = config.registry.getUtility(IRequestFactory)
    assert 'user_sessions' in vars(factory)
    assert 'session_multi' in vars(factory)


def test_the_index_needs_a_redis_namespace(redis_url):
    from pyramid.exceptions import ConfigurationError

    config = make_config(
        redis_url, **{'session_suite.namespace.main.backend': 'cookie'}
    )
    with pytest.raises(ConfigurationError, match='not a Redis namespace'):
        config.commit()


def _counted(config, round_trips, redis_url):
    """Make the indexed namespace and the index use a counting client."""
    config.commit()
    tracker = config.registry.getUtility(IUserIndex)
    client = round_trips.client(redis_url)
    client.ping()
    tracker.factory.redis = client
    tracker.index.client = client
    for name in ('register', 'list', 'revoke', 'count'):
        script = getattr(tracker.index, name + '_script')
        script.registered_client = client
    round_trips.reset()
    return tracker.factory


def test_redis_is_real(redis_client):
    assert isinstance(redis_client, redis.Redis)
    assert redis_client.ping()


def plain_app(redis_url):
    """Logins with remember()/forget() alone, not login()/logout()."""
    config = make_config(redis_url)
    add_plain_views(config)
    return config.make_wsgi_app()


def test_the_record_follows_who_is_logged_in_now(redis_url):
    app = plain_app(redis_url)
    alice_phone = browser(app, IPHONE)
    alice_phone.get('/plain-login?user=alice')
    alice_phone.get('/whoami')  # recorded on its first request
    shared = browser(app)
    shared.get('/plain-login?user=alice')
    shared.get('/whoami')
    shared.get('/plain-logout')
    shared.get('/whoami')
    shared.get('/plain-login?user=mallory')
    shared.get('/whoami')
    mine = shared.get('/mine').json
    assert [e['label'] for e in mine['sessions']] == ['Firefox on Linux']
    phones = [e for e in mine['sessions'] if 'iPhone' in e['label']]
    assert phones == []
    tracker = app.registry.getUtility(IUserIndex)
    assert [e['label'] for e in tracker.index.list('alice')] == [
        'Safari on iPhone'
    ]
    assert alice_phone.get('/whoami').json['user'] == 'alice'


def test_logging_in_as_someone_else_leaves_their_data_behind(app):
    firefox = browser(app)
    firefox.get('/login?user=alice')
    firefox.get('/whoami?write=1')
    firefox.get('/login?user=bob')
    assert firefox.get('/whoami').json == {
        'user': 'bob',
        'n': None,
        'ended': None,
    }


def test_a_function_request_factory_keeps_the_attributes_lazy(redis_url):
    config = make_config(redis_url)
    config.set_request_factory(lambda environ: Request(environ))
    firefox = browser(config.make_wsgi_app())
    firefox.get('/login?user=alice')
    assert firefox.get('/whoami').json['user'] == 'alice'
    assert len(firefox.get('/mine').json['sessions']) == 1


def test_a_displaced_reason_lasts_end_ttl(redis_url, redis_client):
    from .test_policy import policy_app

    app, tracker = policy_app(redis_url, lock_seconds='0')
    first, second = browser(app), browser(app)
    first.get('/login?user=alice')
    second.get('/login?user=alice')
    [ended] = [
        key
        for key in redis_client.keys('session_suite:main:*')
        if ended_reason(redis_client, key.decode()) == 'displaced'
    ]
    assert redis_client.pttl(ended) > tracker.index.ttl_ms


def test_a_watcher_added_after_the_user_index_sees_its_operations(redis_url):
    from pyramid_session_suite.watch import add_watcher

    seen = []

    class Recorder:
        def loaded(self, namespace, started, ended, outcome, size):
            seen.append('load')

        def observe(self, operation):
            seen.append(operation.name)

    config = make_config(redis_url)
    config.commit()  # the user index is set up
    add_watcher(config, Recorder())
    app = TestApp(config.make_wsgi_app())
    app.get('/login?user=alice')
    assert 'login' in seen


def test_a_session_names_its_user_whatever_was_asked_before():
    """Whether a session's recorded user is the one logged in now is
    remembered per user id, of its own type: 1 and 1.0 are equal ids in
    Python, not the same user tag."""
    from pyramid_session_suite.user_index import same_user
    from pyramid_session_suite.user_index.store import user_ref

    one = user_ref(user_tag(1))
    assert user_ref(user_tag(1)) is one
    assert same_user(one, 1)
    assert not same_user(one, 1.0)
    assert same_user(user_ref(user_tag(1.0)), 1.0)
    assert same_user(one, 1)
    assert not same_user(one, None)
    assert not same_user(one, 2)


def test_a_login_is_what_its_records_say():
    """A session's login is read from its own records, as they are now."""
    from types import SimpleNamespace

    from pyramid_session_suite.redis import login_records as lr
    from pyramid_session_suite.user_index import _login

    key = 'session_suite:main:{' + user_tag('alice') + '}:0'
    session = SimpleNamespace(key=key, session_id=key + '.' + 'x' * 22)
    records = {
        lr.SECRET: b'\x01' * 16,
        lr.LOGIN: b'1765000000000',
        lr.ACTIVE: b'1765000060000',
        lr.IP: b'198.51.100.7',
        lr.USER_AGENT: b'Firefox',
    }
    first = _login(session, dict(records))
    assert (first['u'], first['ip'], first['t']) == (
        'alice',
        '198.51.100.7',
        1765000060,
    )
    moved = _login(session, {**records, lr.IP: b'203.0.113.9'})
    assert moved['ip'] == '203.0.113.9'
    touched = _login(session, {**records, lr.ACTIVE: b'1765000120000'})
    assert touched['t'] == 1765000120
    session.session_id += lr.REMEMBERED
    assert _login(session, dict(records))['remember'] is True
    assert first['remember'] is False
