"""Is every session store fit to keep sessions? The checks of
``session-suite production.ini check``, as a function for an application's
own health endpoint::

    from pyramid_session_suite.health import check

    def health(request):
        report = check(request.registry)
        request.response.status_int = 200 if report.ok else 503
        return report.as_dict()

:func:`check` connects to every Redis store of the application's
namespaces (one server, a Redis Cluster, a Sentinel-managed primary) and
reports, for each of its servers: whether it answers, and how fast (the
median of a few ``PING``), its Redis version (``GETEX`` needs 6.2), its
role (sessions are written to a primary), a ``maxmemory-policy`` that may
evict session keys, the cluster state (``CLUSTER INFO``); for Sentinel,
the primary the Sentinels name and how many of them answer.

Something that loses or refuses sessions is a *problem* (``report.ok`` is
false); something the check could not tell is a *warning*.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
import dataclasses
import re
import statistics
import time
from typing import TYPE_CHECKING, Any

from ._settings import PREFIX, REQUIRED, as_list, parse_settings
from .interfaces import ISessionMultiManagerConfig
from .multi import backend_of
from .redis.clients import (
    LazyRedisCluster,
    RedisClient,
    client_from_settings,
    connection_options,
)

if TYPE_CHECKING:
    from pyramid.registry import Registry
    from redis.cluster import ClusterNode

#: GETEX, the read of every session, came with Redis 6.2
MIN_VERSION = (6, 2)

#: how many PINGs measure a round trip (their median is reported)
PINGS = 3

#: the policies that never evict a key holding a session (every session
#: has a TTL: the ``volatile-*`` policies evict them as the ``allkeys-*``
#: ones do)
SAFE_POLICIES = ('noeviction',)


@dataclasses.dataclass
class ServerReport:
    """One Redis server of a store."""

    address: str
    #: ``primary`` or ``replica`` (what the server says, or the cluster)
    role: str | None = None
    reachable: bool = False
    error: str | None = None
    version: str | None = None
    #: median round trip of a PING, in seconds
    rtt: float | None = None
    #: in bytes; 0: no limit; ``None``: unknown
    maxmemory: int | None = None
    #: ``None``: unknown (``INFO`` and ``CONFIG`` refused)
    policy: str | None = None
    #: ``CLUSTER INFO``'s ``cluster_state`` of a cluster node
    cluster_state: str | None = None
    cluster_enabled: bool = False

    @property
    def evicts_sessions(self) -> bool | None:
        """Whether the server may evict session keys (``None``: unknown)."""
        if self.policy is None or self.maxmemory is None:
            return None
        return self.maxmemory > 0 and self.policy not in SAFE_POLICIES


@dataclasses.dataclass
class StoreReport:
    """One session store: the namespaces on it and its servers."""

    #: ``server``, ``cluster`` or ``sentinel``
    kind: str
    #: where it is, without credentials
    address: str
    namespaces: list[str] = dataclasses.field(default_factory=list)
    servers: list[ServerReport] = dataclasses.field(default_factory=list)
    #: Sentinel: ``host:port`` of the primary the Sentinels name
    primary: str | None = None
    #: Sentinel: how many Sentinels answered, of how many
    sentinels: tuple[int, int] | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reachable(self) -> bool:
        """Whether sessions can be read and written (a server answers, the
        primary of a Sentinel store is known)."""
        return any(
            server.reachable and server.role == 'primary'
            for server in self.servers
        )


@dataclasses.dataclass
class HealthReport:
    stores: list[StoreReport]

    @property
    def ok(self) -> bool:
        return all(store.ok for store in self.stores)

    @property
    def reachable(self) -> bool:
        return all(store.reachable for store in self.stores)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        stores = []
        for store in self.stores:
            data = dataclasses.asdict(store)
            data['ok'] = store.ok
            data['reachable'] = store.reachable
            for server, report in zip(
                data['servers'], store.servers, strict=True
            ):
                server['evicts_sessions'] = report.evicts_sessions
            stores.append(data)
        return {'ok': self.ok, 'reachable': self.reachable, 'stores': stores}


def check(
    source: Registry | Mapping[str, Any], pings: int = PINGS
) -> HealthReport:
    """Check every Redis store of ``source``: an application's registry
    (every Redis namespace it registered, with the clients it uses) or its
    settings (the namespaces declared under ``session_suite.``, with
    clients made for the check and closed after it)."""
    stores: dict[str, StoreReport] = {}
    owned = not hasattr(source, 'queryUtility')
    clients = {}
    try:
        for namespace, client in _clients(source):
            kind, address = describe(client)
            store = stores.get(f'{kind} {address}')
            if store is None:
                store = stores[f'{kind} {address}'] = StoreReport(
                    kind, address
                )
                clients[id(store)] = client
            elif owned:
                close(client)
            if namespace is not None:
                store.namespaces.append(namespace)
        for store in stores.values():
            CHECKS[store.kind](store, clients[id(store)], pings)
    finally:
        if owned:
            for client in clients.values():
                close(client)
    return HealthReport(list(stores.values()))


def _clients(
    source: Registry | Mapping[str, Any],
) -> Iterator[tuple[str | None, RedisClient]]:
    """``(namespace, client)`` of every Redis namespace of ``source``."""
    if hasattr(source, 'queryUtility'):
        manager_config = source.queryUtility(ISessionMultiManagerConfig)
        namespaces = manager_config.namespaces if manager_config else []
        for namespace in namespaces:
            factory = manager_config.get_namespace_config(namespace)
            if backend_of(factory) == 'redis':
                yield namespace, factory.redis
        return
    yield from _clients_from_settings(source)


def _clients_from_settings(
    settings: Mapping[str, Any],
) -> Iterator[tuple[str | None, RedisClient]]:
    from ._namespaces import NAMESPACE_PREFIX, NAMESPACE_SETTINGS
    from .config import CORE_SETTINGS

    settings = dict(settings)  # parse_settings writes back
    core = parse_settings(settings, CORE_SETTINGS)
    # a check needs no secret
    table = [row for row in NAMESPACE_SETTINGS if row[2] is not REQUIRED]
    found = False
    for namespace in as_list(core['namespaces']):
        prefix = f'{NAMESPACE_PREFIX}{namespace}.'
        options = parse_settings(settings, table, prefix)
        if options['backend'] != 'redis':
            continue
        found = True
        yield (
            namespace,
            client_from_settings(
                *connection_options(options, core, prefix, PREFIX)
            ),
        )
    if not found and any(
        core[key]
        for key in ('redis_url', 'redis_cluster_nodes', 'redis_sentinels')
    ):
        yield None, client_from_settings(core, PREFIX)


def describe(client: RedisClient) -> tuple[str, str]:
    """``(kind, address)`` of a client of the suite, without
    credentials."""
    if isinstance(client, LazyRedisCluster):  # not connected by this
        nodes = client._kwargs.get('startup_nodes', ())
        return 'cluster', ' '.join(node.name for node in nodes)
    if hasattr(client, 'get_nodes'):  # a redis.RedisCluster
        return 'cluster', ' '.join(node.name for node in client.get_nodes())
    # a ConnectionPool, or a SentinelConnectionPool (with a service_name)
    pool: Any = getattr(client, 'connection_pool', None)
    manager = getattr(pool, 'sentinel_manager', None)
    if manager is not None:
        sentinels = ', '.join(
            _address(sentinel.connection_pool.connection_kwargs)
            for sentinel in manager.sentinels
        )
        return 'sentinel', f'{pool.service_name} via {sentinels}'
    kwargs = pool.connection_kwargs if pool is not None else {}
    return 'server', f'{_address(kwargs)} db {kwargs.get("db", 0)}'


def _address(kwargs: Mapping[str, Any]) -> str:
    if kwargs.get('path'):
        return str(kwargs['path'])
    return f'{kwargs.get("host", "localhost")}:{kwargs.get("port", 6379)}'


def close(client: RedisClient) -> None:
    try:
        if getattr(client, '_client', True) is None:
            return  # a LazyRedisCluster never connected
        client.close()
    except Exception:  # pragma: no cover - closing is best effort
        pass


# -- the checks ---------------------------------------------------------------


def check_server(store: StoreReport, client: RedisClient, pings: int) -> None:
    address = store.address.partition(' db ')[0]
    server = probe(client, address, pings)
    store.servers.append(server)
    judge(store, server)
    if server.cluster_enabled:
        store.problems.append(
            f'{address} is a Redis Cluster node: name the cluster with '
            'redis_cluster_nodes'
        )


def check_sentinel(
    store: StoreReport, client: RedisClient, pings: int
) -> None:
    import redis

    pool = client.connection_pool
    manager = pool.sentinel_manager
    answered = 0
    for sentinel in manager.sentinels:
        try:
            sentinel.ping()
        except redis.RedisError:
            continue
        answered += 1
    store.sentinels = (answered, len(manager.sentinels))
    if answered < len(manager.sentinels):
        (store.problems if not answered else store.warnings).append(
            f'{answered} of {len(manager.sentinels)} Sentinels answered'
        )
    try:
        host, port = manager.discover_master(pool.service_name)
    except redis.RedisError as exc:
        store.problems.append(
            f'no primary for {pool.service_name!r}: {one_line(exc)}'
        )
        return
    store.primary = f'{host}:{port}'
    server = probe(client, store.primary, pings)
    store.servers.append(server)
    judge(store, server)


def check_cluster(store: StoreReport, client: RedisClient, pings: int) -> None:
    import redis
    from redis.cluster import ClusterNode

    try:
        if isinstance(client, LazyRedisCluster):
            client = client.client
        known = {node.name: node for node in client.get_nodes()}
    except redis.RedisError as exc:
        store.problems.append(f'cluster unreachable: {one_line(exc)}')
        return
    members = cluster_members(known.values())
    for address in sorted(
        members, key=lambda name: (members[name][0] != 'primary', name)
    ):
        role, flags = members[address]
        if 'noaddr' in flags:
            store.problems.append(f'{address}: a node without an address')
            continue
        node = known.get(address)
        made = node is None
        if node is None:
            host, _, port = address.rpartition(':')
            node = ClusterNode(host, int(port), role)
        try:
            connection = client.get_redis_connection(node)
            server = probe(connection, address, pings, cluster=True)
        finally:
            if made and node.redis_connection is not None:
                close(node.redis_connection)
        server.role = server.role or role
        store.servers.append(server)
        judge(store, server)
        if {'fail', 'fail?'} & flags:
            store.problems.append(f'{address}: the cluster marks it failing')
        if server.reachable and server.cluster_state not in (None, 'ok'):
            store.problems.append(
                f'{address}: cluster state {server.cluster_state}'
            )


def cluster_members(
    nodes: Collection[ClusterNode],
) -> dict[str, tuple[str, set[str]]]:
    """``{address: (role, flags)}`` of every node of the cluster, as the
    first of ``nodes`` that answers ``CLUSTER NODES`` says (replicas
    included); the primaries of ``nodes`` if none does."""
    import redis

    for node in nodes:
        try:
            reply = node.redis_connection.execute_command('CLUSTER NODES')
        except (redis.RedisError, AttributeError):
            continue
        members = {}
        for address, info in reply.items():
            flags = set(str(info.get('flags', '')).split(','))
            role = 'replica' if 'slave' in flags else 'primary'
            members[address] = role, flags
        return members
    return {node.name: (node.server_type, set()) for node in nodes}


CHECKS = {
    'server': check_server,
    'sentinel': check_sentinel,
    'cluster': check_cluster,
}


def probe(
    client: RedisClient, address: str, pings: int, cluster: bool = False
) -> ServerReport:
    """What one server says about itself."""
    import redis

    server = ServerReport(address)
    try:
        times = []
        for _ in range(max(1, pings)):
            start = time.perf_counter()
            client.ping()
            times.append(time.perf_counter() - start)
    except redis.RedisError as exc:
        server.error = one_line(exc)
        return server
    server.reachable = True
    server.rtt = statistics.median(times)
    try:
        info = client.info()
    except redis.ResponseError:  # INFO renamed or forbidden
        info = {}
    except redis.RedisError as exc:
        server.reachable = False
        server.error = one_line(exc)
        return server
    if 'redis_version' in info:
        server.version = str(info['redis_version'])
    role = info.get('role')
    if role is not None:
        server.role = 'primary' if role == 'master' else 'replica'
    server.cluster_enabled = bool(info.get('cluster_enabled'))
    server.maxmemory = _int(info.get('maxmemory'))
    server.policy = info.get('maxmemory_policy')
    if server.maxmemory is None or server.policy is None:
        _config_memory(client, server)
    if server.cluster_enabled or cluster:
        try:
            state = client.execute_command('CLUSTER INFO')
            server.cluster_state = str(state.get('cluster_state'))
        except redis.RedisError:
            server.cluster_state = None
    return server


def _config_memory(client: RedisClient, server: ServerReport) -> None:
    """``maxmemory`` and its policy from ``CONFIG GET`` (when ``INFO`` did
    not tell: an old server, or ``INFO`` refused); ``CONFIG`` is often
    disabled too (managed Redis): then they stay unknown."""
    import redis

    try:
        config = client.config_get('maxmemory*')
    except redis.RedisError:
        return
    if server.maxmemory is None:
        server.maxmemory = _int(config.get('maxmemory'))
    if server.policy is None:
        server.policy = config.get('maxmemory-policy')


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def judge(store: StoreReport, server: ServerReport) -> None:
    """Add the problems and warnings of ``server`` to its store's."""
    where = server.address
    if not server.reachable:
        store.problems.append(f'{where} unreachable: {server.error}')
        return
    if server.version is None:
        store.warnings.append(f'{where}: Redis version unknown (INFO refused)')
    elif version_tuple(server.version) < MIN_VERSION:
        store.problems.append(
            f'{where}: Redis {server.version} has no GETEX: '
            f'{".".join(map(str, MIN_VERSION))} or later is needed'
        )
    if store.kind != 'cluster' and server.role == 'replica':
        store.problems.append(
            f'{where} is a read-only replica: sessions cannot be written'
        )
    evicts = server.evicts_sessions
    if evicts is None:
        store.warnings.append(
            f'{where}: maxmemory-policy unknown (INFO and CONFIG refused): '
            'make sure it is noeviction, or that maxmemory is 0'
        )
    elif evicts:
        store.problems.append(
            f'{where}: maxmemory-policy {server.policy} with maxmemory '
            f'{server.maxmemory} evicts sessions when memory is full '
            '(their users are logged out): use noeviction'
        )


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split('.'):
        digits = re.match(r'\d+', part)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def one_line(exc: BaseException) -> str:
    return ' '.join(str(exc).split()) or type(exc).__name__
