"""Redis clients for one server, a Redis Cluster or a Sentinel-managed
primary, from keyword arguments or from settings::

    redis_client('redis://localhost:6379/0')
    redis_client(cluster_nodes=['10.0.0.1:6379', '10.0.0.2:6379'])
    redis_client(sentinels=['10.0.0.1:26379'], sentinel_master='sessions')

The suite's own keys (user index, policy locks, token claims) live on the
client of the namespace they serve, so one connection setting covers a
namespace and everything built on it. Every multi-key operation keeps its
keys in one hash slot (``{user}`` tags), so Redis Cluster needs nothing
more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import threading
from typing import TYPE_CHECKING, Any, TypeAlias
from pyramid.exceptions import ConfigurationError

from .._settings import as_bool, as_int, as_list, as_positive_float, as_str
from .deadline import bounded

if TYPE_CHECKING:
    from redis import RedisCluster
    from redis.commands.core import Script
    from redis.connection import Encoder

#: a Redis client of the suite: a :class:`redis.Redis` (one server, or a
#: Sentinel-managed primary), a :class:`redis.RedisCluster` or a
#: :class:`LazyRedisCluster` (``Any``: redis-py types the replies of its
#: commands as ``Awaitable | Any``)
RedisClient: TypeAlias = Any

#: defaults for every client, in seconds: a slow or frozen Redis gives a
#: 503 after this long instead of holding a worker thread
DEFAULT_REDIS_OPTIONS: dict[str, Any] = {
    'socket_timeout': 2.0,
    'socket_connect_timeout': 1.0,
}

#: how many times a command that failed to connect or timed out is sent
#: again, at once, on a new connection (redis-py's own default is 10
#: times, with backoff: a frozen server would hold a request for many
#: timeouts)
DEFAULT_RETRIES = 1


def as_retries(value: Any) -> int | None:
    retries = as_int(value)
    if retries is not None and retries < 0:
        raise ValueError(f'must be 0 or more, not {value!r}')
    return retries


#: connection settings, read under ``session_suite.`` and under each
#: ``session_suite.namespace.<ns>.``; a namespace that names no server
#: (url, cluster nodes or Sentinels) takes all of them from
#: ``session_suite.``
CONNECTION_SETTINGS = (
    ('redis_url', as_str, None),
    ('redis_cluster_nodes', as_list, None),
    ('redis_sentinels', as_list, None),
    ('redis_sentinel_master', as_str, None),
    ('redis_db', as_int, None),
    ('redis_username', as_str, None),
    ('redis_password', as_str, None),
    ('redis_sentinel_password', as_str, None),
    ('redis_ssl', as_bool, None),
    ('redis_socket_timeout', as_positive_float, None),
    ('redis_connect_timeout', as_positive_float, None),
    ('redis_retries', as_retries, None),
)

_SERVER_KEYS = ('redis_url', 'redis_cluster_nodes', 'redis_sentinels')
_SERVER_GROUP = (*_SERVER_KEYS, 'redis_sentinel_master')


def redis_client(
    url: str | None = None,
    *,
    cluster_nodes: Sequence[str] | None = None,
    sentinels: Sequence[str] | None = None,
    sentinel_master: str | None = None,
    sentinel_options: Mapping[str, Any] | None = None,
    retries: int = DEFAULT_RETRIES,
    **options: Any,
) -> RedisClient:
    """Return a Redis client for exactly one of ``url`` (one server),
    ``cluster_nodes`` (``host:port`` seed nodes of a Redis Cluster) or
    ``sentinels`` (``host:port`` of Sentinels, with ``sentinel_master``).

    ``options`` go to the client (``socket_timeout``, ``password``,
    ``ssl``, ``db``...; defaults: :data:`DEFAULT_REDIS_OPTIONS`);
    ``sentinel_options`` to the connections to the Sentinels themselves
    (they default to the timeouts of ``options``). A command that could
    not connect or timed out is sent again ``retries`` times, without a
    pause (unless ``options`` hold a ``retry`` of their own). Within a
    request, all its commands together wait at most about ``socket_timeout
    × (retries + 1)`` (see :mod:`.deadline`).
    """
    given = [x for x in (url, cluster_nodes, sentinels) if x]
    if len(given) != 1:
        raise ValueError(
            'give exactly one of `url`, `cluster_nodes` and `sentinels`'
        )
    options = dict(DEFAULT_REDIS_OPTIONS, **options)
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if 'retry' not in options:
        options['retry'] = Retry(NoBackoff(), retries)
    timeout = options.get('socket_timeout')
    bound = timeout * (retries + 1) if timeout else None
    if url:
        client = redis.Redis.from_url(url, **options)
        pool = client.connection_pool
        if bound:
            pool.connection_class = bounded(pool.connection_class, bound)
        return client
    if cluster_nodes:
        from redis.cluster import ClusterNode

        options.pop('db', None)
        if bound:
            base = options.get('connection_class') or (
                redis.SSLConnection if options.get('ssl') else redis.Connection
            )
            options['connection_class'] = bounded(base, bound)
        nodes = [ClusterNode(*_address(node)) for node in cluster_nodes]
        return LazyRedisCluster(startup_nodes=nodes, **options)
    if not sentinel_master:
        raise ValueError('`sentinels` needs `sentinel_master`')
    from redis.sentinel import Sentinel

    sentinel_options = dict(
        {
            'socket_timeout': options['socket_timeout'],
            'socket_connect_timeout': options['socket_connect_timeout'],
            'retry': options['retry'],
        },
        **(sentinel_options or {}),
    )
    assert sentinels is not None  # exactly one of the three was given
    sentinel = Sentinel(
        [_address(node) for node in sentinels],
        sentinel_kwargs=sentinel_options,
    )
    if bound:
        from redis.sentinel import (
            SentinelManagedConnection,
            SentinelManagedSSLConnection,
        )

        ssl = options.pop('ssl', False)
        base = options.get('connection_class') or (
            SentinelManagedSSLConnection if ssl else SentinelManagedConnection
        )
        options['connection_class'] = bounded(base, bound)
    return sentinel.master_for(sentinel_master, **options)


class LazyRedisCluster:
    """A :class:`redis.RedisCluster` made on first use, so that an
    application starts while its cluster is unreachable (and answers 503
    until it is back) instead of failing to start."""

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        self._url = url
        self._kwargs = kwargs
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> RedisCluster:
        """The cluster client (connecting now if need be); an unreachable
        cluster raises :class:`redis.ConnectionError`."""
        client = self._client
        if client is None:
            import redis

            with self._lock:
                if self._client is None:
                    try:
                        if self._url:
                            client = redis.RedisCluster.from_url(
                                self._url, **self._kwargs
                            )
                        else:
                            client = redis.RedisCluster(**self._kwargs)
                    except redis.exceptions.RedisClusterException as exc:
                        raise redis.ConnectionError(str(exc)) from exc
                    client.commands_parser = _ScriptKeys(  # type: ignore[assignment]
                        client.commands_parser
                    )
                    self._client = client
                client = self._client
        return client

    def register_script(self, script: str | bytes) -> Script:
        """A script bound to this client, without connecting yet."""
        from redis.commands.core import Script

        # the script runs on the cluster client this one stands for
        return Script(self, script)  # type: ignore[arg-type]

    def get_encoder(self) -> Encoder:
        from redis.connection import Encoder

        return Encoder(
            self._kwargs.get('encoding', 'utf-8'),
            self._kwargs.get('encoding_errors', 'strict'),
            self._kwargs.get('decode_responses', False),
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def __repr__(self) -> str:
        nodes = [n.name for n in self._kwargs.get('startup_nodes', ())]
        return f'<LazyRedisCluster {self._url or nodes}>'


class _ScriptKeys:
    """The keys of a command, for a cluster client: ``EVAL`` and
    ``EVALSHA`` name their keys themselves, so reading them costs no
    ``COMMAND GETKEYS`` round trip (which a cluster pipeline otherwise pays
    for every script it holds)."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser

    def get_keys(self, redis_conn: Any, *args: Any) -> list[Any] | None:
        name = args[0].upper() if isinstance(args[0], str) else ''
        if name in ('EVAL', 'EVALSHA') and len(args) > 2:
            return list(args[3 : 3 + int(args[2])])
        keys: list[Any] | None = self._parser.get_keys(redis_conn, *args)
        return keys

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


def _address(node: str) -> tuple[str, int]:
    host, sep, port = node.rpartition(':')
    if not sep or not host or not port.isdigit():
        raise ValueError(f'{node!r} is not host:port')
    return host.strip('[]'), int(port)


def connection_options(
    namespace_options: Mapping[str, Any],
    core_options: Mapping[str, Any],
    prefix: str,
    core: str,
) -> tuple[dict[str, Any], str]:
    """Merge the connection settings of a namespace (under ``prefix``) with
    the core ones (under ``core``): the server comes from the namespace when
    it names one, else from the core; other options from the namespace,
    else the core. Return the options and the prefix the server came
    from."""
    own_server = any(namespace_options[key] for key in _SERVER_KEYS)
    merged = {}
    for key, _, _ in CONNECTION_SETTINGS:
        value = namespace_options[key]
        if key in _SERVER_GROUP:
            if not own_server:
                value = core_options[key]
        elif value is None:
            value = core_options[key]
        merged[key] = value
    if own_server or not any(core_options[key] for key in _SERVER_KEYS):
        return merged, prefix
    return merged, core


def client_from_settings(
    options: Mapping[str, Any], prefix: str
) -> RedisClient:
    """Return the client that connection ``options`` describe, or a
    ``ConfigurationError`` naming the setting at fault (``prefix`` is where
    the settings came from)."""
    servers = [key for key in _SERVER_KEYS if options[key]]
    if not servers:
        raise ConfigurationError(
            f'{prefix}redis_url, {prefix}redis_cluster_nodes or '
            f'{prefix}redis_sentinels (or the same under session_suite.) '
            'is required for backend = redis'
        )
    if len(servers) > 1:
        raise ConfigurationError(
            f'{prefix}{servers[0]} and {prefix}{servers[1]}: give only one '
            'Redis server setting'
        )
    kwargs = {}
    for key, name in (
        ('redis_db', 'db'),
        ('redis_username', 'username'),
        ('redis_password', 'password'),
        ('redis_ssl', 'ssl'),
        ('redis_socket_timeout', 'socket_timeout'),
        ('redis_connect_timeout', 'socket_connect_timeout'),
        ('redis_retries', 'retries'),
    ):
        if options[key] is not None:
            kwargs[name] = options[key]
    if options['redis_sentinels']:
        if not options['redis_sentinel_master']:
            raise ConfigurationError(
                f'{prefix}redis_sentinel_master is required with '
                f'{prefix}redis_sentinels'
            )
        sentinel_options = {}
        if options['redis_sentinel_password'] is not None:
            sentinel_options['password'] = options['redis_sentinel_password']
        kwargs.update(
            sentinels=options['redis_sentinels'],
            sentinel_master=options['redis_sentinel_master'],
            sentinel_options=sentinel_options,
        )
    elif options['redis_cluster_nodes']:
        if options['redis_db']:
            raise ConfigurationError(
                f'{prefix}redis_db: Redis Cluster has only database 0'
            )
        kwargs['cluster_nodes'] = options['redis_cluster_nodes']
    else:
        kwargs['url'] = options['redis_url']
    try:
        return redis_client(**kwargs)
    except ValueError as exc:
        raise ConfigurationError(f'{prefix}{servers[0]}: {exc}') from exc
