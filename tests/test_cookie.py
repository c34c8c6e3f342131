"""Signed-cookie namespaces (Pyramid's, with safer defaults)."""

from pyramid.config import Configurator
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
