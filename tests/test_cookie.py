"""Signed-cookie namespaces (Pyramid's, with safer defaults)."""

from pyramid import testing
from pyramid.config import Configurator
from pyramid.response import Response
import pytest
from webtest import TestApp

from pyramid_session_suite import CookieSessionFactory, WeakSecret

from .conftest import SECRET


def view(request):
    session = request.session_multi['c']
    action = request.params.get('do')
    if action == 'write':
        session['k'] = 'v'
    elif action == 'invalidate':
        session.invalidate()
    return {'k': session.get('k')}


def make_app(**options):
    config = Configurator()
    config.include('pyramid_session_suite')
    factory = CookieSessionFactory(SECRET, cookie_name='c', **options)
    config.register_session_factory('c', factory)
    config.add_route('view', '/')
    config.add_view(view, route_name='view', renderer='json')
    return TestApp(config.make_wsgi_app())


def test_invalidate_deletes_the_cookie():
    app = make_app()
    app.get('/?do=write')
    res = app.get('/?do=invalidate')
    assert res.json == {'k': None}
    [cookie] = res.headers.getall('Set-Cookie')
    assert cookie.startswith('c=;') and 'Max-Age=0' in cookie
    assert 'c' not in app.cookies


def test_reading_does_not_reissue_the_cookie_every_time():
    app = make_app(timeout=600)
    app.get('/?do=write')
    res = app.get('/')
    assert res.json == {'k': 'v'}
    assert 'Set-Cookie' not in res.headers


def test_cookies_are_not_accepted_by_another_namespace():
    one = make_app()
    one.get('/?do=write')
    config = Configurator()
    config.include('pyramid_session_suite')
    config.register_session_factory(
        'c', CookieSessionFactory(SECRET, cookie_name='other')
    )
    config.add_route('view', '/')
    config.add_view(view, route_name='view', renderer='json')
    two = TestApp(config.make_wsgi_app())
    two.set_cookie('other', one.cookies['c'])
    assert two.get('/').json == {'k': None}


def test_a_short_secret_is_refused():
    with pytest.raises(WeakSecret):
        CookieSessionFactory('short', cookie_name='c')


def test_the_cookie_is_lax_and_httponly_by_default():
    res = make_app().get('/?do=write')
    cookie = res.headers['Set-Cookie']
    assert '; HttpOnly' in cookie and '; SameSite=Lax' in cookie


# --- drop-in for Pyramid's SignedCookieSessionFactory -----------------------


def test_every_option_of_pyramid_in_the_same_order():
    import inspect
    from pyramid.session import SignedCookieSessionFactory

    ours = list(inspect.signature(CookieSessionFactory).parameters)
    pyramids = list(inspect.signature(SignedCookieSessionFactory).parameters)
    assert ours == pyramids
    # positional, as Pyramid allows
    factory = CookieSessionFactory(SECRET, 'positional', 3600, '/app')
    assert factory._cookie_name == 'positional'
    assert factory._cookie_max_age == 3600
    assert factory._cookie_path == '/app'


def test_ini_strings_are_accepted():
    factory = CookieSessionFactory(
        SECRET,
        timeout='600',
        reissue_time=' 30 ',
        max_age='86400',
        secure='true',
        httponly='false',
        set_on_exception='no',
    )
    assert (factory._timeout, factory._reissue_time) == (600, 30)
    assert factory._cookie_max_age == 86400
    assert factory._cookie_secure is True
    assert factory._cookie_httponly is False
    assert factory._cookie_on_exception is False
    # the default reissue time follows a timeout given as a string
    assert CookieSessionFactory(SECRET, timeout='600')._reissue_time == 60
    assert CookieSessionFactory(SECRET, timeout=None)._reissue_time is None


@pytest.mark.parametrize(
    'option, value',
    [('timeout', 'twenty minutes'), ('reissue_time', '1.5'),
     ('max_age', 'a year'), ('timeout', -1)],
)  # fmt: skip
def test_bad_durations_say_which_option(option, value):
    with pytest.raises(ValueError, match=f'CookieSessionFactory: {option} '):
        CookieSessionFactory(SECRET, **{option: value})


def pyramid_cookie(value, salt=b'pyramid.session.', hashalg='sha512'):
    """A cookie as Pyramid's SignedCookieSessionFactory signs it."""
    from pyramid.session import SignedCookieSessionFactory
    from webob import Response

    factory = SignedCookieSessionFactory(SECRET, salt=salt, hashalg=hashalg)
    session = factory(testing.DummyRequest())
    session.update(value)
    response = Response()
    session._set_cookie(response)
    return response.headers['Set-Cookie'].split(';')[0].split('=', 1)[1]


def load(factory, cookie):
    request = testing.DummyRequest()
    request.cookies['session'] = cookie
    return dict(factory(request))


def test_salt_and_hashalg_as_pyramid_has_them():
    cookie = pyramid_cookie({'k': 'v'})
    # our salt names the cookie: Pyramid's cookies are not accepted ...
    assert load(CookieSessionFactory(SECRET), cookie) == {}
    # ... unless Pyramid's salt is given: a migration keeps its sessions
    ours = CookieSessionFactory(SECRET, salt='pyramid.session.')
    assert load(ours, cookie) == {'k': 'v'}

    cookie = pyramid_cookie({'k': 'v'}, salt=b'mine.', hashalg='sha256')
    ours = CookieSessionFactory(SECRET, salt=b'mine.', hashalg='sha256')
    assert load(ours, cookie) == {'k': 'v'}
    assert load(CookieSessionFactory(SECRET, salt=b'mine.'), cookie) == {}


@pytest.mark.parametrize(
    'hashalg, reason',
    [
        ('md5', 'MD5 is broken'),
        ('MD5', 'MD5 is broken'),
        ('shake_128', 'no fixed digest size'),
        ('rot13', 'not a hash function'),
    ],
)
def test_unsafe_or_unknown_hash_functions_are_refused(hashalg, reason):
    with pytest.raises(ValueError, match=reason):
        CookieSessionFactory(SECRET, hashalg=hashalg)


@pytest.mark.parametrize('hashalg', ['sha256', 'sha1', 'blake2b', 'sha3_512'])
def test_other_hash_functions_work(hashalg):
    app = make_app(hashalg=hashalg)
    app.get('/?do=write')
    assert app.get('/').json == {'k': 'v'}


def test_set_on_exception():
    def failing(request):
        request.session_multi['c']['k'] = 'v'
        raise RuntimeError('boom')

    for set_on_exception, expected in ((True, ['c']), (False, [])):
        config = Configurator()
        config.include('pyramid_session_suite')
        config.register_session_factory(
            'c',
            CookieSessionFactory(
                SECRET, cookie_name='c', set_on_exception=set_on_exception
            ),
        )
        config.add_route('fail', '/')
        config.add_view(failing, route_name='fail')
        config.add_view(
            lambda exc, request: Response('sorry', status=500),
            context=RuntimeError,
        )
        res = TestApp(config.make_wsgi_app()).get('/', status=500)
        names = [c.split('=')[0] for c in res.headers.getall('Set-Cookie')]
        assert names == expected


def test_a_weak_secret_says_why():
    with pytest.raises(WeakSecret, match='too short .* at least 32'):
        CookieSessionFactory('s' * 31)
