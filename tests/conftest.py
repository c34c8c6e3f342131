"""Fixtures: a private Redis server for the run, a clean database per test,
and clients that count the round trips they make."""

import contextlib
import os
import pathlib
import threading
from pyramid import testing
import pytest
import redis

from pyramid_session_suite.testing import RedisServer

SECRET = 'test-only secret, never used outside the tests'


@pytest.fixture(scope='session')
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def config():
    config = testing.setUp(autocommit=False, settings={})
    yield config
    testing.tearDown()


def decode_commands(packed):
    """The command names in one packed RESP write."""
    if isinstance(packed, (list, tuple)):
        packed = b''.join(bytes(chunk) for chunk in packed)
    names = []
    pos = 0
    while pos < len(packed):
        assert packed[pos : pos + 1] == b'*', packed[pos:]
        end = packed.index(b'\r\n', pos)
        count = int(packed[pos + 1 : end])
        pos = end + 2
        args = []
        for _ in range(count):
            end = packed.index(b'\r\n', pos)
            size = int(packed[pos + 1 : end])
            args.append(packed[end + 2 : end + 2 + size])
            pos = end + 2 + size + 2
        names.append(args[0].decode().upper())
    return names


class RoundTrips:
    """Counts socket writes (round trips) and the commands in each."""

    def __init__(self):
        self.trips = []

    def reset(self):
        self.trips.clear()

    @property
    def count(self):
        return len(self.trips)

    @property
    def commands(self):
        return [name for trip in self.trips for name in trip]

    def client(self, url):
        trips = self.trips

        class CountingConnection(redis.Connection):
            def send_packed_command(self, command, check_health=True):
                trips.append(decode_commands(command))
                return super().send_packed_command(command, check_health)

        kwargs = redis.connection.parse_url(url)
        pool = redis.ConnectionPool(
            connection_class=CountingConnection,
            host=kwargs.get('host', '127.0.0.1'),
            port=kwargs.get('port', 6379),
            db=kwargs.get('db', 0),
        )
        return redis.Redis(connection_pool=pool)


@pytest.fixture
def round_trips():
    return RoundTrips()


# --- real servers and a real browser ---------------------------------------

CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
]
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / 'test-artifacts'


@contextlib.contextmanager
def serve(app, host='127.0.0.1'):
    """Serve a WSGI app with waitress on a free loopback port; yield its
    base URL."""
    import waitress

    server = waitress.create_server(app, host=host, port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f'http://{host}:{server.effective_port}'
    finally:
        server.close()
        thread.join(5)


@pytest.fixture(scope='session')
def browser():
    """Headless Chromium driven by Playwright; skipped only when no
    Chromium is installed."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f'no Chromium installed at {CHROMIUM}')
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def artifacts():
    """A folder for files a test leaves for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
