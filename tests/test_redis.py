"""Redis namespaces, against a real Redis server."""

import json
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPFound
from pyramid.testing import DummyRequest
import pytest
import redis
from webtest import TestApp

from pyramid_session_suite import RedisSessionFactory, WeakSecret
from pyramid_session_suite.testing import RedisServer, free_port

from .conftest import SECRET, stored


def counter_view(request):
    session = request.session_multi['r']
    if request.params.get('write'):
        session['n'] = session.get('n', 0) + 1
    if request.params.get('invalidate'):
        session.invalidate()
    if request.params.get('login'):
        session.invalidate()
        session['user'] = request.params['login']
    return {'n': session.get('n'), 'user': session.get('user')}


def make_app(factory, views=None):
    config = Configurator()
    config.include('pyramid_session_suite')
    config.register_session_factory('r', factory)
    config.add_route('counter', '/')
    config.add_view(counter_view, route_name='counter', renderer='json')
    config.add_route('idle', '/idle')
    config.add_view(lambda request: {}, route_name='idle', renderer='json')
    for name, view in (views or {}).items():
        config.add_route(name, '/' + name)
        config.add_view(view, route_name=name, renderer='json')
    return TestApp(config.make_wsgi_app())


@pytest.fixture
def app(counted):
    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    return make_app(factory)


def session_keys(client):
    return sorted(k.decode() for k in client.keys('session:*'))


def test_a_new_session_costs_one_round_trip(app, round_trips, redis_client):
    res = app.get('/?write=1')
    assert res.json == {'n': 1, 'user': None}
    assert round_trips.trips == [['SET']]
    [key] = session_keys(redis_client)
    assert 1190 < redis_client.ttl(key) <= 1200
    assert stored(redis_client, key)['m'] == {'n': 1}


def test_a_read_costs_one_round_trip_and_refreshes_the_ttl(
    app, round_trips, redis_client
):
    app.get('/?write=1')
    [key] = session_keys(redis_client)
    redis_client.expire(key, 100)
    round_trips.reset()
    assert app.get('/').json['n'] == 1
    assert round_trips.trips == [['GETEX']]
    assert redis_client.ttl(key) > 1100


def test_a_write_costs_two_round_trips(app, round_trips):
    app.get('/?write=1')
    round_trips.reset()
    assert app.get('/?write=1').json['n'] == 2
    assert round_trips.trips == [['GETEX'], ['EVALSHA']]


def test_untouched_namespaces_cost_nothing(app, round_trips):
    app.get('/?write=1')
    round_trips.reset()
    res = app.get('/idle')
    assert round_trips.trips == []
    assert 'Set-Cookie' not in res.headers


def test_reading_without_a_session_writes_nothing(app, round_trips):
    res = app.get('/')
    assert res.json == {'n': None, 'user': None}
    assert round_trips.trips == []
    assert 'Set-Cookie' not in res.headers


def test_login_rotates_the_session_id(app, round_trips, redis_client):
    app.get('/?write=1')
    [old] = session_keys(redis_client)
    old_cookie = app.cookies['r']
    round_trips.reset()
    res = app.get('/?login=alice')
    assert res.json == {'n': None, 'user': 'alice'}
    assert round_trips.trips == [['GETEX'], ['DEL'], ['SET']]
    [new] = session_keys(redis_client)
    assert new != old and app.cookies['r'] != old_cookie


def test_invalidate_deletes_the_key_and_the_cookie(app, redis_client):
    app.get('/?write=1')
    res = app.get('/?invalidate=1')
    assert session_keys(redis_client) == []
    assert 'r=;' in res.headers['Set-Cookie']
    assert 'Max-Age=0' in res.headers['Set-Cookie']


def test_cookie_attributes(counted):
    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r', cookie_secure=True
    )
    res = make_app(factory).get('/?write=1')
    cookie = res.headers['Set-Cookie']
    assert '; HttpOnly' in cookie
    assert '; secure' in cookie.lower()
    assert '; SameSite=Lax' in cookie
    assert res.headers['Vary'] == 'Cookie'


def test_a_session_deleted_in_flight_is_not_resurrected(counted, redis_client):
    def revoke_then_write(request):
        session = request.session_multi['r']
        session.get('n')  # loaded
        redis_client.delete(session.session_id)  # revoked meanwhile
        session['n'] = 99
        return {}

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'race': revoke_then_write})
    app.get('/?write=1')
    app.get('/race')
    assert session_keys(redis_client) == []
    # the revoked browser is anonymous from its next request on
    res = app.get('/')
    assert res.json == {'n': None, 'user': None}
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    assert 'r' not in app.cookies


def test_a_revoked_session_read_in_flight_is_not_resurrected(
    counted, redis_client
):
    def revoke_then_read(request):
        session = request.session_multi['r']
        redis_client.delete(session.session_id)
        return {'n': session.get('n')}

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'race': revoke_then_read})
    app.get('/?write=1')
    assert app.get('/race').json == {'n': 1}
    assert session_keys(redis_client) == []


def test_tampered_cookies_change_nothing(app, round_trips, redis_client):
    app.get('/?write=1')
    [key] = session_keys(redis_client)
    stored = redis_client.get(key)
    good = app.cookies['r']
    for bad in (good[:-2] + 'xx', 'garbage', good + good, ''):
        app.set_cookie('r', bad)
        round_trips.reset()
        res = app.get('/')
        assert res.json == {'n': None, 'user': None}
        assert 'Set-Cookie' not in res.headers
        assert round_trips.trips == []
    assert session_keys(redis_client) == [key]
    assert redis_client.get(key) == stored


def test_a_signed_id_outside_the_key_prefix_is_refused(counted, redis_client):
    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    redis_client.set('other:data', json.dumps({'m': {'n': 7}, 'c': 1, 'v': 1}))
    app = make_app(factory)
    app.set_cookie('r', factory.cookie_signer.dumps('other:data').decode())
    assert app.get('/').json['n'] is None


def test_a_cookie_of_another_namespace_is_refused(counted):
    one = RedisSessionFactory(SECRET, redis_client=counted, cookie_name='r')
    two = RedisSessionFactory(SECRET, redis_client=counted, cookie_name='s')
    app = make_app(one)
    app.get('/?write=1')
    assert two.session_id_from_cookie(app.cookies['r']) is None
    assert one.session_id_from_cookie(app.cookies['r']) is not None


def test_each_factory_has_its_own_client(redis_server):
    base = redis_server.url.rsplit('/', 1)[0]
    one = RedisSessionFactory(SECRET, redis_url=base + '/1', cookie_name='a')
    two = RedisSessionFactory(SECRET, redis_url=base + '/2', cookie_name='b')
    assert one.redis is not two.redis

    def write_both(request):
        request.session_multi['a']['x'] = 1
        request.session_multi['b']['x'] = 2
        return {}

    config = Configurator()
    config.include('pyramid_session_suite')
    config.register_session_factory('a', one)
    config.register_session_factory('b', two)
    config.add_route('w', '/')
    config.add_view(write_both, route_name='w', renderer='json')
    TestApp(config.make_wsgi_app()).get('/')
    db1 = redis.Redis.from_url(base + '/1')
    db2 = redis.Redis.from_url(base + '/2')
    [k1] = db1.keys()
    [k2] = db2.keys()
    assert stored(db1, k1)['m'] == {'x': 1}
    assert stored(db2, k2)['m'] == {'x': 2}


def test_a_client_set_on_the_factory_serves_the_next_request(
    counted, round_trips, redis_url
):
    """Sessions take the factory's attributes as they are when the request
    comes (its sessions' options are made once, and again when one is
    set)."""
    factory = RedisSessionFactory(
        SECRET, redis_client=redis.Redis.from_url(redis_url), cookie_name='r'
    )
    app = make_app(factory)
    assert app.get('/?write=1').json['n'] == 1
    factory.redis = counted
    factory.timeout = 600
    round_trips.reset()
    assert app.get('/?write=1').json['n'] == 2
    assert round_trips.commands == ['GETEX', 'EVALSHA']
    [key] = session_keys(counted)
    assert 590 < counted.ttl(key) <= 600


def test_an_emptied_session_is_deleted(counted, redis_client):
    def empty(request):
        request.session_multi['r'].clear()
        return {}

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'empty': empty})
    app.get('/?write=1')
    res = app.get('/empty')
    assert session_keys(redis_client) == []
    assert 'Max-Age=0' in res.headers['Set-Cookie']


def test_writes_before_a_raised_redirect_are_kept(counted, redis_client):
    def login(request):
        request.session_multi['r']['user'] = 'bob'
        raise HTTPFound('/')

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'login': login})
    assert app.get('/login').status_int == 302
    assert app.get('/').json['user'] == 'bob'


def test_a_custom_session_timeout_is_kept_on_read(counted, redis_client):
    def remember(request):
        session = request.session_multi['r']
        session['user'] = 'carol'
        session.adjust_session_timeout(86400)
        return {}

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'remember': remember})
    app.get('/remember')
    [key] = session_keys(redis_client)
    assert redis_client.ttl(key) > 86000
    app.get('/')
    assert redis_client.ttl(key) > 86000


def test_a_write_keeps_the_ttl_its_read_gave_unless_the_timeout_changed(
    counted, redis_client
):
    def longer(request):
        session = request.session_multi['r']
        session['n'] = session.get('n', 0) + 1
        session.adjust_session_timeout(86400)
        return {}

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'longer': longer})
    app.get('/?write=1')
    [key] = session_keys(redis_client)
    redis_client.expire(key, 100)
    app.get('/?write=1')  # GETEX gave 1200 s; the merge keeps it
    assert 1190 < redis_client.ttl(key) <= 1200
    assert stored(redis_client, key)['m'] == {'n': 2}
    app.get('/longer')  # an existing session's timeout changed: its TTL
    assert 86300 < redis_client.ttl(key) <= 86400
    app.get('/?write=1')  # read with its own timeout, kept by the write
    assert 86300 < redis_client.ttl(key) <= 86400
    assert stored(redis_client, key)['m'] == {'n': 4}


def test_payloads_are_json_by_default_and_pickle_on_request(
    counted, redis_client
):
    import pickle

    factory = RedisSessionFactory(
        SECRET,
        redis_client=counted,
        cookie_name='r',
        serialize=pickle.dumps,
        deserialize=pickle.loads,
    )
    app = make_app(factory)
    app.get('/?write=1')
    assert app.get('/?write=1').json['n'] == 2
    [key] = session_keys(redis_client)
    assert stored(redis_client, key, pickle.loads)['m'] == {'n': 2}


def test_an_unreadable_payload_gives_a_new_session(app, redis_client):
    app.get('/?write=1')
    [key] = session_keys(redis_client)
    redis_client.set(key, b'\x80not json')
    res = app.get('/')
    assert res.json['n'] is None
    assert 'Max-Age=0' in res.headers['Set-Cookie']


@pytest.mark.parametrize(
    'kwargs, error',
    [
        ({'secret': 'short'}, WeakSecret),
        ({'secret': None}, ValueError),
        ({'secret': SECRET, 'cookie_signer': object()}, ValueError),
        ({'secret': SECRET, 'redis_url': None}, ValueError),
    ],
)
def test_factory_arguments_are_checked(kwargs, error):
    kwargs.setdefault('redis_url', 'redis://127.0.0.1:1/0')
    secret = kwargs.pop('secret')
    with pytest.raises(error):
        RedisSessionFactory(secret, **kwargs)


def test_a_weak_secret_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match='too short'):
        RedisSessionFactory('x' * 31, redis_url='redis://127.0.0.1:1/0')


# --- Redis unavailable ----------------------------------------------------


def test_redis_down_gives_503_and_changes_nothing():
    factory = RedisSessionFactory(
        SECRET,
        redis_url=f'redis://127.0.0.1:{free_port()}/0',
        cookie_name='r',
    )
    app = make_app(factory)
    app.set_cookie('r', factory.cookie_signer.dumps(
        'session:' + 'a' * 43
    ).decode())  # fmt: skip
    res = app.get('/', status=503)
    assert res.headers['Retry-After'] == '1'
    assert 'Traceback' not in res.text
    assert 'session store is unavailable' in res.text
    assert 'Set-Cookie' not in res.headers
    assert app.get('/idle').status_int == 200


def test_a_failed_write_is_a_503_and_recovery_is_automatic():
    with RedisServer(url='') as server:
        factory = RedisSessionFactory(
            SECRET, redis_url=server.url, cookie_name='r'
        )

        def stop_then_write(request):
            session = request.session_multi['r']
            session.get('n')
            server.stop(keep_port=True)
            session['n'] = 42
            return {}

        app = make_app(factory, {'crash': stop_then_write})
        app.get('/?write=1')
        cookie = app.cookies['r']
        res = app.get('/crash', status=503)
        assert 'Set-Cookie' not in res.headers
        assert app.get('/', status=503)
        server.start()
        # the store is empty after the restart: the session is gone, and
        # the app works again without a restart of its own
        assert app.cookies['r'] == cookie
        res = app.get('/?write=1')
        assert res.json['n'] == 1


def test_an_error_response_creates_no_session(counted, redis_client):
    from pyramid.httpexceptions import HTTPBadRequest

    def refuse(request):
        request.session_multi['r']['junk'] = 'from a bot'
        raise HTTPBadRequest()

    def broken(request):
        request.session_multi['r']['junk'] = 'half done'
        raise RuntimeError('bug')

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'refuse': refuse, 'broken': broken})
    res = app.get('/refuse', status=400)
    assert 'Set-Cookie' not in res.headers
    with pytest.raises(RuntimeError):
        app.get('/broken')
    assert session_keys(redis_client) == []
    # an existing session is still saved on an error response
    app.get('/?write=1')
    app.get('/refuse', status=400)
    [key] = session_keys(redis_client)
    assert stored(redis_client, key)['m']['junk'] == 'from a bot'


def test_a_csrf_failure_of_an_anonymous_post_stores_nothing(
    redis_url, redis_client
):
    config = Configurator(
        settings={
            'session_suite.namespaces': 'main',
            'session_suite.request_session': 'main',
            'session_suite.redis_url': redis_url,
            'session_suite.namespace.main.backend': 'redis',
            'session_suite.namespace.main.secret': SECRET,
        }
    )
    config.include('pyramid_session_suite')
    config.set_default_csrf_options(require_csrf=True)
    config.add_route('post', '/')
    config.add_view(lambda request: {}, route_name='post', renderer='json')
    app = TestApp(config.make_wsgi_app())
    res = app.post('/', {'x': '1'}, status=400)
    assert 'Set-Cookie' not in res.headers
    assert redis_client.keys('*') == []


def test_a_write_after_the_view_is_still_saved(counted, round_trips):
    def late(request):
        session = request.session_multi['r']
        session['n'] = 1

        def callback(request, response):
            session['late'] = True

        request.add_response_callback(callback)
        return {}

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'late': late})
    app.get('/late')
    round_trips.reset()
    assert app.get('/?write=1').json['n'] == 2
    assert round_trips.trips == [['GETEX'], ['EVALSHA']]
    request = DummyRequest(cookies={'r': app.cookies['r']})
    assert factory.peek(request) == {'n': 2, 'late': True}


def test_rotate_keeps_the_data_under_a_new_id_in_one_round_trip(
    counted, round_trips, redis_client
):
    def login(request):
        session = request.session_multi['r']
        session['user'] = 'alice'
        session.rotate(tag='YWxpY2U')
        return {}

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'login': login})
    app.get('/?write=1')
    [old] = session_keys(redis_client)
    round_trips.reset()
    app.get('/login')
    assert round_trips.trips == [['GETEX'], ['DEL', 'EVAL']]
    [new] = session_keys(redis_client)
    assert new.startswith('session:{YWxpY2U}:') and new != old
    assert app.get('/').json == {'n': 1, 'user': 'alice'}


def test_writes_to_namespaces_on_one_client_share_a_round_trip(
    counted, round_trips
):
    def both(request):
        request.session_multi['r']['a'] = 1
        request.session_multi['s']['b'] = 2
        return {}

    config = Configurator()
    config.include('pyramid_session_suite')
    for name in 'rs':
        config.register_session_factory(
            name,
            RedisSessionFactory(
                SECRET, redis_client=counted, cookie_name=name
            ),
        )
    config.add_route('both', '/')
    config.add_view(both, route_name='both', renderer='json')
    app = TestApp(config.make_wsgi_app())
    app.get('/')
    assert round_trips.trips == [['SET', 'SET']]
    round_trips.reset()
    app.get('/')
    assert round_trips.trips == [['GETEX'], ['GETEX'], ['EVAL', 'EVAL']]


def test_values_changed_in_place_are_saved(counted, round_trips):
    def append(request):
        session = request.session_multi['r']
        items = session.get('items')
        if items is None:
            items = session['items'] = []
        if request.params.get('add'):
            items.append(request.params['add'])  # no session.changed()
        return {'items': items}

    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    app = make_app(factory, {'append': append})
    app.get('/append')
    app.get('/append?add=a')
    round_trips.reset()
    assert app.get('/append?add=b').json == {'items': ['a', 'b']}
    assert round_trips.trips == [['GETEX'], ['EVALSHA']]
    round_trips.reset()
    assert app.get('/append').json == {'items': ['a', 'b']}
    assert round_trips.trips == [['GETEX']]


def test_a_factorys_session_has_what_the_constructor_gives(redis_client):
    from pyramid_session_redis.util import LazyCreateSession

    from pyramid_session_suite.redis import RedisSession

    factory = RedisSessionFactory(
        SECRET, redis_client=redis_client, cookie_name='r', timeout=60
    )
    constructed = RedisSession(
        namespace=factory.namespace,
        redis=factory.redis,
        session_id=LazyCreateSession,
        new=True,
        new_session=factory.new_session_id,
        new_payload_func=factory.new_payload,
        serialize=factory.serialize,
        deserialize=factory.deserialize,
        set_redis_ttl=factory.set_redis_ttl,
        detect_changes=factory.detect_changes,
        deserialized_fails_new=factory.deserialized_fails_new,
        timeout=factory.timeout,
        python_expires=False,
        remember_timeout=factory.remember_max_age,
    )
    expected = dict(constructed.__dict__)
    made = dict(factory._session(None).__dict__)
    state = made.pop('_session_state')
    assert vars(state) == vars(expected.pop('_session_state'))
    assert made == expected
    assert made == {
        **factory._session_options(),
        'watchers': (),
        '_new': True,
    }


class WithdrawableSigner:
    """An application's own cookie signer, which stops accepting its
    cookies once withdrawn."""

    withdrawn = False

    def dumps(self, value):
        return b'signed:' + value.encode()

    def loads(self, data):
        if self.withdrawn or not data.startswith(b'signed:'):
            raise ValueError('not accepted')
        return data.removeprefix(b'signed:').decode()


def test_a_cookie_an_own_signer_stops_accepting_is_refused(redis_client):
    signer = WithdrawableSigner()
    factory = RedisSessionFactory(
        cookie_signer=signer, redis_client=redis_client, cookie_name='r'
    )
    app = make_app(factory)
    app.get('/?write=1')
    assert app.get('/').json['n'] == 1
    signer.withdrawn = True
    # the signer is asked again on every request: the session is not found
    assert app.get('/').json['n'] is None


@pytest.mark.parametrize(
    'payload',
    [
        {'m': {'n': 7}, 'c': 1},  # before pyramid_session_redis's format
        {'m': {'n': 7}, 'c': 1, 'v': 1, 'x': 2},  # expired by its own clock
    ],
    ids=['no version', 'expired'],
)
def test_a_payload_pyramid_session_redis_would_refuse_is_a_new_session(
    counted, redis_client, round_trips, payload
):
    factory = RedisSessionFactory(
        SECRET, redis_client=counted, cookie_name='r'
    )
    session_id = 'session:' + 'A' * 43
    redis_client.set(session_id, json.dumps(payload))
    app = make_app(factory)
    app.set_cookie('r', factory.cookie_signer.dumps(session_id).decode())
    round_trips.reset()
    assert app.get('/').json['n'] is None
    assert round_trips.trips == [['GETEX']]  # read once
