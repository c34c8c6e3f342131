"""Redis clients that count their round trips (see
:class:`pyramid_session_suite.testing.RoundTrips`), with the reply parser
of one's choice."""

import redis
from redis._parsers import _HiredisParser, _RESP2Parser
from redis.utils import HIREDIS_AVAILABLE

from pyramid_session_suite.testing import RoundTrips, command_names

__all__ = [
    'PARSERS',
    'RoundTrips',
    'client',
    'close',
    'command_names',
    'default_parser',
    'evalsha_stats',
    'parser_of',
    'sequences',
    'warm_up',
]

#: redis-py's reply parsers, by the name the report gives them. redis-py
#: 8 speaks RESP3 by default: given the pure-Python ``_RESP2Parser``, a
#: RESP3 connection takes ``_RESP3Parser`` instead (see :func:`parser_of`);
#: ``_HiredisParser`` reads both
PARSERS = {'python': _RESP2Parser, 'hiredis': _HiredisParser}


def default_parser():
    """The parser redis-py picks by itself: hiredis if it is installed."""
    return 'hiredis' if HIREDIS_AVAILABLE else 'python'


def client(recorder, url, parser=None, **options):
    """A ``redis.Redis`` for ``url`` whose round trips ``recorder`` counts
    (if any), parsing replies with ``parser`` (a key of :data:`PARSERS`;
    default: :func:`default_parser`), forced by the ``parser_class``
    connection option; ``options`` override those of ``url`` (``db``)."""
    kwargs = dict(redis.connection.parse_url(url), **options)
    base = kwargs.pop('connection_class', redis.Connection)
    if recorder is not None:
        base = recorder.connection_class(base)
    pool = redis.ConnectionPool(
        connection_class=base,
        parser_class=PARSERS[parser or default_parser()],
        **kwargs,
    )
    return redis.Redis(connection_pool=pool)


def close(client):
    """Close ``client`` and every connection of its pool."""
    client.close()
    client.connection_pool.disconnect()


def evalsha_stats(client):
    """``(microseconds, calls)``: what Redis spent running scripts by
    ``EVALSHA`` so far (``INFO commandstats``)."""
    stats = client.info('commandstats').get('cmdstat_evalsha', {})
    return int(stats.get('usec', 0)), int(stats.get('calls', 0))


def parser_of(client):
    """The reply parser of ``client``'s connections, as one of them has
    it: ``_RESP3Parser (RESP3)``."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        name = type(connection._parser).__name__
        return f'{name} (RESP{connection.protocol})'
    finally:
        pool.release(connection)


def warm_up(client):
    """Open the client's connection, so that the commands of the connection
    handshake (``HELLO``, ``CLIENT SETINFO``) are not counted later."""
    client.ping()


def sequences(counted):
    """The distinct command sequences of ``counted`` (per request, its round
    trips): each a tuple of round trips, each a tuple of command names."""
    found = []
    for trips in counted:
        sequence = tuple(tuple(command_names(trip)) for trip in trips)
        if sequence not in found:
            found.append(sequence)
    return found
