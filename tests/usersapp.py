"""A small application with logins, for the user index and policy tests."""

from pyramid.authentication import SessionAuthenticationHelper
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.security import Allowed, Denied, forget, remember

from pyramid_session_suite import login, logout

from .conftest import SECRET

FIREFOX = (
    'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
)
IPHONE = (
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) '
    'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 '
    'Safari/604.1'
)


class SessionSecurityPolicy:
    """The user id lives in request.session; "admin" may administrate."""

    def __init__(self):
        self.helper = SessionAuthenticationHelper()

    def identity(self, request):
        return self.helper.authenticated_userid(request)

    def authenticated_userid(self, request):
        return self.helper.authenticated_userid(request)

    def permits(self, request, context, permission):
        userid = self.authenticated_userid(request)
        if permission == 'session_suite.admin':
            return Allowed('admin') if userid == 'admin' else Denied('no')
        return Allowed('user') if userid else Denied('anonymous')

    def remember(self, request, userid, **kw):
        return self.helper.remember(request, userid, **kw)

    def forget(self, request, **kw):
        return self.helper.forget(request, **kw)


def login_view(request):
    remember = request.params.get('remember') == '1'
    headers = login(request, request.params['user'], remember=remember)
    request.response.headerlist.extend(headers)
    return {'user': request.params['user']}


def logout_view(request):
    request.response.headerlist.extend(logout(request))
    return {}


def whoami(request):
    session = request.session
    if request.params.get('write'):
        session['n'] = session.get('n', 0) + 1
    return {
        'user': request.authenticated_userid,
        'n': session.get('n'),
        'ended': request.environ.get('session_suite.ended'),
    }


def my_sessions(request):
    sessions = request.user_sessions
    if request.authenticated_userid is None:
        raise HTTPForbidden()
    action = request.params.get('do')
    if action == 'revoke':
        return {'count': sessions.revoke(request.params['handle'])}
    if action == 'others':
        return {'count': sessions.revoke_others()}
    if action == 'all':
        return {'count': sessions.revoke_all()}
    return {'current': sessions.current, 'sessions': sessions.list()}


def redis_main(redis_url):
    """Settings of one Redis namespace, ``main``, also ``request.session``;
    ``redis_url`` is a URL or a dict of connection settings (a cluster, a
    Sentinel)."""
    settings = {
        'session_suite.namespaces': 'main',
        'session_suite.request_session': 'main',
        'session_suite.namespace.main.backend': 'redis',
        'session_suite.namespace.main.secret': SECRET,
    }
    if isinstance(redis_url, dict):
        settings.update(redis_url)
    else:
        settings['session_suite.redis_url'] = redis_url
    return settings


def settings_for(redis_url, **extra):
    settings = redis_main(redis_url)
    settings['session_suite.user_index.secret'] = SECRET + '-index'
    settings.update(extra)
    return settings


def make_config(redis_url, include='pyramid_session_suite.user_index', **kw):
    config = Configurator(settings=settings_for(redis_url, **kw))
    config.set_security_policy(SessionSecurityPolicy())
    config.include(include)
    add_views(config)
    return config


def add_views(config):
    for name, view in [
        ('login', login_view),
        ('logout', logout_view),
        ('whoami', whoami),
        ('mine', my_sessions),
    ]:
        config.add_route(name, '/' + name)
        config.add_view(view, route_name=name, renderer='json')


def plain_login_view(request):
    request.response.headerlist.extend(
        remember(request, request.params['user'])
    )
    return {}


def plain_logout_view(request):
    request.response.headerlist.extend(forget(request))
    return {}


def add_plain_views(config):
    """Log in and out through the security policy alone (``remember()``,
    ``forget()``), not ``login()``/``logout()``: ``/plain-login?user=…``
    and ``/plain-logout``."""
    for name, path, view in [
        ('plain_login', '/plain-login', plain_login_view),
        ('plain_logout', '/plain-logout', plain_logout_view),
    ]:
        config.add_route(name, path)
        config.add_view(view, route_name=name, renderer='json')
