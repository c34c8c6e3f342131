"""Several lazy session namespaces per request for Pyramid.

``config.include('pyramid_session_suite')`` installs the core:
``request.session_multi`` and the ``config.register_session_factory``
directive.
"""

from typing import Any

from .config import includeme, register_session_factory
from .cookie import CookieSessionFactory
from .exceptions import (
    SessionSuiteNotIncluded,
    SessionTooLarge,
    UnregisteredSession,
    WeakSecret,
)
from .interfaces import ISessionMultiManagerConfig
from .multi import (
    SessionMultiManager,
    SessionMultiManagerConfig,
    new_session_multi,
)
from .redis.clients import redis_client

__all__ = [
    'CookieSessionFactory',
    'ISessionMultiManagerConfig',
    'RedisSessionFactory',
    'SessionMultiManager',
    'SessionMultiManagerConfig',
    'SessionSuiteNotIncluded',
    'SessionTooLarge',
    'UnregisteredSession',
    'WeakSecret',
    'LoginRefusedError',
    'credentials_changed',
    'login',
    'logout',
    'includeme',
    'new_session_multi',
    'redis_client',
    'redis_session_factory',
    'register_session_factory',
]


def __getattr__(name: str) -> Any:
    # the Redis backend needs the "redis" extra; import it on first use
    if name in ('RedisSessionFactory', 'redis_session_factory'):
        from . import redis

        return getattr(redis, name)
    if name in ('login', 'logout', 'credentials_changed', 'LoginRefusedError'):
        from . import auth

        return getattr(auth, name)
    raise AttributeError(name)
