"""Fixtures: a private Redis server for the run, a clean database per test,
and clients that count the round trips they make."""

import contextlib
import os
import pathlib
import threading
from pyramid import testing
import pytest
import redis

from pyramid_session_suite.redis import stored as stored_format
from pyramid_session_suite.redis.login_records import (
    SLOT_KEY,
    digest,
    redis_key,
    split_id,
)
from pyramid_session_suite.redis.session import decode, json_loads
from pyramid_session_suite.testing import (
    RedisClusterServers,
    RedisServer,
    RoundTrips,
)

SECRET = 'test-only-secret-never-used-outside-the-tests'


@pytest.fixture(scope='session')
def redis_server():
    with RedisServer() as server:
        # the session's scripts, as a running server holds them after their
        # first use (a first use costs a round trip more: test_wire.py)
        client = redis.Redis.from_url(server.url)
        for script in (stored_format.MERGE, stored_format.CREATE):
            client.script_load(script)
        client.close()
        yield server


@pytest.fixture(scope='session')
def cluster():
    """A real 3-primary Redis Cluster with a replica each, for the whole
    run."""
    with RedisClusterServers(primaries=3, replicas=1) as servers:
        yield servers


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


@pytest.fixture
def round_trips():
    return RoundTrips()


@pytest.fixture
def counted(round_trips, redis_url):
    """A Redis client whose round trips ``round_trips`` counts, connected
    (the handshake is not counted)."""
    client = round_trips.client(redis_url)
    client.ping()
    round_trips.reset()
    return client


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
def serve(app, host='127.0.0.1', threads=4):
    """Serve a WSGI app with waitress on a free loopback port; yield its
    base URL."""
    import waitress

    server = waitress.create_server(app, host=host, port=0, threads=threads)
    stop = threading.Event()

    def run():
        # the loop closes the server itself: closing it from another
        # thread races with its select()
        while not stop.is_set():
            server.asyncore.loop(
                timeout=0.05, map=server._map, use_poll=True, count=1
            )
        server.task_dispatcher.shutdown()
        waitress.wasyncore.close_all(server._map)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f'http://{host}:{server.effective_port}'
    finally:
        stop.set()
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


@pytest.fixture(scope='session')
def city_db(tmp_path_factory):
    """A real GeoIP2 City database, written for the test run: London for
    81.2.69.0/24, Ukraine (no city) for 2a02:d300::/32."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type='GeoIP2-City',
        languages=['en'],
        description={'en': 'pyramid_session_suite test database'},
    )
    writer.insert_network(
        IPSet(['81.2.69.0/24']),
        {
            'city': {'names': {'en': 'London'}},
            'country': {'iso_code': 'GB', 'names': {'en': 'United Kingdom'}},
        },
    )
    writer.insert_network(
        IPSet(['2a02:d300::/32']),
        {'country': {'iso_code': 'UA', 'names': {'en': 'Ukraine'}}},
    )
    path = tmp_path_factory.mktemp('geoip') / 'City-Test.mmdb'
    writer.to_db_file(str(path))
    return path


def stored(client, key, deserialize=json_loads):
    """What Redis holds for the session ``key`` (a key or a session id),
    shaped as ``pyramid_session_redis`` payloads are: ``m`` (the data),
    ``c`` (created), ``t`` (its own timeout, if any)."""
    if isinstance(key, bytes):
        key = key.decode()
    return decode(client.get(redis_key(key)), deserialize)[0]


def live_keys(client, pattern):
    """The keys matching ``pattern`` that hold a live session: not an
    ended session, a lock, or the reason of an earlier release."""
    keys = []
    for key in client.keys(pattern):
        if (
            key.endswith((b':ended', b':lock'))
            or client.type(key) != b'string'
        ):
            continue
        value = client.get(key)
        if value is not None and not stored_format.is_ended(value):
            keys.append(key.decode())
    return sorted(keys)


def ended_reason(client, key):
    """Why the session at ``key`` (a key or a session id) ended, or
    ``None`` if it has not."""
    key, secret = split_id(key)
    value = client.get(key)
    if value is None or not stored_format.is_ended(value):
        return None
    if secret is not None:
        return stored_format.ended_reason(value, digest(secret))
    size = stored_format.DIGEST_SIZE if SLOT_KEY.search(key) else 0
    return value[1 + size :].decode()


@pytest.fixture(scope='module')
def figures(request):
    """Lines of figures a test module measured, written to
    ``test-artifacts/<the module's FIGURES>`` and printed."""
    lines = []
    yield lines
    if lines:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / request.module.FIGURES
        path.write_text('\n'.join(lines) + '\n')
        print('\n' + '\n'.join(lines))


@pytest.fixture(params=['one server', 'cluster'])
def connection(request, redis_url):
    """The connection settings of one Redis server, then of the Redis
    Cluster."""
    if request.param == 'cluster':
        servers = request.getfixturevalue('cluster')
        return {'session_suite.redis_cluster_nodes': ' '.join(servers.nodes)}
    return redis_url


@pytest.fixture(params=['one server', 'cluster'])
def store(request, redis_url, redis_client):
    """``(connection settings, client)`` of one Redis server, then of the
    Redis Cluster (emptied)."""
    if request.param == 'one server':
        return redis_url, redis_client
    servers = request.getfixturevalue('cluster')
    client = redis.RedisCluster.from_url(servers.url)
    client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    request.addfinalizer(client.close)
    nodes = ' '.join(servers.nodes)
    return {'session_suite.redis_cluster_nodes': nodes}, client
