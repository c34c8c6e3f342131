"""Rotating secrets without logging anyone out: every secret setting takes
several secrets, newest first; cookies are signed with the newest, those
signed with an older one are accepted and signed again, those signed with
a secret no longer listed are ignored like forged ones."""

import pytest
from webob.cookies import SignedSerializer
from webtest import TestApp

from pyramid_session_suite import CookieSessionFactory, RedisSessionFactory
from pyramid_session_suite.exceptions import WeakSecret
from pyramid_session_suite.interfaces import IUserIndex

from . import previous_release as previous
from .usersapp import FIREFOX, make_config

OLD = 'old-secret-of-the-rotation-tests-0123456789'
NEW = 'new-secret-of-the-rotation-tests-0123456789'
NEWER = 'newer-secret-of-the-rotation-tests-012345678'

MAIN = 'session_suite.namespace.main.secret'
PREFS = 'session_suite.namespace.prefs.secret'
INDEX = 'session_suite.user_index.secret'


def app_with(redis_url, main, prefs=OLD, index=None):
    settings = {
        MAIN: main,
        'session_suite.namespaces': 'main prefs',
        'session_suite.namespace.prefs.backend': 'cookie',
        PREFS: prefs,
    }
    if index is not None:
        settings[INDEX] = index
    config = make_config(redis_url, **settings)

    def prefs_view(request):
        prefs = request.session_multi['prefs']
        if 'theme' in request.params:
            prefs['theme'] = request.params['theme']
        return {'theme': prefs.get('theme')}

    config.add_route('prefs', '/prefs')
    config.add_view(prefs_view, route_name='prefs', renderer='json')
    return config.make_wsgi_app()


def signer(secret, kind='redis', name='main'):
    """What a namespace of ``kind`` signs its cookie ``name`` with."""
    from pyramid.session import JSONSerializer
    from pyramid_session_redis.util import _StringSerializer

    serializer = _StringSerializer() if kind == 'redis' else JSONSerializer()
    salt = f'pyramid_session_suite.{kind}.{name}'
    return SignedSerializer(secret, salt, 'sha512', serializer=serializer)


def signed_with(secret, value, kind='redis', name='main'):
    try:
        signer(secret, kind, name).loads(value.encode())
    except ValueError:
        return False
    return True


def set_cookie(res, name):
    for header in res.headers.getall('Set-Cookie'):
        if header.startswith(name + '='):
            return header.split(';')[0][len(name) + 1 :]
    return None


def browser(app):
    return TestApp(app, extra_environ={'HTTP_USER_AGENT': FIREFOX})


def test_a_cookie_of_an_older_secret_is_accepted_and_signed_again(
    redis_url,
):
    before = browser(app_with(redis_url, OLD))
    before.get('/login?user=alice')
    before.get('/whoami?write=1')
    before.get('/prefs?theme=dark')
    old_main, old_prefs = before.cookies['main'], before.cookies['prefs']
    assert signed_with(OLD, old_main)
    assert signed_with(OLD, old_prefs, 'cookie', 'prefs')

    after = browser(app_with(redis_url, f'{NEW} {OLD}', f'{NEW} {OLD}'))
    after.set_cookie('main', old_main)
    after.set_cookie('prefs', old_prefs)
    res = after.get('/whoami')
    assert res.json == {'user': 'alice', 'n': 1, 'ended': None}
    main = set_cookie(res, 'main')
    assert signed_with(NEW, main) and not signed_with(OLD, main)
    res = after.get('/prefs')
    assert res.json == {'theme': 'dark'}
    prefs = set_cookie(res, 'prefs')
    assert signed_with(NEW, prefs, 'cookie', 'prefs')
    assert not signed_with(OLD, prefs, 'cookie', 'prefs')
    # signed with the newest now: not sent again
    res = after.get('/whoami')
    assert res.json['user'] == 'alice' and set_cookie(res, 'main') is None


def test_the_newest_secret_always_signs(redis_url):
    app = browser(app_with(redis_url, f'{NEW} {OLD}', f'{NEW} {OLD}'))
    cookies = []
    for path in ('/whoami?write=1', '/login?user=bob', '/prefs?theme=x'):
        res = app.get(path)
        cookies += [(n, set_cookie(res, n)) for n in ('main', 'prefs')]
    cookies = [(n, c) for n, c in cookies if c]
    assert {n for n, _ in cookies} == {'main', 'prefs'}
    for name, value in cookies:
        kind = 'redis' if name == 'main' else 'cookie'
        assert signed_with(NEW, value, kind, name), name
        assert not signed_with(OLD, value, kind, name), name


def test_a_cookie_of_a_removed_secret_is_ignored(redis_url, redis_client):
    before = browser(app_with(redis_url, OLD))
    before.get('/login?user=alice')
    before.get('/prefs?theme=dark')
    keys = {k: redis_client.dump(k) for k in redis_client.keys('*')}

    after = browser(app_with(redis_url, f'{NEWER} {NEW}', f'{NEWER} {NEW}'))
    after.set_cookie('main', before.cookies['main'])
    after.set_cookie('prefs', before.cookies['prefs'])
    assert after.get('/whoami').json['user'] is None
    assert after.get('/prefs').json == {'theme': None}
    # like a forged cookie: nothing changed in Redis
    assert {k: redis_client.dump(k) for k in redis_client.keys('*')} == keys


def test_handles_stay_when_the_index_secret_rotates(redis_url, redis_client):
    index = previous.INDEX_SECRET
    sid = previous.login(redis_client, 'alice')
    before = browser(app_with(redis_url, OLD, index=index))
    before.get('/login?user=alice')
    handles = {e['handle'] for e in before.get('/mine').json['sessions']}
    assert previous.handle_of(sid) in handles and len(handles) == 2

    rotated = f'{NEWER} {index}'
    after = browser(app_with(redis_url, OLD, index=rotated))
    after.set_cookie('main', before.cookies['main'])
    mine = after.get('/mine').json
    assert {e['handle'] for e in mine['sessions']} == handles
    assert mine['current'] in handles
    tracker = after.app.registry.getUtility(IUserIndex)
    assert tracker.index.revoke('alice', previous.handle_of(sid)) == 1


def test_the_factories_take_a_sequence_of_secrets(redis_url):
    factory = RedisSessionFactory([NEW, OLD], redis_url=redis_url)
    assert signed_with(NEW, factory.cookie_signer.dumps('x').decode(), 'redis',
                       'session')  # fmt: skip
    assert (
        factory.cookie_signer.loads(signer(OLD, 'redis', 'session').dumps('x'))
        == 'x'
    )
    CookieSessionFactory((NEW, OLD))
    for weak in ([NEW, 'short'], [], ['']):
        with pytest.raises(WeakSecret):
            RedisSessionFactory(weak, redis_url=redis_url)
        with pytest.raises(WeakSecret):
            CookieSessionFactory(weak)
