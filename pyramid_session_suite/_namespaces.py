"""Session namespaces declared in the settings, without Python code::

session_suite.namespaces = main prefs
session_suite.namespace.main.backend = redis
session_suite.namespace.main.secret = ...
session_suite.namespace.prefs.secret = ...
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping
import pickle
from typing import TYPE_CHECKING, Any, cast
from pyramid.exceptions import ConfigurationError

from ._settings import (
    PREFIX,
    REQUIRED,
    as_bool,
    as_list,
    as_nonnegative_float,
    as_positive_float,
    as_seconds,
    as_str,
    one_of,
    parse_settings,
)
from .cookie import CookieSessionFactory
from .redis.clients import (
    CONNECTION_SETTINGS,
    client_from_settings,
    connection_options,
)
from .signing import secret_list

if TYPE_CHECKING:
    from pyramid.request import Request

    from .multi import SessionMultiManagerConfig
    from .redis import RedisSessionFactory

NAMESPACE_PREFIX = PREFIX + 'namespace.'

NAMESPACE_SETTINGS = (
    ('backend', one_of('cookie', 'redis'), 'cookie'),
    ('secret', as_list, REQUIRED),
    ('cookie_name', as_str, None),
    ('timeout', as_seconds, 1200),
    ('reissue_time', as_seconds, None),
    ('cookie_max_age', as_seconds, None),
    ('cookie_path', as_str, '/'),
    ('cookie_domain', as_str, None),
    ('cookie_secure', as_bool, False),
    ('cookie_httponly', as_bool, True),
    ('cookie_samesite', one_of('Strict', 'Lax', 'None'), 'Lax'),
    ('key_prefix', as_str, None),
    ('serializer', one_of('json', 'pickle'), 'json'),
    ('lock_timeout', as_positive_float, 30.0),
    ('lock_wait', as_nonnegative_float, 10.0),
    ('remember_max_age', as_seconds, 30 * 86400),
    *CONNECTION_SETTINGS,
)


def factory_from_settings(
    settings: MutableMapping[str, Any], namespace: str, core: Mapping[str, Any]
) -> Callable[[Request], Any]:
    """Return the session factory declared for ``namespace``."""
    prefix = f'{NAMESPACE_PREFIX}{namespace}.'
    options = parse_settings(settings, NAMESPACE_SETTINGS, prefix, strict=True)
    secret_list(options['secret'], prefix + 'secret')
    cookie_name = options['cookie_name'] or namespace
    cookie = {
        'cookie_name': cookie_name,
        'cookie_max_age': options['cookie_max_age'],
        'cookie_path': options['cookie_path'],
        'cookie_domain': options['cookie_domain'],
        'cookie_secure': options['cookie_secure'],
        'cookie_httponly': options['cookie_httponly'],
        'cookie_samesite': options['cookie_samesite'],
    }
    if options['backend'] == 'cookie':
        return cookie_session_factory(options['secret'], options, cookie)
    return redis_session_factory(options, cookie, namespace, core, prefix)


def cookie_session_factory(
    secret: Any, options: Mapping[str, Any], cookie: Mapping[str, Any]
) -> Callable[[Request], Any]:
    factory: Callable[[Request], Any] = CookieSessionFactory(
        secret,
        cookie_name=cookie['cookie_name'],
        timeout=options['timeout'],
        reissue_time=options['reissue_time'],
        max_age=cookie['cookie_max_age'],
        path=cookie['cookie_path'],
        domain=cookie['cookie_domain'],
        secure=cookie['cookie_secure'],
        httponly=cookie['cookie_httponly'],
        samesite=cookie['cookie_samesite'],
    )
    return factory


def redis_session_factory(
    options: Mapping[str, Any],
    cookie: Mapping[str, Any],
    namespace: str,
    core: Mapping[str, Any],
    prefix: str,
) -> RedisSessionFactory:
    try:
        from .redis import RedisSessionFactory, json_dumps, json_loads
    except ImportError as exc:
        raise ConfigurationError(
            f'{prefix}backend = redis needs the "redis" extra: '
            'pip install "pyramid_session_suite[redis]"'
        ) from exc
    client = client_from_settings(
        *connection_options(options, core, prefix, PREFIX)
    )
    serialize: Callable[[Any], bytes] = json_dumps
    deserialize: Callable[[bytes], Any] = json_loads
    if options['serializer'] == 'pickle':
        serialize, deserialize = pickle.dumps, pickle.loads
    return RedisSessionFactory(
        options['secret'],
        timeout=options['timeout'],
        redis_client=client,
        key_prefix=options['key_prefix'] or f'session_suite:{namespace}:',
        serialize=serialize,
        deserialize=deserialize,
        lock_timeout=options['lock_timeout'],
        lock_wait=options['lock_wait'],
        remember_max_age=options['remember_max_age'],
        **cookie,
    )


def check_unlisted(
    settings: Mapping[str, Any], listed: Collection[str]
) -> None:
    """Settings for a namespace missing from ``session_suite.namespaces``
    are a mistake: say so."""
    for key in settings:
        if key.startswith(NAMESPACE_PREFIX):
            name = key[len(NAMESPACE_PREFIX) :].rpartition('.')[0]
            if name not in listed:
                raise ConfigurationError(
                    f'{key}: namespace {name!r} is not listed in '
                    f'{PREFIX}namespaces'
                )


def feature_namespace(
    settings: Mapping[str, Any], namespace: str | None, prefix: str
) -> str:
    """The namespace a feature works on: its own ``<prefix>namespace``
    setting, else ``session_suite.request_session``."""
    namespace = namespace or settings.get(PREFIX + 'request_session')
    if not namespace:
        raise ConfigurationError(
            f'{prefix}namespace is required (or set {PREFIX}request_session)'
        )
    return namespace


def redis_factory(
    manager_config: SessionMultiManagerConfig,
    namespace: str,
    key: str,
    why: str = '',
) -> RedisSessionFactory:
    """The factory of the Redis namespace ``namespace`` (at commit time),
    or a ``ConfigurationError`` naming ``key``."""
    if not manager_config.has_namespace(namespace):
        raise ConfigurationError(f'{key}: no namespace {namespace!r}')
    factory = manager_config.get_namespace_config(namespace)
    if getattr(factory, 'backend', None) != 'redis':
        raise ConfigurationError(
            f'{key}: namespace {namespace!r} is not a Redis namespace{why}'
        )
    return cast('RedisSessionFactory', factory)
