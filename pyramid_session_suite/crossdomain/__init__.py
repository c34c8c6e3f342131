"""Cross-domain session sharing: ``config.include(
'pyramid_session_suite.crossdomain')``.

One login across the sites of a group on different registrable domains,
sharing one Redis session store. A browser without a session on site B is
bounced once, by top-level redirects, to the *hub* (the site holding the
login) and back; the hub hands B the session id in an encrypted,
destination-bound, single-use token bound to the browser's state cookie.
See :mod:`.tokens` for the token and :mod:`.views` for the flows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from pyramid.exceptions import ConfigurationError
from pyramid.tweens import EXCVIEW

from .._namespaces import feature_namespace, redis_factory
from .._settings import (
    PREFIX,
    REQUIRED,
    as_bool,
    as_list,
    as_seconds,
    as_str,
    check_secret,
    parse_settings,
)
from ..interfaces import ISessionMultiManagerConfig
from .tokens import TokenCodec

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pyramid.config import Configurator

    from ..redis import RedisSessionFactory

SETTINGS_PREFIX = PREFIX + 'crossdomain.'

#: registry key of the :class:`CrossDomain` configuration
CROSSDOMAIN_KEY = 'session_suite.crossdomain'
FLOWS = ('redirect', 'push', 'script')

CROSSDOMAIN_SETTINGS = (
    ('sites', as_list, REQUIRED),
    ('hub', as_str, None),
    ('namespace', as_str, None),
    ('secret', as_list, REQUIRED),
    ('timeout', as_seconds, 30),
    ('clock_skew', as_seconds, 5),
    ('always_replace', as_bool, False),
    ('flows', as_list, ['redirect']),
    ('route_prefix', as_str, '/_session_suite'),
    ('retry_after', as_seconds, 600),
)


def origin(url: str, key: str = SETTINGS_PREFIX + 'sites') -> str:
    """``scheme://host[:port]`` of ``url``, default ports left out (as
    ``request.host_url`` has it)."""
    parts = urlsplit(url if '://' in url else 'https://' + url)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ConfigurationError(f'{key}: {url!r} is not a site origin')
    if parts.path not in ('', '/') or parts.query or parts.fragment:
        raise ConfigurationError(f'{key}: {url!r} is not a site origin')
    default = {'http': 80, 'https': 443}[parts.scheme]
    port = parts.port
    host = parts.hostname.lower()
    if port and port != default:
        return f'{parts.scheme}://{host}:{port}'
    return f'{parts.scheme}://{host}'


class CrossDomain:
    """The group's configuration, read once."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        factory: RedisSessionFactory,
        namespace: str,
    ) -> None:
        self.sites = [origin(site) for site in settings['sites']]
        if len(self.sites) < 2:
            raise ConfigurationError(
                f'{SETTINGS_PREFIX}sites: list at least two sites'
            )
        hub = settings['hub']
        self.hub: str = (
            origin(hub, SETTINGS_PREFIX + 'hub') if hub else None
        ) or self.sites[0]
        if self.hub not in self.sites:
            raise ConfigurationError(
                f'{SETTINGS_PREFIX}hub: {self.hub} is not one of the sites'
            )
        for secret in settings['secret']:
            check_secret(secret, SETTINGS_PREFIX + 'secret')
        flows = settings['flows']
        for flow in flows:
            if flow not in FLOWS:
                raise ConfigurationError(
                    f'{SETTINGS_PREFIX}flows: unknown flow {flow!r} '
                    f'(choose from {", ".join(FLOWS)})'
                )
        self.flows: frozenset[str] = frozenset(flows)
        self.factory = factory
        self.namespace = namespace
        self.codec = TokenCodec(
            settings['secret'],
            self.sites,
            timeout=settings['timeout'] or 30,
            skew=settings['clock_skew'] or 0,
        )
        self.always_replace: bool = settings['always_replace']
        self.prefix: str = settings['route_prefix'].rstrip('/') + '/xd'
        if not settings['retry_after']:
            raise ConfigurationError(
                f'{SETTINGS_PREFIX}retry_after: must be 1 second or more '
                '(it keeps browsers from being bounced in a loop)'
            )
        self.retry_after: int = settings['retry_after']
        self.claim_prefix = 'session_suite:xd:jti:'

    def other_sites(self, here: str) -> list[str]:
        return [site for site in self.sites if site != here]

    def safe_next(self, url: str | None, default: str = '/') -> str:
        """``url`` if it is a path on this site or a URL on a site of the
        group; else ``default`` (no open redirect)."""
        if not isinstance(url, str) or not url or len(url) > 2048:
            return default
        if not (url.isascii() and url.isprintable()):
            return default  # control characters or non-ASCII: no Location
        if any(c in url for c in '\\ ') or url.startswith('//'):
            return default
        if url.startswith('/'):
            return url
        try:
            parts = urlsplit(url)
            if (
                parts.scheme not in ('http', 'https')
                or not parts.hostname
                or parts.username is not None
            ):
                return default
            site = origin(f'{parts.scheme}://{parts.netloc}')
        except (ConfigurationError, ValueError):
            return default
        return url if site in self.sites else default


def includeme(config: Configurator) -> None:
    config.include('pyramid_session_suite')
    registry = config.registry
    settings = parse_settings(
        registry.settings, CROSSDOMAIN_SETTINGS, SETTINGS_PREFIX, strict=True
    )
    namespace = feature_namespace(
        registry.settings, settings['namespace'], SETTINGS_PREFIX
    )

    def register() -> None:
        manager_config = registry.getUtility(ISessionMultiManagerConfig)
        factory = redis_factory(
            manager_config,
            namespace,
            SETTINGS_PREFIX + 'namespace',
            '; sites share a session by sharing its store',
        )
        registry[CROSSDOMAIN_KEY] = CrossDomain(settings, factory, namespace)

    config.action(('session_suite', 'crossdomain'), register, order=1)
    prefix = settings['route_prefix'].rstrip('/') + '/xd'
    config.add_route('session_suite.crossdomain.begin', prefix + '/begin')
    config.add_route('session_suite.crossdomain.export', prefix + '/export')
    config.add_route('session_suite.crossdomain.import', prefix + '/import')
    config.add_route(
        'session_suite.crossdomain.script', prefix + '/s/{token}.js'
    )
    config.scan('pyramid_session_suite.crossdomain.views')
    config.add_tween(
        'pyramid_session_suite.crossdomain.views.pull_tween_factory',
        under=EXCVIEW,
    )
