"""A small Pyramid application showing ``pyramid_session_suite``.

Run it with ``make demo`` (or ``PYTHONPATH=. pserve development.ini``): one
server answers on http://127.0.0.1:6543/ and http://localhost:6544/, two
sites to a browser. The session namespaces, the user index, the policy and
the cross-domain group are set up in ``development.ini``; this module
provides a Redis server for them, the security policy and the views.
"""

import atexit
import logging
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from pyramid_session_suite.testing import RedisServer

from .security import DemoSecurityPolicy

log = logging.getLogger(__name__)

#: ``demo.redis``: ``embedded`` or the URL of a Redis server
REDIS_SETTING = 'demo.redis'

#: the registry key of the embedded Redis server, when one was started
REDIS_SERVER_KEY = 'demo.redis_server'

URL_SCHEMES = ('redis://', 'rediss://', 'unix://')


def main(global_config, **settings):
    """Return the demo WSGI application."""
    server = None
    choice = (settings.get(REDIS_SETTING) or 'embedded').strip()
    if choice == 'embedded':
        server = start_embedded_redis()
        settings['session_suite.redis_url'] = server.url
    elif choice.startswith(URL_SCHEMES):
        settings['session_suite.redis_url'] = choice
    else:
        raise ConfigurationError(
            f'{REDIS_SETTING}: expected "embedded" or a redis:// URL, '
            f'not {choice!r}'
        )

    with Configurator(settings=settings) as config:
        config.registry[REDIS_SERVER_KEY] = server
        config.include('pyramid_session_suite')
        config.set_security_policy(DemoSecurityPolicy())
        # one login per account, idle timeout, "Your sessions" pages (and
        # the user index they need): session_suite.policy.* and
        # session_suite.user_index.* in development.ini
        config.include('pyramid_session_suite.policy')
        # the login shared by 127.0.0.1:6543 and localhost:6544:
        # session_suite.crossdomain.* in development.ini
        config.include('pyramid_session_suite.crossdomain')
        # every POST, PUT, DELETE... must carry request.session's CSRF token
        config.set_default_csrf_options(require_csrf=True)
        config.include(add_routes)
        config.scan('.views')
    return config.make_wsgi_app()


def start_embedded_redis():
    """Start a private Redis server (or use ``REDIS_URL`` when set), stopped
    when the process exits."""
    server = RedisServer().start()
    if server.started:
        atexit.register(server.stop)
        log.info('embedded Redis server at %s', server.url)
    else:
        log.info('using REDIS_URL %s', server.url)
    return server


def add_routes(config):
    config.add_route('home', '/')
    config.add_route('login', '/login')
    config.add_route('logout', '/logout')
    config.add_route('theme', '/theme')
    config.add_route('forget', '/forget')
    config.add_route('about', '/about')
