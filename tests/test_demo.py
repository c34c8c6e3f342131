"""The demo application, loaded from development.ini."""

import atexit
import json
import os
import re
from pyramid.exceptions import ConfigurationError
from pyramid.paster import get_app, get_appsettings
import pytest
import redis
from webtest import TestApp

import demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INI = os.path.join(ROOT, 'development.ini')
MAIN_KEYS = 'session_suite:main:*'


@pytest.fixture
def wsgi_app(redis_url, monkeypatch):
    # demo.redis = embedded uses REDIS_URL when set: the tests' server
    monkeypatch.setenv('REDIS_URL', redis_url)
    return get_app(INI)


@pytest.fixture
def app(wsgi_app):
    return TestApp(wsgi_app)


def text_of(res, element_id):
    return re.search(rf'id="{element_id}">([^<]*)<', res.text).group(1)


def theme_of(res):
    theme = text_of(res, 'theme')
    assert f'<body class="{theme}">' in res.text
    return theme


def set_cookie_names(res):
    return sorted(c.split('=', 1)[0] for c in res.headers.getall('Set-Cookie'))


def test_home_counts_visits_in_redis(app, redis_client):
    res = app.get('/')
    assert text_of(res, 'visits') == '1'
    assert text_of(res, 'accessed') == 'main, prefs'
    # prefs was only read: no cookie for it yet
    assert set(app.cookies) == {'main'}
    [key] = redis_client.keys(MAIN_KEYS)

    res = app.get('/')
    assert text_of(res, 'visits') == '2'
    assert set_cookie_names(res) == []
    assert redis_client.keys(MAIN_KEYS) == [key]
    assert json.loads(redis_client.get(key))['m']['visits'] == 2


def test_theme_toggle(app):
    res = app.get('/')
    assert theme_of(res) == 'light'

    res = res.forms['theme'].submit(status=303)
    assert set_cookie_names(res) == ['prefs']
    res = res.follow()
    assert theme_of(res) == 'dark'
    assert set(app.cookies) == {'main', 'prefs'}

    res = res.forms['theme'].submit(status=303).follow()
    assert theme_of(res) == 'light'


def test_post_without_csrf_token_is_refused(app, redis_client):
    res = app.get('/')
    cookies = dict(app.cookies)
    [key] = redis_client.keys(MAIN_KEYS)
    stored = redis_client.get(key)

    for params in [
        {'theme': 'dark'},
        {'theme': 'dark', 'csrf_token': 'not-the-token'},
    ]:
        res = app.post('/theme', params, status=400)
        assert set_cookie_names(res) == []
    res = app.post('/forget', {}, status=400)
    assert set_cookie_names(res) == []

    assert app.cookies == cookies
    assert redis_client.keys(MAIN_KEYS) == [key]
    assert redis_client.get(key) == stored
    res = app.get('/')
    assert theme_of(res) == 'light'
    assert text_of(res, 'visits') == '2'


def test_forget_me_empties_every_namespace(app, redis_client):
    res = app.get('/')
    res = res.forms['theme'].submit().follow()
    assert theme_of(res) == 'dark'
    assert set(app.cookies) == {'main', 'prefs'}
    assert len(redis_client.keys(MAIN_KEYS)) == 1

    res = res.forms['forget'].submit(status=303)
    set_cookies = res.headers.getall('Set-Cookie')
    assert set_cookie_names(res) == ['main', 'prefs']
    assert all('Max-Age=0' in cookie for cookie in set_cookies)
    assert dict(app.cookies) == {}
    assert redis_client.keys(MAIN_KEYS) == []

    res = res.follow()
    assert text_of(res, 'visits') == '1'
    assert theme_of(res) == 'light'


@pytest.mark.parametrize('remote_addr', [None, '127.0.0.1'])
def test_about_touches_no_session(
    app, wsgi_app, redis_url, round_trips, monkeypatch, remote_addr
):
    factory = wsgi_app.registry.introspector.get(
        'session_suite namespaces', 'main'
    )['factory']
    monkeypatch.setattr(factory, 'redis', round_trips.client(redis_url))
    app.get('/').forms['theme'].submit()
    assert set(app.cookies) == {'main', 'prefs'}
    assert round_trips.count > 0

    round_trips.reset()
    environ = {'REMOTE_ADDR': remote_addr} if remote_addr else {}
    res = app.get('/about', extra_environ=environ)
    assert 'Set-Cookie' not in res.headers
    assert text_of(res, 'accessed') == 'none'
    assert round_trips.commands == []


def test_debug_toolbar_for_local_requests_only(app):
    res = app.get('/', extra_environ={'REMOTE_ADDR': '127.0.0.1'})
    assert 'id="pDebug"' in res.text
    res = app.get('/', extra_environ={'REMOTE_ADDR': '192.0.2.1'})
    assert 'pDebug' not in res.text


def test_embedded_redis_is_started_and_stopped_at_exit(
    monkeypatch, redis_server
):
    monkeypatch.delenv('REDIS_URL', raising=False)
    registered = []

    def register(func, *args, **kwargs):
        registered.append(func)
        return atexit_register(func, *args, **kwargs)

    atexit_register = atexit.register
    monkeypatch.setattr(atexit, 'register', register)
    wsgi_app = get_app(INI)
    server = wsgi_app.registry['demo.redis_server']
    try:
        assert server.started
        assert server.url != redis_server.url
        settings = wsgi_app.registry.settings
        assert settings['session_suite.redis_url'] == server.url
        TestApp(wsgi_app).get('/')
        client = redis.Redis.from_url(server.url)
        assert len(client.keys(MAIN_KEYS)) == 1
        client.close()

        assert server.stop in registered
        process = server.process
        for func in registered:
            if func == server.stop:
                func()
        assert process.poll() is not None
        assert not server.started
    finally:
        server.stop()


def test_redis_url_setting(monkeypatch, redis_url, redis_client):
    monkeypatch.delenv('REDIS_URL', raising=False)
    settings = get_appsettings(INI)
    settings['demo.redis'] = redis_url
    wsgi_app = demo.main({}, **settings)
    assert wsgi_app.registry['demo.redis_server'] is None
    TestApp(wsgi_app).get('/')
    assert len(redis_client.keys(MAIN_KEYS)) == 1


def test_a_bad_redis_setting_is_refused():
    settings = get_appsettings(INI)
    settings['demo.redis'] = 'localhost'
    with pytest.raises(ConfigurationError, match='demo.redis: expected'):
        demo.main({}, **settings)
