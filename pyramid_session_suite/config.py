"""Configuration time: the core ``includeme``, the
``register_session_factory`` directive and ``request.session_multi``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IRequestFactory, ISessionFactory
from pyramid.request import Request
from pyramid.tweens import EXCVIEW

from . import _namespaces as namespaces
from ._settings import Setting, as_list, as_str, parse_settings
from .exceptions import SessionSuiteNotIncluded
from .interfaces import ISessionMultiManagerConfig
from .multi import (
    LazyAttribute,
    SessionMultiManager,
    SessionMultiManagerConfig,
    backend_of,
    derive_cookie_name,
)
from .redis.clients import CONNECTION_SETTINGS

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.registry import Registry
    from pyramid.response import Response

#: runs after every ``set_request_factory`` (order 0), whatever the order
#: of the calls
LATE = 10

CORE_SETTINGS: tuple[Setting, ...] = (
    ('namespaces', as_list, []),
    ('request_session', as_str, None),
    *CONNECTION_SETTINGS,
)


def includeme(config: Configurator) -> None:
    """Install ``request.session_multi`` and the
    ``config.register_session_factory`` directive; register the namespaces
    declared under ``session_suite.``."""
    registry = config.registry
    manager_config = registry.queryUtility(ISessionMultiManagerConfig)
    if manager_config is None:
        manager_config = SessionMultiManagerConfig(config)
        registry.registerUtility(manager_config, ISessionMultiManagerConfig)
    config.add_directive('register_session_factory', register_session_factory)
    add_request_attribute(
        config,
        'session_multi',
        lambda request: SessionMultiManager(request, manager_config),
    )
    config.action(
        ('session_suite', 'request attributes'),
        lambda: install_request_attributes(registry),
        order=LATE,
    )
    config.add_tween(
        'pyramid_session_suite.config.persist_tween_factory', under=EXCVIEW
    )
    _add_redis_error_views(config)
    _add_session_lock(config)

    settings = parse_settings(registry.settings, CORE_SETTINGS)
    for name in settings['namespaces']:
        factory = namespaces.factory_from_settings(
            registry.settings, name, settings
        )
        config.register_session_factory(name, factory)
    namespaces.check_unlisted(registry.settings, settings['namespaces'])
    if settings['request_session']:
        use_as_request_session(config, settings['request_session'])


def register_session_factory(
    config: Configurator,
    namespace: str,
    session_factory: Callable[[Request], Any] | str,
    discriminator: Callable[[Request], Any] | str | None = None,
    cookie_name: str | None = None,
) -> None:
    """Register ``session_factory`` as ``request.session_multi[namespace]``.

    ``discriminator(request)`` returning a falsy value makes the namespace
    ``None`` for that request. ``cookie_name`` defaults to the factory's
    ``_cookie_name``. A duplicate namespace, a reused factory or a
    duplicate cookie name raise ``ConfigurationError``.
    """
    manager_config = config.registry.queryUtility(ISessionMultiManagerConfig)
    if manager_config is None:
        raise SessionSuiteNotIncluded(
            "call config.include('pyramid_session_suite') before "
            'registering session namespaces'
        )
    if not namespace:
        raise ConfigurationError('a namespace is required')
    session_factory = config.maybe_dotted(session_factory)
    if not session_factory:
        raise ConfigurationError(
            f'namespace {namespace!r}: a session factory is required'
        )
    discriminator = config.maybe_dotted(discriminator)
    cookie_name = derive_cookie_name(session_factory, cookie_name)
    if getattr(session_factory, 'namespace', False) is None:
        # for metrics and traces
        session_factory.namespace = namespace  # type: ignore[union-attr]

    intr = config.introspectable(
        'session_suite namespaces',
        namespace,
        f'request.session_multi[{namespace!r}]',
        'session_suite namespace',
    )
    intr['namespace'] = namespace
    intr['factory'] = session_factory
    intr['cookie_name'] = cookie_name
    intr['discriminator'] = discriminator
    intr['backend'] = backend_of(session_factory)

    def register() -> None:
        manager_config.register_session_factory(
            namespace, session_factory, discriminator, cookie_name
        )

    config.action(
        ('session_suite namespace', namespace),
        register,
        introspectables=(intr,),
    )
    config.action(('session_suite cookie', cookie_name))


def use_as_request_session(config: Configurator, namespace: str) -> None:
    """Make ``request.session`` the session of ``namespace``, so that
    Pyramid's CSRF and flash messages use it."""
    registry = config.registry

    def check() -> None:
        manager_config = registry.getUtility(ISessionMultiManagerConfig)
        if not manager_config.has_namespace(namespace):
            raise ConfigurationError(
                f'session_suite.request_session: no namespace {namespace!r}'
            )
        if manager_config.get_namespace_discriminator(namespace):
            raise ConfigurationError(
                f'session_suite.request_session: namespace {namespace!r} '
                'has a discriminator, so it may be None'
            )

    def session_factory(request: Request) -> Any:
        return request.session_multi[namespace]

    session_factory.namespace = namespace  # type: ignore[attr-defined]
    config.set_session_factory(session_factory)
    config.action(('session_suite', 'request_session'), check, order=LATE)


#: registry key: ``{name: factory(request)}`` of the lazy request attributes
REQUEST_ATTRIBUTES_KEY = 'session_suite.request_attributes'


def add_request_attribute(
    config: Configurator, name: str, factory: Callable[[Request], Any]
) -> None:
    """Give requests a lazy ``name`` attribute made by ``factory(request)``
    (configuration time; installed with ``request.session_multi``)."""
    config.registry.setdefault(REQUEST_ATTRIBUTES_KEY, {})[name] = factory


def install_request_attributes(registry: Registry) -> None:
    """Give the application's request class its lazy attributes
    (``session_multi`` and those of the included features).

    A subclass of the registered request factory carries them as cached
    properties, so a request that never touches them pays nothing. A
    request factory that is not a class is wrapped instead.
    """
    attributes: dict[str, Callable[[Request], Any]] = registry.get(
        REQUEST_ATTRIBUTES_KEY, {}
    )
    factory = registry.queryUtility(IRequestFactory, default=Request)
    if getattr(factory, 'session_suite_installed', False):
        return
    if isinstance(factory, type):
        namespace: dict[str, Any] = {
            name: LazyAttribute(name, make)
            for name, make in attributes.items()
        }
        namespace.update(
            session_suite_installed=True,
            __module__=factory.__module__,
            __qualname__=factory.__qualname__,
        )
        request_class = type(factory.__name__, (factory,), namespace)
        registry.registerUtility(request_class, IRequestFactory)
        return

    def request_factory(environ: dict[str, Any]) -> Request:
        request = factory(environ)
        for name, make in attributes.items():
            request.set_property(make, name, reify=True)
        return request

    request_factory.session_suite_installed = True  # type: ignore[attr-defined]
    request_factory.blank = getattr(factory, 'blank', None)  # type: ignore[attr-defined]
    registry.registerUtility(request_factory, IRequestFactory)


def persist_tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Add the Redis persist tween when the application has Redis sessions;
    otherwise add nothing."""
    if not _uses_redis_sessions(registry):
        return handler
    from .redis._persist import persist_tween_factory

    return persist_tween_factory(handler, registry)


def _uses_redis_sessions(registry: Registry) -> bool:
    try:
        from .redis import RedisSessionFactory
    except ImportError:
        return False
    manager_config = registry.queryUtility(ISessionMultiManagerConfig)
    factories = list(manager_config._session_factories.values())
    factories.append(registry.queryUtility(ISessionFactory))
    return any(isinstance(f, RedisSessionFactory) for f in factories)


def _add_session_lock(config: Configurator) -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        return
    config.include('pyramid_session_suite.redis.locking')


def _add_redis_error_views(config: Configurator) -> None:
    try:
        import redis

        from .redis._persist import session_store_unavailable
    except ImportError:
        return
    config.add_exception_view(
        session_store_unavailable, context=redis.RedisError
    )
    # not a RedisError: no node of the cluster could be reached
    config.add_exception_view(
        session_store_unavailable,
        context=redis.exceptions.RedisClusterUnreachableError,
    )
