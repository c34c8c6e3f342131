"""A small Pyramid application showing ``pyramid_session_suite``.

Run it with ``make demo`` (or ``PYTHONPATH=. pserve development.ini``). The
session namespaces are declared in ``development.ini``; this module only
provides a Redis server for them and wires the views.
"""

import atexit
import logging
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from pyramid_session_suite.testing import RedisServer

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
    config.add_route('theme', '/theme')
    config.add_route('forget', '/forget')
    config.add_route('about', '/about')
