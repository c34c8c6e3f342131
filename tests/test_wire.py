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
