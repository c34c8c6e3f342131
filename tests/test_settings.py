"""Namespaces declared in the settings, without Python code."""

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
import pytest
from webtest import TestApp

from pyramid_session_suite import RedisSessionFactory

from .conftest import SECRET


def settings_for(redis_url, **extra):
    settings = {
        'session_suite.namespaces': 'main prefs',
        'session_suite.redis_url': redis_url,
        'session_suite.request_session': 'main',
        'session_suite.namespace.main.backend': 'redis',
        'session_suite.namespace.main.secret': SECRET,
        'session_suite.namespace.main.timeout': '600',
        'session_suite.namespace.main.cookie_secure': 'true',
        'session_suite.namespace.prefs.secret': SECRET + '-prefs',
        'session_suite.namespace.prefs.cookie_samesite': 'Strict',
    }
    settings.update(extra)
    return settings


def make_config(settings):
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    return config


def test_namespaces_from_settings(redis_url, redis_client):
    def view(request):
        request.session_multi['prefs']['theme'] = 'dark'
        request.session.flash('hello')
        return {
            'csrf': request.session.get_csrf_token(),
            'same': request.session is request.session_multi['main'],
        }

    def read(request):
        return {
            'flash': request.session.pop_flash(),
            'theme': request.session_multi['prefs'].get('theme'),
            'csrf': request.session.get_csrf_token(),
        }

    config = make_config(settings_for(redis_url))
    config.add_route('write', '/write')
    config.add_view(view, route_name='write', renderer='json')
    config.add_route('read', '/read')
    config.add_view(read, route_name='read', renderer='json')
    app = TestApp(
        config.make_wsgi_app(), extra_environ={'wsgi.url_scheme': 'https'}
    )

    res = app.get('/write')
    assert res.json['same'] is True
    csrf = res.json['csrf']
    cookies = {c.split('=')[0]: c for c in res.headers.getall('Set-Cookie')}
    assert set(cookies) == {'main', 'prefs'}
    assert '; secure' in cookies['main'].lower()
    assert 'SameSite=Strict' in cookies['prefs']
    [key] = redis_client.keys('session_suite:main:*')
    assert 590 < redis_client.ttl(key) <= 600

    res = app.get('/read')
    assert res.json == {'flash': ['hello'], 'theme': 'dark', 'csrf': csrf}
    settings = config.registry.settings
    assert settings['session_suite.namespaces'] == ['main', 'prefs']
    assert settings['session_suite.namespace.main.timeout'] == 600
    factory = config.registry.introspector.get(
        'session_suite namespaces', 'main'
    )['factory']
    assert isinstance(factory, RedisSessionFactory)
    assert factory.redis.connection_pool.connection_kwargs[
        'socket_timeout'
    ] == 2.0  # fmt: skip


@pytest.mark.parametrize(
    'change, message',
    [
        (
            {'session_suite.namespace.main.secret': 'too short'},
            'session_suite.namespace.main.secret is too short',
        ),
        (
            {'session_suite.namespace.prefs.secret': ''},
            'session_suite.namespace.prefs.secret is required',
        ),
        (
            {'session_suite.redis_url': ''},
            'session_suite.namespace.main.redis_url',
        ),
        (
            {'session_suite.namespace.main.timeout': 'soon'},
            'session_suite.namespace.main.timeout: invalid literal',
        ),
        (
            {'session_suite.namespace.main.timeout': '-5'},
            'session_suite.namespace.main.timeout: must be 0 or more',
        ),
        (
            {'session_suite.namespace.main.backend': 'memcached'},
            "session_suite.namespace.main.backend: must be one of 'cookie'",
        ),
        (
            {'session_suite.namespace.main.cookie_samsite': 'Lax'},
            'unknown setting session_suite.namespace.main.cookie_samsite',
        ),
        (
            {'session_suite.namespace.extra.secret': SECRET},
            "namespace 'extra' is not listed in session_suite.namespaces",
        ),
        (
            {'session_suite.request_session': 'nope'},
            "session_suite.request_session: no namespace 'nope'",
        ),
    ],
)
def test_bad_settings_name_the_key(redis_url, change, message):
    settings = settings_for(redis_url)
    settings.update(change)
    if 'session_suite.namespace.prefs.secret' in change:
        del settings['session_suite.namespace.prefs.secret']
        settings.update(change)
    with pytest.raises(ConfigurationError) as info:
        make_config(settings).commit()
    assert message in str(info.value)


def test_a_missing_secret_is_required():
    settings = {'session_suite.namespaces': 'main'}
    with pytest.raises(ConfigurationError, match='main.secret is required'):
        make_config(settings)


def test_timeout_zero_means_no_expiry(redis_url, redis_client):
    def write(request):
        request.session['k'] = 'v'
        return {}

    config = make_config(
        settings_for(
            redis_url, **{'session_suite.namespace.main.timeout': '0'}
        )
    )
    config.add_route('write', '/')
    config.add_view(write, route_name='write', renderer='json')
    TestApp(config.make_wsgi_app()).get('/')
    [key] = redis_client.keys('session_suite:main:*')
    assert redis_client.ttl(key) == -1


def test_a_cookie_namespace_with_its_timeout(redis_url):
    config = make_config(
        {
            'session_suite.namespaces': 'c',
            'session_suite.namespace.c.secret': SECRET,
            'session_suite.namespace.c.timeout': '60',
            'session_suite.namespace.c.cookie_name': 'crumb',
        }
    )
    config.add_route('w', '/')
    config.add_view(
        lambda request: request.session_multi['c'].update(a=1) or {},
        route_name='w',
        renderer='json',
    )
    res = TestApp(config.make_wsgi_app()).get('/')
    assert res.headers['Set-Cookie'].startswith('crumb=')
