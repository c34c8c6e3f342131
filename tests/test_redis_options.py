"""``RedisSessionFactory`` takes the options of
``pyramid_session_redis.RedisSessionFactory`` that fit, and names the ones
it deliberately does not offer."""

import datetime
from urllib.parse import urlsplit
from pyramid.config import Configurator
from pyramid.response import Response
import pytest
import redis
from webtest import TestApp

from pyramid_session_suite import RedisSessionFactory

from .conftest import SECRET


def app_of(factory):
    config = Configurator()
    config.set_session_factory(factory)

    def view(request):
        if 'v' in request.params:
            request.session['v'] = request.params['v']
        return Response(str(request.session.get('v')))

    config.add_route('v', '/')
    config.add_view(view, route_name='v')
    return TestApp(config.make_wsgi_app())


def test_cookie_expires_and_comment(redis_url):
    when = datetime.datetime(2031, 1, 2, 3, 4, 5)
    factory = RedisSessionFactory(
        SECRET,
        redis_url=redis_url,
        cookie_expires=when,
        cookie_comment='sessions',
    )
    res = app_of(factory).get('/?v=1')
    header = res.headers['Set-Cookie']
    assert 'expires=Thu, 02-Jan-2031 03:0' in header
    assert 'Comment=sessions' in header


def test_an_id_generator_makes_the_ids(redis_url, redis_client):
    made = iter(f'generated-id-number-{n:04d}' for n in range(10))
    factory = RedisSessionFactory(
        SECRET, redis_url=redis_url, id_generator=lambda: next(made)
    )
    app = app_of(factory)
    app.get('/?v=1')
    assert redis_client.keys('*') == [b'session:generated-id-number-0000']
    assert app.get('/').text == '1'


def test_an_id_generator_that_makes_unsafe_ids_is_refused(redis_url):
    factory = RedisSessionFactory(
        SECRET, redis_url=redis_url, id_generator=lambda: 'a{b}:lock'
    )
    with pytest.raises(ValueError, match='id_generator must return'):
        app_of(factory).get('/?v=1')


def test_the_separate_connection_options(redis_url, redis_client):
    parts = urlsplit(redis_url)
    factory = RedisSessionFactory(
        SECRET,
        redis_host=parts.hostname,
        redis_port=parts.port,
        redis_db=int(parts.path.strip('/') or 0),
        redis_socket_timeout=0.5,
    )
    kwargs = factory.redis.connection_pool.connection_kwargs
    assert kwargs['socket_timeout'] == 0.5
    app = app_of(factory)
    app.get('/?v=2')
    assert app.get('/').text == '2'
    assert len(redis_client.keys('session:*')) == 1


def test_a_connection_pool(redis_url):
    pool = redis.ConnectionPool.from_url(redis_url)
    factory = RedisSessionFactory(SECRET, redis_connection_pool=pool)
    assert factory.redis.connection_pool is pool
    app = app_of(factory)
    app.get('/?v=3')
    assert app.get('/').text == '3'


@pytest.mark.parametrize(
    'option',
    [
        'set_redis_ttl_readheavy',
        'timeout_trigger',
        'python_expires',
        'redis_client_callable',
    ],
)
def test_options_not_offered_say_why(redis_url, option):
    with pytest.raises(TypeError, match=f'{option} is not offered: .+'):
        RedisSessionFactory(SECRET, redis_url=redis_url, **{option: 1})


def test_an_unknown_option_is_a_type_error(redis_url):
    with pytest.raises(TypeError, match="unexpected option 'colour'"):
        RedisSessionFactory(SECRET, redis_url=redis_url, colour='red')
