"""Two sites on different registrable domains sharing one Redis session
store, for the cross-domain tests (WebTest and a real browser)."""

from pyramid.config import Configurator
from pyramid.response import Response

from .usersapp import redis_main

HUB = 'https://www.site-a.test'
SITE = 'https://www.site-b.test'
XD_SECRET = 'cross-domain-test-secret-of-32-bytes-or-more'


def site_settings(redis_url, sites=(HUB, SITE), **extra):
    settings = redis_main(redis_url)
    settings.update(
        {
            'session_suite.namespace.main.cookie_secure': 'true',
            'session_suite.crossdomain.sites': ' '.join(sites),
            'session_suite.crossdomain.secret': XD_SECRET,
        }
    )
    settings.update(
        {f'session_suite.crossdomain.{k}': v for k, v in extra.items()}
    )
    return settings


def login(request):
    if request.params.get('remember'):
        from pyramid_session_suite import login

        login(request, request.params['user'], remember=True)
    request.session['user'] = request.params['user']
    return Response(
        f'<html><body>hello {request.params["user"]}</body></html>'
    )


def page(request):
    from pyramid_session_suite.crossdomain.views import shared_session_loader

    user = request.session.get('user')
    loader = shared_session_loader(request)
    return Response(
        f'<html><body><p id="user">{user or "anonymous"}</p>'
        f'<p id="host">{request.host.split(":")[0]}</p>{loader}</body></html>'
    )


def signin(request):
    """A login of the user index (``/signin``, with ``accounts``)."""
    from pyramid_session_suite import login

    login(request, request.params['user'])
    request.session['user'] = request.params['user']
    return Response(f'<html><body>hello {request.params["user"]}</body>')


def password(request):
    """A password change (``/password``, with ``accounts``)."""
    from pyramid_session_suite import credentials_changed

    ended = credentials_changed(request)
    return Response(f'<html><body>ended {ended}</body></html>')


def make_site(redis_url, sites=(HUB, SITE), accounts=False, **extra):
    """A site of the group; with ``accounts``, logins of the user index
    too (``/signin``, ``/password``)."""
    settings = site_settings(redis_url, sites, **extra)
    if accounts:
        settings['session_suite.user_index.secret'] = XD_SECRET + '-index'
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite.crossdomain')
    if accounts:
        from .usersapp import SessionSecurityPolicy

        config.set_security_policy(SessionSecurityPolicy())
        config.include('pyramid_session_suite.user_index')
        config.add_route('signin', '/signin')
        config.add_view(signin, route_name='signin')
        config.add_route('password', '/password')
        config.add_view(password, route_name='password')
    config.add_route('login', '/login')
    config.add_view(login, route_name='login')
    config.add_route('page', '/page')
    config.add_view(page, route_name='page')
    config.add_route('home', '/')
    config.add_view(page, route_name='home')
    return config.make_wsgi_app()


def by_host(apps):
    """One WSGI app answering for several hosts (the Host header picks)."""

    def dispatch(environ, start_response):
        host = environ.get('HTTP_HOST', '').split(':')[0]
        app = apps.get(host)
        if app is None:
            start_response('404 Not Found', [('Content-Type', 'text/plain')])
            return [b'unknown host']
        return app(environ, start_response)

    return dispatch
