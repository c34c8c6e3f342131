"""The namespace table of an application and the lazy per-request mapping
``request.session_multi``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IDict
from zope.interface import implementer

from ._request_cookies import readable_cookies
from .exceptions import SessionSuiteNotIncluded, UnregisteredSession
from .interfaces import ISessionMultiManagerConfig

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request

#: environ key of an observer told about namespace loads and invalidations
#: (the debug toolbar panel); nothing is told when it is absent
OBSERVER_KEY = 'session_suite.observer'


@implementer(ISessionMultiManagerConfig)
class SessionMultiManagerConfig:
    """The namespaces registered in one application.

    Filled at configuration time by ``config.register_session_factory``;
    read-only while serving requests.
    """

    def __init__(self, config: Configurator | None = None) -> None:
        self._session_factories: dict[str, Callable[[Request], Any]] = {}
        self._discriminators: dict[str, Callable[[Request], Any]] = {}
        self._cookienames: dict[str, str] = {}

    @property
    def namespaces(self) -> list[str]:
        return list(self._session_factories)

    @property
    def discriminators(self) -> list[str]:
        return list(self._discriminators)

    @property
    def namespaces_to_cookienames(self) -> dict[str, str]:
        return dict(self._cookienames)

    def register_session_factory(
        self,
        namespace: str,
        session_factory: Callable[[Request], Any],
        discriminator: Callable[[Request], Any] | None = None,
        cookie_name: str | None = None,
    ) -> bool:
        if not namespace:
            raise ConfigurationError('a namespace is required')
        # (a caller that is not type-checked may pass None)
        if not session_factory:  # type: ignore[truthy-function]
            raise ConfigurationError(
                f'namespace {namespace!r}: a session factory is required'
            )
        if namespace in self._session_factories:
            raise ConfigurationError(
                f'namespace {namespace!r} is already registered'
            )
        for other, factory in self._session_factories.items():
            if factory is session_factory:
                raise ConfigurationError(
                    f'namespace {namespace!r}: this session factory is '
                    f'already registered for namespace {other!r}'
                )
        cookie_name = derive_cookie_name(session_factory, cookie_name)
        for other, name in self._cookienames.items():
            if name == cookie_name:
                raise ConfigurationError(
                    f'namespace {namespace!r}: cookie name {cookie_name!r} '
                    f'is already used by namespace {other!r}'
                )
        self._session_factories[namespace] = session_factory
        self._cookienames[namespace] = cookie_name
        if discriminator is not None:
            self._discriminators[namespace] = discriminator
        return True

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self._session_factories

    def get_namespace_config(self, namespace: str) -> Callable[[Request], Any]:
        return self._session_factories[namespace]

    def get_namespace_cookiename(self, namespace: str) -> str:
        return self._cookienames[namespace]

    def get_namespace_discriminator(
        self, namespace: str
    ) -> Callable[[Request], Any] | None:
        return self._discriminators.get(namespace)


def derive_cookie_name(
    session_factory: object, cookie_name: str | None = None
) -> str:
    """Return ``cookie_name``, or the cookie name the factory declares."""
    cookie_name = cookie_name or getattr(session_factory, '_cookie_name', None)
    if not cookie_name:
        raise ConfigurationError(
            f'cannot tell the cookie name of {session_factory!r}: pass '
            '`cookie_name=`'
        )
    return cookie_name


def backend_of(factory: object) -> str:
    """Name the kind of a session factory: its ``backend`` attribute
    (``redis``, ``cookie``), ``cookie`` for Pyramid's cookie sessions, or
    ``custom``."""
    backend: str | None = getattr(factory, 'backend', None)
    if backend:
        return backend
    if isinstance(factory, type) and issubclass(factory, dict):
        if getattr(factory, '_cookie_name', None):
            return 'cookie'
    return 'custom'


#: what a namespace not accessed yet holds
_NOT_LOADED = object()


def _readonly(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError('request.session_multi is read-only')


@implementer(IDict)
class SessionMultiManager(dict[str, Any]):
    """``request.session_multi``: one session per registered namespace,
    made on first access.

    ``request.session_multi['ns']`` runs the namespace's discriminator (a
    falsy result gives ``None``) and session factory once per request. The
    mapping itself only holds the namespaces accessed so far, so ``in``,
    ``len()``, ``keys()`` and ``get()`` mean "accessed in this request".
    It cannot be changed by item assignment or deletion.
    """

    def __init__(
        self,
        request: Request,
        config: SessionMultiManagerConfig | None = None,
    ) -> None:
        dict.__init__(self)
        if config is None:
            config = request.registry.queryUtility(ISessionMultiManagerConfig)
            if config is None:
                raise SessionSuiteNotIncluded(
                    "config.include('pyramid_session_suite') was not called"
                )
        self.request = request
        self._config = config

    def __getitem__(self, namespace: str) -> Any:
        # (no KeyError on a namespace's first access: raising one costs
        # more than a lookup)
        session = dict.get(self, namespace, _NOT_LOADED)
        if session is _NOT_LOADED:
            return self._load(namespace)
        return session

    def _load(self, namespace: str) -> Any:
        config = self._config
        factory = config._session_factories.get(namespace)
        if factory is None:
            raise UnregisteredSession(namespace)
        request = self.request
        discriminator = config._discriminators.get(namespace)
        discriminated_out = discriminator is not None and not discriminator(
            request
        )
        session = None if discriminated_out else factory(request)
        dict.__setitem__(self, namespace, session)
        observer = request.environ.get(OBSERVER_KEY)
        if observer is not None:
            observer.loaded(namespace, session, discriminated_out)
        return session

    __setitem__ = __delitem__ = _readonly
    update = pop = popitem = setdefault = clear = __ior__ = _readonly

    def invalidate(self) -> None:
        """Invalidate every namespace that holds a session.

        Namespaces not accessed yet are loaded only when the request
        carries their cookie; discriminated-out namespaces are skipped.
        """
        config = self._config
        cookies = readable_cookies(self.request)
        for namespace in config._session_factories:
            if dict.__contains__(self, namespace):
                session = dict.__getitem__(self, namespace)
            elif config._cookienames[namespace] in cookies:
                session = self._load(namespace)
            else:
                continue
            if session is not None:
                session.invalidate()
                observer = self.request.environ.get(OBSERVER_KEY)
                if observer is not None:
                    observer.invalidated(namespace)

    @property
    def namespaces(self) -> list[str]:
        return self._config.namespaces

    @property
    def discriminators(self) -> list[str]:
        return self._config.discriminators

    @property
    def namespaces_to_cookienames(self) -> dict[str, str]:
        return self._config.namespaces_to_cookienames

    def has_namespace(self, namespace: str) -> bool:
        return self._config.has_namespace(namespace)

    def get_namespace_config(self, namespace: str) -> Callable[[Request], Any]:
        return self._config.get_namespace_config(namespace)

    def get_namespace_cookiename(self, namespace: str) -> str:
        return self._config.get_namespace_cookiename(namespace)

    def get_namespace_discriminator(
        self, namespace: str
    ) -> Callable[[Request], Any] | None:
        return self._config.get_namespace_discriminator(namespace)


def new_session_multi(request: Request) -> SessionMultiManager:
    """Return a new :class:`SessionMultiManager` for ``request``."""
    return SessionMultiManager(request)


class LazyAttribute:
    """A request attribute made by ``factory(request)`` on first access,
    then cached on the request like :class:`pyramid.decorator.reify`."""

    def __init__(self, name: str, factory: Callable[[Request], Any]) -> None:
        self.name = name
        self.factory = factory

    def __get__(self, request: Request | None, cls: type | None = None) -> Any:
        if request is None:
            return self
        value = request.__dict__[self.name] = self.factory(request)
        return value
