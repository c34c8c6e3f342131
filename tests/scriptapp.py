"""The application of the ``session-suite`` script tests, made from an ini
file (``use = call:tests.scriptapp:main``): the logins app of
:mod:`tests.usersapp` on ``session_suite.redis_url``."""

from pyramid_session_suite.events import SessionRevoked

from .usersapp import make_config

#: the SessionRevoked events of every application made here
EVENTS = []


def main(global_config, **settings):
    include = settings.pop(
        'scriptapp.include', 'pyramid_session_suite.user_index'
    )
    redis_url = settings.pop('session_suite.redis_url')
    config = make_config(redis_url, include=include, **settings)
    config.add_subscriber(EVENTS.append, SessionRevoked)
    return config.make_wsgi_app()
