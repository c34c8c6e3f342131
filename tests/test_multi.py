"""request.session_multi: lazy namespaces; drop-in for session_multi."""

from pyramid import testing
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.session import SignedCookieSessionFactory
import pytest
from webtest import TestApp

from pyramid_session_suite import (
    ISessionMultiManagerConfig,
    SessionMultiManager,
    UnregisteredSession,
    new_session_multi,
    register_session_factory,
)

from .conftest import SECRET


def cookie_factory(name):
    return SignedCookieSessionFactory(SECRET, cookie_name=name)


def yes(request):
    return True


def no(request):
    return False


@pytest.fixture
def autocommit():
    config = testing.setUp()
    config.include('pyramid_session_suite')
    yield config
    testing.tearDown()


def make_request(config, cookies=None):
    request = testing.DummyRequest(cookies=cookies or {})
    request.registry = config.registry
    request.session_multi = new_session_multi(request)
    return request


def test_namespaces_are_made_on_first_access(autocommit):
    register_session_factory(autocommit, 'a', cookie_factory('ca'))
    register_session_factory(autocommit, 'b', cookie_factory('cb'))
    request = make_request(autocommit)
    manager = request.session_multi
    assert isinstance(manager, SessionMultiManager)
    assert 'a' not in manager and len(manager) == 0
    manager['a']['x'] = 1
    assert 'a' in manager and 'b' not in manager
    assert manager.get('b') is None  # get() does not load
    assert manager.namespaces == ['a', 'b']
    assert manager['a'] is manager['a']
    assert type(manager['a']).__name__ == 'CookieSession'


def test_unknown_namespace_is_a_key_error(autocommit):
    request = make_request(autocommit)
    with pytest.raises(UnregisteredSession):
        request.session_multi['nope']
    with pytest.raises(KeyError):
        request.session_multi['nope']


@pytest.mark.parametrize(
    'mutate',
    [
        lambda m: m.__setitem__('a', {}),
        lambda m: m.__delitem__('a'),
        lambda m: m.update(a={}),
        lambda m: m.pop('a'),
        lambda m: m.popitem(),
        lambda m: m.setdefault('a', {}),
        lambda m: m.clear(),
    ],
)
def test_the_mapping_is_read_only(autocommit, mutate):
    register_session_factory(autocommit, 'a', cookie_factory('ca'))
    request = make_request(autocommit)
    request.session_multi['a']
    with pytest.raises(ValueError):
        mutate(request.session_multi)
    assert request.session_multi['a'] is not None


def test_discriminator_falsy_gives_none_and_skips_factory(autocommit):
    calls = []

    def factory(request):
        calls.append(request)
        return {}

    register_session_factory(
        autocommit, 'a', factory, discriminator=no, cookie_name='ca'
    )
    register_session_factory(
        autocommit, 'b', cookie_factory('cb'), discriminator=yes
    )
    request = make_request(autocommit)
    assert request.session_multi['a'] is None
    assert calls == []
    assert request.session_multi['b'] == {}
    assert request.session_multi.discriminators == ['a', 'b']


def test_namespace_accessors(autocommit):
    factory = cookie_factory('ca')
    register_session_factory(autocommit, 'a', factory, discriminator=yes)
    manager = make_request(autocommit).session_multi
    assert manager.has_namespace('a') and not manager.has_namespace('z')
    assert manager.get_namespace_config('a') is factory
    assert manager.get_namespace_cookiename('a') == 'ca'
    assert manager.get_namespace_discriminator('a') is yes
    assert manager.namespaces_to_cookienames == {'a': 'ca'}


def test_invalidate_skips_discriminated_out_and_cookieless(autocommit):
    loaded = []

    def factory(name):
        def make(request):
            loaded.append(name)
            return cookie_factory(name)(request)

        make._cookie_name = name
        return make

    register_session_factory(autocommit, 'out', factory('out'), no)
    register_session_factory(autocommit, 'idle', factory('idle'))
    register_session_factory(autocommit, 'used', factory('used'))
    request = make_request(autocommit, cookies={'out': 'x'})
    request.session_multi['used']['k'] = 'v'
    request.session_multi.invalidate()
    assert loaded == ['used']
    assert request.session_multi['used'].get('k') is None
    assert request.session_multi['out'] is None


def test_invalidate_loads_an_untouched_namespace_with_a_cookie(autocommit):
    register_session_factory(autocommit, 'a', cookie_factory('ca'))
    request = make_request(autocommit, cookies={'ca': 'whatever'})
    request.session_multi.invalidate()
    assert 'a' in request.session_multi


@pytest.mark.parametrize(
    'args, message',
    [
        ((None, 'factory'), 'namespace is required'),
        (('', 'factory'), 'namespace is required'),
        (('a', None), 'session factory is required'),
        (('a', lambda request: {}), 'cannot tell the cookie name'),
    ],
)
def test_registration_errors_are_immediate(autocommit, args, message):
    namespace, factory = args
    if factory == 'factory':
        factory = cookie_factory('c')
    with pytest.raises(ConfigurationError, match=message):
        register_session_factory(autocommit, namespace, factory)


def test_duplicates_are_refused(autocommit):
    factory = cookie_factory('c1')
    register_session_factory(autocommit, 'a', factory)
    with pytest.raises(ConfigurationError, match='already registered'):
        register_session_factory(autocommit, 'a', cookie_factory('c2'))
    with pytest.raises(ConfigurationError, match='already registered'):
        register_session_factory(autocommit, 'b', factory)
    with pytest.raises(ConfigurationError, match="cookie name 'c1'"):
        register_session_factory(autocommit, 'b', cookie_factory('c1'))
    config = autocommit.registry.getUtility(ISessionMultiManagerConfig)
    assert config.namespaces == ['a']


def test_registering_before_the_include_says_what_to_do():
    config = testing.setUp()
    try:
        with pytest.raises(AttributeError, match='pyramid_session_suite'):
            register_session_factory(config, 'a', cookie_factory('c'))
        with pytest.raises(ConfigurationError):
            register_session_factory(config, 'a', cookie_factory('c'))
    finally:
        testing.tearDown()


def test_directive_conflicts_name_both_call_sites():
    config = Configurator()
    config.include('pyramid_session_suite')
    config.register_session_factory('a', cookie_factory('c1'))
    config.register_session_factory('a', cookie_factory('c2'))
    with pytest.raises(ConfigurationError) as info:
        config.commit()
    assert 'session_suite namespace' in str(info.value)
    assert str(info.value).count('test_multi.py') == 2


def test_cookie_name_conflicts_at_commit():
    config = Configurator()
    config.include('pyramid_session_suite')
    config.register_session_factory('a', cookie_factory('same'))
    config.register_session_factory('b', cookie_factory('same'))
    with pytest.raises(ConfigurationError, match='session_suite cookie'):
        config.commit()


def test_registrations_are_introspectable():
    config = Configurator()
    config.include('pyramid_session_suite')
    config.register_session_factory('a', cookie_factory('ca'), yes)
    config.commit()
    intr = config.registry.introspector.get('session_suite namespaces', 'a')
    assert intr['cookie_name'] == 'ca'
    assert intr['discriminator'] is yes
    assert intr.title == "request.session_multi['a']"


def make_app(configure):
    config = Configurator()
    config.include('pyramid_session_suite')
    configure(config)
    return TestApp(config.make_wsgi_app())


def test_in_an_app_only_the_touched_namespace_sets_a_cookie():
    def view(request):
        request.session_multi['a']['n'] = (
            request.session_multi['a'].get('n', 0) + 1
        )
        return {
            'n': request.session_multi['a']['n'],
            'seen': sorted(request.session_multi),
        }

    def idle(request):
        return {'seen': sorted(request.session_multi)}

    def configure(config):
        config.register_session_factory('a', cookie_factory('ca'))
        config.register_session_factory('b', cookie_factory('cb'))
        config.add_route('view', '/')
        config.add_view(view, route_name='view', renderer='json')
        config.add_route('idle', '/idle')
        config.add_view(idle, route_name='idle', renderer='json')

    app = make_app(configure)
    res = app.get('/')
    assert res.json == {'n': 1, 'seen': ['a']}
    assert [h.split('=')[0] for h in res.headers.getall('Set-Cookie')] == [
        'ca'
    ]
    assert app.get('/').json['n'] == 2
    res = app.get('/idle')
    assert res.json == {'seen': []}
    assert 'Set-Cookie' not in res.headers


def test_session_multi_survives_a_custom_request_factory():
    from pyramid.request import Request

    class MyRequest(Request):
        flavour = 'mine'

    def view(request):
        return {
            'flavour': request.flavour,
            'namespaces': request.session_multi.namespaces,
        }

    def configure(config):
        config.register_session_factory('a', cookie_factory('ca'))
        config.set_request_factory(MyRequest)  # after the include
        config.add_route('view', '/')
        config.add_view(view, route_name='view', renderer='json')

    res = make_app(configure).get('/')
    assert res.json == {'flavour': 'mine', 'namespaces': ['a']}


def test_session_multi_with_a_function_request_factory():
    from pyramid.request import Request

    def request_factory(environ):
        request = Request(environ)
        request.flavour = 'function'
        return request

    def view(request):
        return {
            'flavour': request.flavour,
            'accessed': list(request.session_multi),
        }

    def configure(config):
        config.set_request_factory(request_factory)
        config.add_route('view', '/')
        config.add_view(view, route_name='view', renderer='json')

    res = make_app(configure).get('/')
    assert res.json == {'flavour': 'function', 'accessed': []}
