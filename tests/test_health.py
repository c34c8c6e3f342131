"""The health check of the session stores, and ``session-suite ... check``:
a healthy Redis, one that evicts, one whose INFO and CONFIG are refused, a
stopped one, a replica, the Redis Cluster and Sentinel harnesses."""

import json
from pyramid.config import Configurator
import pytest

from pyramid_session_suite import redis_session_factory
from pyramid_session_suite.health import (
    ServerReport,
    StoreReport,
    check,
    judge,
    version_tuple,
)
from pyramid_session_suite.scripts.sessions import health_lines
from pyramid_session_suite.testing import RedisSentinelServers, RedisServer

from .conftest import SECRET
from .test_sessions_script import closed_port, run

SECTION = """\
[app:main]
use = call:tests.test_health:main
session_suite.namespaces = main
session_suite.namespace.main.backend = redis
session_suite.namespace.main.secret = {secret}
{connection}
"""


def main(global_config, **settings):
    """The application of the ini files here: the namespaces of its
    settings, nothing else (no user index)."""
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    return config.make_wsgi_app()


def write_ini(tmp_path, **connection):
    lines = '\n'.join(
        f'session_suite.{key} = {value}' for key, value in connection.items()
    )
    path = tmp_path / 'production.ini'
    path.write_text(SECTION.format(secret=SECRET, connection=lines))
    return path


def settings(**connection):
    return {
        'session_suite.namespaces': 'main prefs',
        'session_suite.namespace.main.backend': 'redis',
        'session_suite.namespace.prefs.backend': 'redis',
        'session_suite.namespace.main.secret': SECRET,
        'session_suite.namespace.prefs.secret': SECRET,
        **{f'session_suite.{k}': v for k, v in connection.items()},
    }


@pytest.fixture
def evicting():
    """A Redis server limited to 100 MB that evicts any key (a cache's
    settings)."""
    args = ['--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lru']
    with RedisServer(url='', args=args) as server:
        yield server


def test_a_healthy_redis(redis_url):
    report = check(settings(redis_url=redis_url))
    assert report.ok and report.reachable
    [store] = report.stores
    assert store.kind == 'server'
    assert store.namespaces == ['main', 'prefs']  # one store, checked once
    assert store.problems == store.warnings == []
    [server] = store.servers
    assert server.reachable and server.role == 'primary'
    assert version_tuple(server.version) >= (6, 2)
    assert 0 < server.rtt < 0.1
    assert server.evicts_sessions is False


def test_the_command_on_a_healthy_redis(tmp_path, redis_url):
    ini = write_ini(tmp_path, redis_url=redis_url)
    code, out, err = run(ini, 'check')
    assert (code, err) == (0, '')
    lines = out.splitlines()
    address = redis_url.split('//')[1].split('/')[0]
    assert lines[0] == f'server {address} db 0 [main]: ok'
    assert lines[1].split() == [
        'SERVER',
        'ROLE',
        'REDIS',
        'RTT',
        'MAXMEMORY',
        'CLUSTER',
    ]
    assert lines[2].split()[:2] == [address, 'primary']
    assert 'none (noeviction)' in lines[2]
    assert lines[-1] == '1 store checked: all healthy'
    code, out, err = run(ini, 'check', '--json')
    assert code == 0
    data = json.loads(out)
    assert data['ok'] is True
    assert data['stores'][0]['servers'][0]['evicts_sessions'] is False


def test_allkeys_lru_evicts_sessions(tmp_path, evicting):
    report = check(settings(redis_url=evicting.url))
    assert not report.ok and report.reachable
    [store] = report.stores
    [problem] = store.problems
    assert 'maxmemory-policy allkeys-lru' in problem
    assert 'use noeviction' in problem
    assert store.servers[0].maxmemory == 100 * 1024 * 1024
    code, out, err = run(write_ini(tmp_path, redis_url=evicting.url), 'check')
    assert code == 1
    assert '100 MiB allkeys-lru' in out
    assert '  problem: ' in out and 'evicts sessions' in out
    assert out.splitlines()[-1] == '1 store checked: 1 with problems'


@pytest.mark.parametrize(
    'policy, maxmemory, evicts',
    [
        ('volatile-lru', '100mb', True),  # sessions all have a TTL
        ('volatile-ttl', '100mb', True),
        ('allkeys-random', '100mb', True),
        ('noeviction', '100mb', False),
        ('allkeys-lru', '0', False),  # no limit: nothing is evicted
    ],
)
def test_which_policies_evict(evicting, policy, maxmemory, evicts):
    with evicting.client() as client:
        client.config_set('maxmemory-policy', policy)
        client.config_set('maxmemory', maxmemory)
    report = check(settings(redis_url=evicting.url))
    assert report.stores[0].servers[0].evicts_sessions is evicts
    assert report.ok is not evicts


def test_info_and_config_refused_is_unknown():
    """As on managed services that rename or forbid them."""
    args = ['--rename-command', 'CONFIG', '', '--rename-command', 'INFO', '']
    with RedisServer(url='', args=args) as server:
        report = check(settings(redis_url=server.url))
    [store] = report.stores
    assert report.ok  # nothing known to be wrong: warnings only
    [server] = store.servers
    assert server.reachable and server.rtt > 0
    assert server.version is server.policy is server.evicts_sessions is None
    assert [w.split(': ', 1)[1] for w in store.warnings] == [
        'Redis version unknown (INFO refused)',
        'maxmemory-policy unknown (INFO and CONFIG refused): make sure it is '
        'noeviction, or that maxmemory is 0',
    ]


def test_a_stopped_redis(tmp_path):
    url, port = closed_port()
    report = check(settings(redis_url=url))
    assert not report.ok and not report.reachable
    [store] = report.stores
    [problem] = store.problems
    assert problem.startswith(f'127.0.0.1:{port} unreachable: ')
    assert 'Connection refused' in problem
    code, out, err = run(write_ini(tmp_path, redis_url=url), 'check')
    assert code == 3
    assert ': PROBLEM' in out.splitlines()[0]


def test_the_cluster(tmp_path, cluster):
    nodes = ' '.join(cluster.nodes)
    report = check(settings(redis_cluster_nodes=nodes))
    assert report.ok, report.stores[0].problems
    [store] = report.stores
    assert store.kind == 'cluster'
    assert sorted(s.address for s in store.servers) == sorted(cluster.nodes)
    roles = [server.role for server in store.servers]
    assert roles == ['primary'] * 3 + ['replica'] * 3
    assert {server.cluster_state for server in store.servers} == {'ok'}
    code, out, err = run(
        write_ini(tmp_path, redis_cluster_nodes=nodes), 'check'
    )
    assert code == 0, out + err
    assert out.startswith(f'cluster {nodes} [main]: ok')
    assert out.count(' ok ') + out.count(' ok\n') >= 6


def test_a_cluster_node_named_as_one_server(cluster):
    report = check(settings(redis_url=cluster.url))
    [problem] = report.stores[0].problems
    assert 'is a Redis Cluster node' in problem


def test_an_unreachable_cluster():
    url, port = closed_port()
    report = check(settings(redis_cluster_nodes=f'127.0.0.1:{port}'))
    assert not report.reachable
    [problem] = report.stores[0].problems
    assert problem.startswith('cluster unreachable: ')


def test_sentinel_and_a_replica():
    with RedisSentinelServers(replicas=1, sentinels=3) as servers:
        report = check(
            settings(
                redis_sentinels=' '.join(servers.sentinels),
                redis_sentinel_master=servers.master_name,
            )
        )
        assert report.ok, report.stores[0].problems
        [store] = report.stores
        assert store.kind == 'sentinel'
        host, port = servers.master_address()
        assert store.primary == f'{host}:{port}'
        assert store.sentinels == (3, 3)
        assert [s.role for s in store.servers] == ['primary']
        lines = health_lines(report)
        assert (
            lines[1] == f'  primary {host}:{port} (3 of 3 Sentinels answered)'
        )
        # a replica named as the server: it cannot take writes
        replica = servers.replicas[0].url
        [problem] = check(settings(redis_url=replica)).stores[0].problems
        assert 'read-only replica' in problem
        servers.sentinel_servers[0].stop(keep_port=True)
        store = check(
            settings(
                redis_sentinels=' '.join(servers.sentinels),
                redis_sentinel_master=servers.master_name,
            )
        ).stores[0]
        assert store.ok and store.warnings == ['2 of 3 Sentinels answered']
        assert store.sentinels == (2, 3)


def test_from_the_registry_namespaces_registered_in_code(redis_url):
    """Every Redis namespace, from settings or registered in code, with the
    application's own clients."""
    config = Configurator(settings=settings(redis_url=redis_url))
    config.include('pyramid_session_suite')
    other = redis_session_factory(
        SECRET, redis_client=__import__('redis').Redis.from_url(redis_url)
    )
    config.register_session_factory('code', other, cookie_name='code')
    app = config.make_wsgi_app()
    report = check(app.registry)
    [store] = report.stores
    assert store.namespaces == ['main', 'prefs', 'code']
    assert report.ok
    # the application's clients are not closed
    assert other.redis.ping()


def test_no_redis_store(tmp_path):
    report = check({'session_suite.namespaces': 'c',
                    'session_suite.namespace.c.secret': SECRET})  # fmt: skip
    assert report.ok and report.stores == []


def test_an_old_redis_has_no_getex():
    store = StoreReport('server', '10.0.0.1:6379 db 0')
    judge(
        store,
        ServerReport(
            '10.0.0.1:6379',
            role='primary',
            reachable=True,
            version='6.0.16',
            maxmemory=0,
            policy='noeviction',
        ),
    )
    assert store.problems == [
        '10.0.0.1:6379: Redis 6.0.16 has no GETEX: 6.2 or later is needed'
    ]
    assert version_tuple('7.2.4-rc1') == (7, 2, 4)
    assert version_tuple('6.2.14') >= (6, 2) > version_tuple('6.0.20')


def test_a_cluster_with_a_replica_down():
    from pyramid_session_suite.testing import RedisClusterServers

    with RedisClusterServers(primaries=3, replicas=1) as servers:
        nodes = ' '.join(servers.nodes)
        replica = servers.replicas_of(servers.servers[0])[0]
        address = replica.address
        replica.stop(keep_port=True)
        report = check(settings(redis_cluster_nodes=nodes))
    [store] = report.stores
    assert report.reachable and not report.ok
    down = [s for s in store.servers if not s.reachable]
    assert [(s.address, s.role) for s in down] == [(address, 'replica')]
    assert store.problems[0].startswith(f'{address} unreachable: ')


def test_the_health_view_of_the_readme(redis_url, evicting):
    from webtest import TestApp

    def health(request):
        report = check(request.registry)
        request.response.status_int = 200 if report.ok else 503
        return report.as_dict()

    def app(url):
        config = Configurator(settings=settings(redis_url=url))
        config.include('pyramid_session_suite')
        config.add_route('health', '/health')
        config.add_view(health, route_name='health', renderer='json')
        return TestApp(config.make_wsgi_app())

    assert app(redis_url).get('/health').json['ok'] is True
    data = app(evicting.url).get('/health', status=503).json
    assert data['ok'] is False and data['reachable'] is True
    assert data['stores'][0]['servers'][0]['policy'] == 'allkeys-lru'
