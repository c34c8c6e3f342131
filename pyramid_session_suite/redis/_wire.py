"""The read and the write of a session, as few instructions from the
socket as they can be.

A session is read once per request, with one ``GETEX`` (or ``GET``), and
written with one script. On a plain :class:`redis.Redis` client (one
server or Sentinel) the command is packed here and sent on a connection of
the client's pool, with the client's retries, without redis-py's generic
command layer (argument encoding, command dispatch, per-command events),
which cost a read more than the rest of the session machinery did. On a
plain :class:`redis.ConnectionPool` the connection is taken and given back
under the pool's lock, checked as the pool checks it (connected, nothing
left unread, no reconnection asked for), without the pool's per-call
bookkeeping; a new connection is made by the pool. The reply, the errors
and the retries are redis-py's own. Any other client (a cluster, a client
bound to one connection, one that decodes replies) gets the plain call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import hashlib
from typing import TYPE_CHECKING, Any
import redis

if TYPE_CHECKING:
    from redis.connection import Connection, ConnectionPool

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


def _lean(pool: ConnectionPool) -> bool:
    """Whether a connection of ``pool`` can be taken from it and given
    back without the pool's generic bookkeeping (its lock, its lists and
    the connection's checks only): a plain :class:`redis.ConnectionPool`
    without the features that need more (a client-side cache; a credential
    provider, which re-authenticates connections as they are given back).
    """
    lean: bool | None = pool.__dict__.get('_session_suite_lean')
    if lean is None:
        lean = pool._session_suite_lean = (  # type: ignore[attr-defined]
            type(pool) is redis.ConnectionPool
            # (the pool's checks in one method, as redis-py 8.2 has them)
            and callable(getattr(pool, 'ensure_connection', None))
            and getattr(pool, 'cache', None) is None
            and not pool.connection_kwargs.get('credential_provider')
            and isinstance(getattr(pool, '_available_connections', 0), list)
            and isinstance(getattr(pool, '_in_use_connections', 0), set)
        )
    return lean


def _send(client: RedisClient, packed: bytes) -> Any:
    """The reply of the ``packed`` command, on a connection of the
    client's pool, with the client's retries."""
    pool = client.connection_pool
    if not _lean(pool):
        return _send_pooled(pool, packed)
    pool._checkpid()
    with pool._lock:
        available = pool._available_connections
        conn = available.pop() if available else None
        if conn is not None:
            pool._in_use_connections.add(conn)
    if conn is None:  # a new connection: made by the pool
        return _send_pooled(pool, packed)
    try:
        if _stale(conn):  # the pool's own checks, and reconnection
            pool.ensure_connection(conn)
        return conn.retry.call_with_retry(
            lambda: _round_trip(conn, packed), lambda _: conn.disconnect()
        )
    except redis.ResponseError:
        raise  # an answer: the connection is ready for the next command
    except BaseException:
        conn.disconnect()  # whatever it was in the middle of
        raise
    finally:
        # (a maintenance notification may ask for a new connection)
        reconnect = getattr(conn, 'should_reconnect', None)
        if reconnect is not None and reconnect():
            conn.disconnect()
        with pool._lock:
            try:
                pool._in_use_connections.remove(conn)
            except KeyError:  # the pool was reset meanwhile: not its own
                pass
            else:
                pool._available_connections.append(conn)


def _stale(conn: Connection) -> bool:
    """Whether a pooled connection is not ready for a command: not
    connected, or with something to read (a reply left over, push
    notifications, the server's close)."""
    if getattr(conn, '_sock', None) is None:
        return True
    try:
        return bool(conn.can_read())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return True


def _send_pooled(pool: ConnectionPool, packed: bytes) -> Any:
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


def _bulks(args: Iterable[Any]) -> bytes:
    """``args`` as the protocol's bulk strings: bytes as they are, text in
    UTF-8, numbers in decimal (what redis-py's encoder sends)."""
    out: list[bytes] = []
    append = out.append
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode('utf-8')
        elif kind is int:
            data = b'%d' % arg
        else:
            data = _other(arg)
        append(b'$%d' % len(data))
        append(data)
    append(b'')
    return b'\r\n'.join(out)


def _other(arg: Any) -> bytes:
    if isinstance(arg, float):
        return repr(arg).encode('ascii')
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg)
    if isinstance(arg, int):
        return b'%d' % arg
    return str(arg).encode('utf-8')  # a str subclass


def command(client: RedisClient, args: Sequence[Any]) -> Any:
    """The reply of the command ``args`` (bytes, text or integers), sent
    like :func:`read` (any other client: ``execute_command``)."""
    if not _plain(client):
        return client.execute_command(*args)
    return _send(client, b'*%d\r\n%b' % (len(args), _bulks(args)))


#: ``EVALSHA`` and the SHA1 of each script's source, as bulk strings (the
#: suite's few scripts)
_HEADS: dict[str, bytes] = {}


def script(client: RedisClient, args: Sequence[Any]) -> Any:
    """The reply of ``args``, an ``EVAL`` (source, number of keys, keys,
    arguments), sent as ``EVALSHA`` on a plain client (as ``EVAL`` again
    when Redis does not hold the script yet, which loads it)."""
    if not _plain(client):
        return client.execute_command(*args)
    source = args[1]
    head = _HEADS.get(source)
    if head is None:
        sha = hashlib.sha1(source.encode('utf-8'), usedforsecurity=False)
        head = _HEADS[source] = _bulks(('EVALSHA', sha.hexdigest()))
    try:
        return _send(
            client, b'*%d\r\n%b%b' % (len(args), head, _bulks(args[2:]))
        )
    except redis.exceptions.NoScriptError:
        return command(client, args)
