"""Redis connections from the settings and from Python: one server, a
Redis Cluster, a Sentinel-managed primary."""

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from pyramid_session_suite import redis_client
from pyramid_session_suite.interfaces import ISessionMultiManagerConfig
from pyramid_session_suite.redis.clients import LazyRedisCluster

from .conftest import SECRET


def factory_of(settings, namespace='main'):
    settings = {
        'session_suite.namespaces': namespace,
        f'session_suite.namespace.{namespace}.backend': 'redis',
        f'session_suite.namespace.{namespace}.secret': SECRET,
        **settings,
    }
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    config.commit()
    manager = config.registry.getUtility(ISessionMultiManagerConfig)
    return manager.get_namespace_config(namespace)


def test_one_server_by_url_with_the_default_timeouts():
    client = factory_of({'session_suite.redis_url': 'redis://h:1/3'}).redis
    assert isinstance(client, redis.Redis)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs['host'], kwargs['port'], kwargs['db']) == ('h', 1, 3)
    assert kwargs['socket_timeout'] == 2.0
    assert kwargs['socket_connect_timeout'] == 1.0


def test_a_cluster_by_seed_nodes():
    client = factory_of(
        {
            'session_suite.redis_cluster_nodes': '10.0.0.1:7000 [::1]:7001',
            'session_suite.redis_password': 'pw',
            'session_suite.redis_socket_timeout': '0.5',
        }
    ).redis
    assert isinstance(client, LazyRedisCluster)
    nodes = client._kwargs['startup_nodes']
    assert [(n.host, n.port) for n in nodes] == [
        ('10.0.0.1', 7000),
        ('::1', 7001),
    ]
    assert client._kwargs['password'] == 'pw'
    assert client._kwargs['socket_timeout'] == 0.5
    assert client._kwargs['socket_connect_timeout'] == 1.0


def test_a_sentinel_managed_primary():
    client = factory_of(
        {
            'session_suite.redis_sentinels': 's1:26379\ns2:26379',
            'session_suite.redis_sentinel_master': 'sessions',
            'session_suite.redis_db': '2',
            'session_suite.redis_sentinel_password': 'sentinel-pw',
        }
    ).redis
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == 'sessions'
    assert pool.connection_kwargs['db'] == 2
    sentinels = pool.sentinel_manager.sentinels
    assert [
        s.connection_pool.connection_kwargs['host'] for s in sentinels
    ] == [
        's1',
        's2',
    ]
    kwargs = sentinels[0].connection_pool.connection_kwargs
    assert kwargs['password'] == 'sentinel-pw'
    assert kwargs['socket_timeout'] == 2.0


def test_a_namespace_that_names_a_server_takes_nothing_from_the_core():
    client = factory_of(
        {
            'session_suite.redis_cluster_nodes': '10.0.0.1:7000',
            'session_suite.redis_socket_timeout': '0.5',
            'session_suite.namespace.main.redis_url': 'redis://own:6379/0',
        }
    ).redis
    assert isinstance(client, redis.Redis)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs['host'] == 'own'
    # options it does not set still come from the core
    assert kwargs['socket_timeout'] == 0.5


@pytest.mark.parametrize(
    ('settings', 'message'),
    [
        ({}, 'session_suite.namespace.main.redis_url, '),
        (
            {
                'session_suite.redis_url': 'redis://h/0',
                'session_suite.redis_sentinels': 'h:26379',
            },
            'session_suite.redis_url and session_suite.redis_sentinels',
        ),
        (
            {'session_suite.redis_sentinels': 'h:26379'},
            'session_suite.redis_sentinel_master is required',
        ),
        (
            {'session_suite.redis_cluster_nodes': 'h'},
            "session_suite.redis_cluster_nodes: 'h' is not host:port",
        ),
        (
            {
                'session_suite.redis_cluster_nodes': 'h:1',
                'session_suite.redis_db': '1',
            },
            'session_suite.redis_db: Redis Cluster has only database 0',
        ),
        (
            {'session_suite.namespace.main.redis_socket_timeout': 'soon'},
            'session_suite.namespace.main.redis_socket_timeout',
        ),
        (
            {'session_suite.redis_socket_timeout': '0'},
            'session_suite.redis_socket_timeout: must be more than 0',
        ),
        (
            {'session_suite.namespace.main.redis_connect_timeout': '-1'},
            'session_suite.namespace.main.redis_connect_timeout: must be '
            'more than 0',
        ),
    ],
)
def test_bad_connection_settings_name_the_setting(settings, message):
    with pytest.raises(ConfigurationError) as info:
        factory_of(settings)
    assert message in str(info.value)


def test_from_python():
    assert isinstance(redis_client('redis://h/0'), redis.Redis)
    cluster = redis_client(cluster_nodes=['h:1'], socket_timeout=0.1)
    assert cluster._kwargs['socket_timeout'] == 0.1
    sentinel = redis_client(sentinels=['h:2'], sentinel_master='m')
    assert sentinel.connection_pool.service_name == 'm'
    for bad in (
        {},
        {'url': 'redis://h/0', 'cluster_nodes': ['h:1']},
        {'sentinels': ['h:2']},
    ):
        with pytest.raises(ValueError):
            redis_client(**bad)


def test_a_cluster_is_not_contacted_until_used():
    client = redis_client(
        cluster_nodes=['127.0.0.1:1'], socket_connect_timeout=0.2
    )
    script = client.register_script('return 1')
    assert script.sha
    with pytest.raises(redis.ConnectionError):
        client.get('key')
