"""The read and the write of a session, as few instructions from the
socket as they can be.

A session is read once per request, with one ``GETEX`` (or ``GET``), and
written with one script. On a plain :class:`redis.Redis` client (one
server or Sentinel) the command is packed here and sent on a connection of
the client's pool, with the client's retries, without redis-py's generic
command layer (argument encoding, command dispatch, per-command events),
which cost a read more than the rest of the session machinery did. The
reply, the errors and the connection handling are redis-py's own. Any
other client (a cluster, a client bound to one connection, one that
decodes replies) gets the plain call.
"""

from __future__ import annotations

from collections.abc import Sequence
import hashlib
from typing import TYPE_CHECKING, Any
import redis

if TYPE_CHECKING:
    from redis.connection import Connection

    from .clients import RedisClient


def _packed(key: str | bytes, seconds: float | None) -> bytes:
    if isinstance(key, str):
        key = key.encode('utf-8')
    if seconds:
        ttl = b'%d' % int(seconds)
        return (
            b'*4\r\n$5\r\nGETEX\r\n$%d\r\n%b\r\n$2\r\nEX\r\n$%d\r\n%b\r\n'
            % (
                len(key),
                key,
                len(ttl),
                ttl,
            )
        )
    return b'*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n' % (len(key), key)


def _plain(client: RedisClient) -> bool:
    plain: bool | None = client.__dict__.get('_session_suite_plain')
    if plain is None:
        plain = client._session_suite_plain = (
            type(client) is redis.Redis
            and client.connection is None
            and not client.connection_pool.connection_kwargs.get(
                'decode_responses'
            )
        )
    return plain


def read(
    client: RedisClient, key: str | bytes, seconds: float | None = None
) -> bytes | None:
    """The value of ``key`` (bytes, or ``None``), its TTL set to
    ``seconds`` if given (``GETEX``), else untouched (``GET``)."""
    if not _plain(client):
        value: bytes | None
        if seconds:
            value = client.getex(key, ex=seconds)
        else:
            value = client.get(key)
        return value
    reply: bytes | None = _send(client, _packed(key, seconds))
    return reply


def _send(client: RedisClient, packed: bytes) -> Any:
    """The reply of the ``packed`` command, on a connection of the
    client's pool, with the client's retries."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        return conn.retry.call_with_retry(
            lambda: _round_trip(conn, packed), lambda _: conn.disconnect()
        )
    finally:
        pool.release(conn)


def _round_trip(conn: Connection, packed: bytes) -> Any:
    conn.send_packed_command((packed,))
    return conn.read_response()


def _bulk(arg: Any) -> bytes:
    kind = type(arg)
    if kind is bytes:
        return b'$%d\r\n%b\r\n' % (len(arg), arg)
    if kind is int:
        data = b'%d' % arg
    elif kind is str:
        data = arg.encode('utf-8')
    elif kind is float:
        data = repr(arg).encode('ascii')
    elif isinstance(arg, (bytes, bytearray, memoryview)):
        data = bytes(arg)
    elif isinstance(arg, int):
        data = b'%d' % arg
    else:  # a str subclass
        data = str(arg).encode('utf-8')
    return b'$%d\r\n%b\r\n' % (len(data), data)


def command(client: RedisClient, args: Sequence[Any]) -> Any:
    """The reply of the command ``args`` (bytes, text or integers), sent
    like :func:`read` (any other client: ``execute_command``)."""
    if not _plain(client):
        return client.execute_command(*args)
    return _send(
        client,
        b'*%d\r\n%b' % (len(args), b''.join([_bulk(a) for a in args])),
    )


#: the SHA1 of each script's source, as ``EVALSHA`` names it (the
#: suite's few scripts)
_SHAS: dict[str, str] = {}


def script(client: RedisClient, args: Sequence[Any]) -> Any:
    """The reply of ``args``, an ``EVAL`` (source, number of keys, keys,
    arguments), sent as ``EVALSHA`` on a plain client (as ``EVAL`` again
    when Redis does not hold the script yet, which loads it)."""
    if not _plain(client):
        return client.execute_command(*args)
    source = args[1]
    sha = _SHAS.get(source)
    if sha is None:
        sha = _SHAS[source] = hashlib.sha1(
            source.encode('utf-8'), usedforsecurity=False
        ).hexdigest()
    try:
        return command(client, ('EVALSHA', sha, *args[2:]))
    except redis.exceptions.NoScriptError:
        return command(client, args)
