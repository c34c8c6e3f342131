"""Every way a Redis store can fail is the same prompt 503: out of memory,
too few replicas, a script running too long, snapshots failing, a server
that is not Redis. Real servers put in each state, real HTTP under
traffic; a command of ours that Redis rejects stays an error.

The figures measured are written to ``test-artifacts/store-errors.txt``.
"""

import contextlib
import logging
import signal
import socket
import threading
import time
import pytest
import redis
from webtest import TestApp

from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.testing import RedisServer

from .conftest import serve
from .test_faults import (
    QUIET_ROUTES,
    REDIS_ROUTES,
    Browser,
    assert_answers,
    assert_index_agrees_with_sessions,
    faults_app,
    recovery_seconds,
    traffic,
)

#: where the figures measured are written, under ``test-artifacts/``
FIGURES = 'store-errors.txt'

#: the client settings of these tests: short timeouts, one retry
SOCKET_TIMEOUT = 0.5
RETRIES = 1
CLIENT = {
    'session_suite.namespace.main.redis_socket_timeout': str(SOCKET_TIMEOUT),
    'session_suite.namespace.main.redis_connect_timeout': '0.3',
    'session_suite.namespace.main.redis_retries': str(RETRIES),
}

#: the longest a request may take with a failing store, seen from its
#: client: the deadline (every wait on Redis, see ``redis/deadline.py``)
#: and half a timeout beyond it, then 0.5 s for the HTTP exchange and the
#: scheduling of a shared machine
BOUND = SOCKET_TIMEOUT * (RETRIES + 1) + SOCKET_TIMEOUT / 2 + 0.5


@contextlib.contextmanager
def out_of_memory(client):
    client.set('ballast', 'x' * 200_000)
    used = int(client.info('memory')['used_memory'])
    client.config_set('maxmemory-policy', 'noeviction')
    client.config_set('maxmemory', used - 100_000)  # now over the limit
    yield 'OutOfMemoryError'
    client.config_set('maxmemory', 0)
    client.delete('ballast')


@contextlib.contextmanager
def no_replicas(client):
    client.config_set('min-replicas-to-write', 1)
    yield 'NOREPLICAS'
    client.config_set('min-replicas-to-write', 0)


@contextlib.contextmanager
def busy_script(client):
    client.config_set('busy-reply-threshold', 50)
    options = client.connection_pool.connection_kwargs
    runner = redis.Redis(host=options['host'], port=options['port'])
    done = threading.Event()

    def run():
        with contextlib.suppress(redis.RedisError):
            runner.eval('while true do end', 0)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    time.sleep(0.1)
    yield 'BUSY'
    for _ in range(50):
        with contextlib.suppress(redis.RedisError):
            client.script_kill()
        if done.wait(0.1):
            break
    runner.close()


@contextlib.contextmanager
def snapshots_failing(client):
    directory = client.config_get('dir')['dir']
    client.config_set('save', '3600 1')
    client.config_set('dir', '/proc')  # no file can be written there
    client.bgsave()
    for _ in range(100):
        if client.info('persistence')['rdb_last_bgsave_status'] == 'err':
            break
        time.sleep(0.02)
    yield 'MISCONF'
    client.config_set('dir', directory)
    client.config_set('save', '')
    client.bgsave()
    for _ in range(100):
        info = client.info('persistence')
        if info['rdb_last_bgsave_status'] == 'ok':
            break
        time.sleep(0.02)


FAULTS = {
    'out of memory (OOM)': out_of_memory,
    'too few replicas (NOREPLICAS)': no_replicas,
    'a script running too long (BUSY)': busy_script,
    'snapshots failing (MISCONF)': snapshots_failing,
}


@pytest.mark.parametrize('fault', list(FAULTS))
def test_a_failing_store_is_a_503_and_service_resumes(fault, figures, caplog):
    # a server of the test's own; its ``dir`` may be changed (MISCONF)
    args = ['--enable-protected-configs', 'yes']
    with RedisServer(url='', args=args) as server:
        app = faults_app(server.url, **CLIENT)
        tracker = app.registry.getUtility(IUserIndex)
        admin = server.client(socket_timeout=5)
        with (
            caplog.at_level(logging.WARNING, 'pyramid_session_suite'),
            serve(app) as url,
            traffic(url) as visitors,
        ):
            time.sleep(0.3)
            with FAULTS[fault](admin) as error:
                start = time.monotonic()
                time.sleep(0.8)
                ended = time.monotonic()
            recovery = recovery_seconds(url, time.monotonic())
            time.sleep(0.3)
        exchanges = [e for v in visitors for e in v.exchanges]
        assert_answers(exchanges)  # 200 or the 503 page, never a 500
        redis_routes = [e for e in exchanges if e.route in REDIS_ROUTES]
        assert max(e.seconds for e in redis_routes) < BOUND
        during = [e for e in exchanges if start <= e.sent < e.done < ended]
        unavailable = [e for e in during if e.status == 503]
        assert unavailable, 'the fault was never met'
        assert {e.status for e in during if e.route in QUIET_ROUTES} == {200}
        assert recovery < 1.0
        # nothing acknowledged was lost, nothing half-written
        assert [v.prefs_lost for v in visitors] == [[]] * len(visitors)
        assert [v.signed_out for v in visitors] == [[]] * len(visitors)
        assert_index_agrees_with_sessions(admin, tracker)
        logged = [r.getMessage() for r in caplog.records]
        assert any(
            'session store unavailable' in m and error in m for m in logged
        ), logged[-3:]
        admin.close()
    figures.append(
        f'{fault}: {len(unavailable)} of {len(during)} requests during '
        f'the fault were 503s, none other than 200/503, slowest Redis '
        f'request {max(e.seconds for e in redis_routes):.2f} s, recovered '
        f'in {recovery * 1000:.0f} ms'
    )


@contextlib.contextmanager
def not_redis(reply):
    """A TCP server on loopback that answers anything with ``reply``."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)
    stop = threading.Event()

    def serve_forever():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError):
                conn.settimeout(1)
                conn.recv(4096)
                conn.sendall(reply)
            conn.close()

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    try:
        yield f'redis://127.0.0.1:{listener.getsockname()[1]}/0'
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@pytest.mark.parametrize(
    'reply',
    [
        b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n',
        b'\x00\xff garbage \r\n',
        b'',
    ],
    ids=['an HTTP server', 'garbage', 'a closed connection'],
)
def test_a_server_that_is_not_redis_is_a_503(reply):
    with not_redis(reply) as url:
        app = faults_app(url, **CLIENT)
        with serve(app) as base:
            browser = Browser(base)
            health = browser.get('/health')
            start = time.monotonic()
            page = browser.get('/login?user=alice')
            waited = time.monotonic() - start
    assert health.status == 200
    assert page.status == 503, page.body
    assert page.headers['Retry-After'] == '1'
    assert page.set_cookies == []
    assert waited < BOUND


def test_a_command_of_ours_that_redis_rejects_stays_an_error(redis_url):
    """Not a 503: a bug must be loud."""
    app = faults_app(redis_url)

    def broken(request):
        client = request.registry.getUtility(IUserIndex).factory.redis
        client.execute_command('NO-SUCH-COMMAND')

    app = TestApp(app)
    registry = app.app.registry
    from pyramid.config import Configurator

    config = Configurator(registry=registry)
    config.add_route('broken', '/broken')
    config.add_view(broken, route_name='broken')
    config.commit()
    with pytest.raises(redis.ResponseError, match='unknown command'):
        app.get('/broken')


# --- Redis Cluster: a primary crashes or freezes -----------------------------


def freeze(server, seconds):
    """Freeze ``server`` (``SIGSTOP``) for ``seconds``, then thaw it,
    whatever happens."""
    server.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        server.process.send_signal(signal.SIGCONT)


def outcome(visitors, start, ended):
    """Check every answer (200 or 503); return ``(requests sent during the
    fault, how many of them got a 503, the slowest Redis request)``."""
    exchanges = [e for v in visitors for e in v.exchanges]
    assert_answers(exchanges)
    during = [e for e in exchanges if start <= e.sent < ended]
    slowest = max(e.seconds for e in exchanges if e.route in REDIS_ROUTES)
    return during, sum(e.status == 503 for e in during), slowest


@pytest.fixture(scope='module')
def own_cluster():
    """A cluster of this module's own: its primaries are killed."""
    from pyramid_session_suite.testing import RedisClusterServers

    with RedisClusterServers(primaries=3, replicas=1) as servers:
        yield servers


@pytest.mark.parametrize('how', ['frozen', 'killed'])
def test_a_cluster_primary_lost_under_traffic_is_prompt_503s(
    own_cluster, how, figures
):
    from pyramid_session_suite.user_index.store import user_tag

    nodes = ' '.join(own_cluster.nodes)
    app = faults_app({'session_suite.redis_cluster_nodes': nodes}, **CLIENT)
    key = f'session_suite:main:{{{user_tag("alice")}}}:x'
    with serve(app) as url, traffic(url) as visitors:
        time.sleep(0.3)
        primary = own_cluster.primary_of(key)
        replicas = own_cluster.replicas_of(primary)
        start = time.monotonic()
        if how == 'frozen':
            freeze(primary, 1.5)
        else:
            primary.process.kill()  # a crash: no goodbye to the cluster
            primary.process.wait()
            primary.stop(keep_port=True)
            own_cluster._promoted(replicas, primary)
        own_cluster.wait_healthy()
        ended = time.monotonic()
        recovery = recovery_seconds(url, ended)
        time.sleep(0.3)
    if how == 'killed':
        primary.start()  # back, as a replica
        own_cluster.wait_healthy()
    during, unavailable, slowest = outcome(visitors, start, ended)
    # replication is asynchronous: a write the lost primary had not passed
    # on to its replica yet is gone with it (a session, here and there)
    lost = sum(1 for v in visitors if v.signed_out)
    figures.append(
        f'cluster primary {how}: {ended - start:.2f} s until healthy, '
        f'{unavailable} of {len(during)} requests 503, slowest Redis '
        f'request {slowest:.2f} s, recovered in '
        f'{recovery * 1000:.0f} ms; {lost} of {len(visitors)} visitors '
        'lost their session with the unreplicated writes'
    )
    assert slowest < BOUND


def test_a_cluster_primary_frozen_without_failover_is_prompt_503s(figures):
    """No replica to take over: the slots of the frozen primary answer 503
    within the bound for as long as it is frozen (4 s), the others 200."""
    from pyramid_session_suite.testing import RedisClusterServers
    from pyramid_session_suite.user_index.store import user_tag

    with RedisClusterServers(primaries=3, replicas=0) as cluster:
        nodes = ' '.join(cluster.nodes)
        app = faults_app(
            {'session_suite.redis_cluster_nodes': nodes}, **CLIENT
        )
        key = f'session_suite:main:{{{user_tag("alice")}}}:x'
        with serve(app) as url, traffic(url) as visitors:
            time.sleep(0.3)
            primary = cluster.primary_of(key)
            start = time.monotonic()
            freeze(primary, 4)
            cluster.wait_healthy()
            ended = time.monotonic()
            recovery = recovery_seconds(url, ended)
            time.sleep(0.3)
    during, unavailable, slowest = outcome(visitors, start, ended)
    figures.append(
        f'cluster primary frozen 4 s, no replica: {unavailable} of '
        f'{len(during)} requests 503, slowest Redis request {slowest:.2f} s, '
        f'recovered in {recovery * 1000:.0f} ms after SIGCONT'
    )
    assert unavailable > 0
    assert slowest < BOUND
    assert recovery < 1


# --- Sentinel: the primary freezes or fails over -----------------------------


@pytest.mark.parametrize('how', ['frozen', 'failed over'])
def test_a_sentinel_primary_lost_under_traffic_is_prompt_503s(how, figures):
    from pyramid_session_suite.testing import RedisSentinelServers

    with RedisSentinelServers(replicas=1, sentinels=3) as servers:
        app = faults_app(
            {
                'session_suite.redis_sentinels': ' '.join(servers.sentinels),
                'session_suite.redis_sentinel_master': servers.master_name,
            },
            **CLIENT,
        )
        with serve(app) as url, traffic(url) as visitors:
            time.sleep(0.3)
            start = time.monotonic()
            if how == 'frozen':
                freeze(servers.primary, 1.5)
            else:
                servers.fail_over()
            ended = time.monotonic()
            recovery = recovery_seconds(url, ended, limit=15)
            time.sleep(0.3)
    during, unavailable, slowest = outcome(visitors, start, ended)
    lost = sum(1 for v in visitors if v.signed_out)
    figures.append(
        f'Sentinel primary {how}: {ended - start:.2f} s, '
        f'{unavailable} of {len(during)} requests 503, slowest Redis '
        f'request {slowest:.2f} s, recovered in '
        f'{recovery * 1000:.0f} ms; {lost} of {len(visitors)} visitors '
        'lost their session'
    )
    assert slowest < BOUND
