"""The short way to the socket gives what redis-py's command layer gives,
for every kind of argument the suite sends."""

import uuid
import pytest
import redis

from pyramid_session_suite.redis import _wire as wire
from pyramid_session_suite.testing import RoundTrips

ARGUMENTS = [
    b'bytes',
    b'',
    b'\x00\xff\r\n binary',
    'text',
    'caf\u00e9',
    0,
    -42,
    2**40,
    1.5,
    bytearray(b'array'),
    memoryview(b'view'),
    'x' * 1000,
]


@pytest.mark.parametrize('argument', ARGUMENTS, ids=repr)
def test_an_argument_reaches_redis_as_redis_py_sends_it(
    redis_client, argument
):
    expected = redis_client.execute_command('ECHO', argument)
    assert wire.command(redis_client, ('ECHO', argument)) == expected
    assert wire.command(redis_client, ('ECHO', argument)) == expected


def test_a_script_runs_and_its_errors_are_redis_py_errors(redis_client):
    assert wire.command(redis_client, ('EVAL', 'return ARGV[1]', 0, 7)) == (
        b'7'
    )
    with pytest.raises(redis.ResponseError):
        wire.command(
            redis_client, ('EVAL', 'return redis.error_reply("no")', 0)
        )


def test_a_write_is_one_round_trip_on_the_clients_pool(redis_url):
    round_trips = RoundTrips()
    client = round_trips.client(redis_url)
    client.ping()  # the connection's handshake
    round_trips.reset()
    assert wire.command(client, ('SET', 'wire:k', b'v', 'NX', 'EX', 60))
    assert wire.read(client, 'wire:k', 60) == b'v'
    assert round_trips.trips == [['SET'], ['GETEX']]
    # and the connection went back to the pool
    pool = client.connection_pool
    assert len(pool._available_connections) == 1
    assert len(pool._in_use_connections) == 0


def test_a_script_redis_does_not_hold_costs_one_round_trip_more_once(
    redis_url,
):
    round_trips = RoundTrips()
    client = round_trips.client(redis_url)
    client.ping()  # the connection's handshake
    round_trips.reset()
    source = f'return ARGV[1] -- {uuid.uuid4()}'  # new to this server
    assert wire.script(client, ('EVAL', source, 0, b'a')) == b'a'
    assert wire.script(client, ('EVAL', source, 0, b'b')) == b'b'
    assert round_trips.trips == [['EVALSHA'], ['EVAL'], ['EVALSHA']]


def test_threads_each_read_on_a_connection_of_their_own(redis_url):
    """Connections are taken from the pool and given back, never shared:
    every thread reads its own keys, and the pool keeps them all."""
    import threading

    from pyramid_session_suite.redis.clients import redis_client

    client = redis_client(redis_url)
    assert wire._lean(client.connection_pool)
    keys = [f'wire:thread:{i}' for i in range(8)]
    for key in keys:
        client.set(key, key.encode())
    wrong = []

    def reads(key):
        for _ in range(300):
            value = wire.read(client, key, 60)
            if value != key.encode():
                wrong.append((key, value))

    threads = [threading.Thread(target=reads, args=(k,)) for k in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    pool = client.connection_pool
    assert len(pool._in_use_connections) == 0
    assert 1 <= len(pool._available_connections) <= len(keys)


def test_a_connection_the_server_closed_is_replaced_not_failed(redis_url):
    """Without retries, a read on a pooled connection the server closed
    (a restart, an idle timeout) still answers: it is checked as the pool
    checks it before it is used."""
    from pyramid_session_suite.redis.clients import redis_client

    client = redis_client(redis_url, retries=0)
    client.set('wire:closed', b'v')
    client.client_setname('wire-closed')  # on its one pooled connection
    killer = redis.Redis.from_url(redis_url)
    [victim] = [c for c in killer.client_list() if c['name'] == 'wire-closed']
    killer.client_kill_filter(_id=victim['id'])
    assert wire.read(client, 'wire:closed') == b'v'
    assert wire.command(client, ('GET', 'wire:closed')) == b'v'


def test_pools_that_need_their_own_bookkeeping_keep_it(redis_url):
    from redis.credentials import UsernamePasswordCredentialProvider

    provider = UsernamePasswordCredentialProvider()
    for client in (
        redis.Redis.from_url(redis_url, credential_provider=provider),
        redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(redis_url)
        ),
    ):
        assert not wire._lean(client.connection_pool)
        client.set('wire:own', b'v')
        assert wire.read(client, 'wire:own', 60) == b'v'
        assert wire.read(client, 'wire:own', 60) == b'v'
