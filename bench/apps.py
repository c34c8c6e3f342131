"""The three stacks under test, as Pyramid WSGI applications.

Each has the same routes and views:

``/untouched``
    touches no session namespace;
``/read``
    reads ``user`` from the Redis namespace ``r``;
``/write``
    increments ``visits`` in ``r`` (without a cookie this creates a
    session);
``/login``
    fills ``r`` and the cookie namespace ``c``: makes the returning
    visitor of the other scenarios; never timed.

``floor`` answers every route with a constant and has no sessions at all.
"""

from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory

STACKS = ('floor', 'anchor', 'suite')

SECRET = 'benchmark-only secret, 48 bytes, never deployed!'

ANCHOR_VERSION = '0.4.0'

ROUTES = ('untouched', 'read', 'write', 'login')


def untouched_view(request):
    return Response(b'untouched')


def read_view(request):
    return Response(str(request.session_multi['r'].get('user')))


def write_view(request):
    session = request.session_multi['r']
    session['visits'] = visits = session.get('visits', 0) + 1
    return Response(str(visits))


def login_view(request):
    request.session_multi['r'].update({'user': 'alice', 'visits': 0})
    request.session_multi['c']['theme'] = 'dark'
    return Response(b'login')


def floor_view(request):
    return Response(b'hello')


VIEWS = {
    'untouched': untouched_view,
    'read': read_view,
    'write': write_view,
    'login': login_view,
}


def add_routes(config, views):
    for name in ROUTES:
        config.add_route(name, '/' + name)
        config.add_view(views[name], route_name=name)


def cookie_factory():
    return SignedCookieSessionFactory(SECRET, cookie_name='c')


def build_floor(client=None):
    """Bare Pyramid: the same routes, no sessions."""
    config = Configurator()
    add_routes(config, dict.fromkeys(ROUTES, floor_view))
    return config.make_wsgi_app()


def build_anchor(client):
    """``pyramid_session_multi`` with a ``pyramid_session_redis`` namespace
    (on its own client, made once) and a signed cookie namespace."""
    import pyramid_session_multi
    import pyramid_session_redis

    version = getattr(pyramid_session_multi, '__VERSION__', None)
    if version != ANCHOR_VERSION:
        raise RuntimeError(
            f'the anchor is pyramid_session_multi {ANCHOR_VERSION}, but '
            f'{pyramid_session_multi.__file__} is {version!r}'
        )

    def redis_client_callable(request, **redis_options):
        return client

    config = Configurator()
    config.include('pyramid_session_multi')
    factory = pyramid_session_redis.RedisSessionFactory(
        secret=SECRET,
        timeout=1200,
        cookie_name='r',
        redis_client_callable=redis_client_callable,
    )
    pyramid_session_multi.register_session_factory(
        config, 'r', factory, cookie_name='r'
    )
    pyramid_session_multi.register_session_factory(
        config, 'c', cookie_factory(), cookie_name='c'
    )
    add_routes(config, VIEWS)
    return config.make_wsgi_app()


def build_suite(client):
    """``pyramid_session_suite`` with its Redis namespace and a signed
    cookie namespace."""
    import pyramid_session_suite

    config = Configurator()
    config.include('pyramid_session_suite')
    config.register_session_factory(
        'r',
        pyramid_session_suite.RedisSessionFactory(
            SECRET, redis_client=client, cookie_name='r', timeout=1200
        ),
    )
    config.register_session_factory('c', cookie_factory(), cookie_name='c')
    add_routes(config, VIEWS)
    return config.make_wsgi_app()


BUILDERS = {
    'floor': build_floor,
    'anchor': build_anchor,
    'suite': build_suite,
}


def build(stack, client):
    """The WSGI application of ``stack``; ``client`` is its Redis client."""
    return BUILDERS[stack](client)
