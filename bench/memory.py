"""What the sessions cost in Redis memory.

For each stack, ``count`` logged-in sessions with the same data — a CSRF
token, the user id and the small keys of :data:`.apps.ANONYMOUS_DATA` —
each of a different user, are stored in an empty database of the
benchmark's server, and ``INFO memory`` ``used_memory`` is read before and
after (once it stopped moving). The database is emptied (``FLUSHDB``)
before and after each stack; it must be empty to begin with.

- anchor: the payload ``pyramid_session_redis`` writes (its default pickle
  serializer, ``to_redis()`` of a real session), under an id of its default
  generator, with its TTL; written in pipelines (``SET ... EX``, what its
  ``SETEX`` stores).
- suite: each session goes through :func:`pyramid_session_suite.login` on
  a request of the ``users`` application (policy and user index at their
  defaults): the user index entry is written then (one ``EVALSHA`` per
  login), the session key by the commands the persist tween would send,
  in pipelines. ``used_memory`` is read between the two, so the index and
  the session keys are reported apart.
"""

from dataclasses import dataclass
import itertools
import time
import redis

from pyramid_session_suite.login_records import redis_key

from .apps import TIMEOUT, build, fill_anonymous, tracker_of
from .workloads import blank_request

#: the database the measurement uses (and empties): never the benchmark's
MEMORY_DB = 15

#: sessions per measurement
DEFAULT_SESSIONS = 10_000
SMOKE_SESSIONS = 200

#: sessions written per pipeline
CHUNK = 500

#: sessions made and dropped before measuring, so that scripts are loaded
#: and connections open
WARM_UP = 20

#: the user ids of the measurement: a new user per session
MEMORY_PREFIX = 'user'


@dataclass
class MemoryRow:
    """The memory cost of ``sessions`` sessions of one stack."""

    stack: str
    #: the database they were stored in
    db: int
    sessions: int
    #: Redis keys created
    keys: int
    #: mean size of a stored session value, in bytes
    value_bytes: float
    #: growth of ``used_memory`` for the session keys, in bytes
    session_bytes: int
    #: growth of ``used_memory`` for the user index (``None``: no index)
    index_bytes: int | None

    @property
    def total_bytes(self):
        return self.session_bytes + (self.index_bytes or 0)

    def per_session(self, part='total'):
        """Bytes per session of ``part``: ``total``, ``session``,
        ``index``."""
        value = getattr(self, f'{part}_bytes')
        if value is None:
            return None
        return value / self.sessions


def memory_db(url):
    """The database of the measurement on the server of ``url``."""
    db = int(redis.connection.parse_url(url).get('db') or 0)
    return MEMORY_DB if db != MEMORY_DB else MEMORY_DB - 1


def db_client(url):
    """A client of the measurement's database on the server of ``url``
    (``from_url(url, db=...)`` would keep the database of the URL)."""
    options = dict(redis.connection.parse_url(url), db=memory_db(url))
    return redis.Redis(connection_pool=redis.ConnectionPool(**options))


def close(client):
    client.close()
    client.connection_pool.disconnect()


def check_memory_db(url):
    """Raise ``RuntimeError`` unless the measurement's database is empty:
    it is flushed."""
    db = memory_db(url)
    client = db_client(url)
    try:
        size = client.dbsize()
    finally:
        close(client)
    if size:
        raise RuntimeError(
            f'database {db} of {url} holds {size} keys; the memory '
            'measurement needs it empty (it flushes it)'
        )


def used_memory(meter, attempts=40, pause=0.05):
    """``used_memory`` once two readings in a row agree (the server rehashes
    its dictionaries and trims client buffers in the background)."""
    last = None
    for _ in range(attempts):
        value = int(meter.info('memory')['used_memory'])
        if value == last:
            return value
        last = value
        time.sleep(pause)
    return last


def user_ids(start, count):
    return [f'{MEMORY_PREFIX}{n:06d}' for n in range(start, start + count)]


def anchor_sessions(app, userids):
    """``(session id, payload)`` of a logged-in anchor session per user,
    as ``pyramid_session_redis`` would store them (nothing is written)."""
    from pyramid_session_redis.util import _generate_session_id

    for userid in userids:
        session = blank_request(app).session_multi['r']
        fill_anonymous(session)
        session['user'] = userid
        yield _generate_session_id(), session.to_redis()


def write_anchor(client, sessions):
    sids = []
    for chunk in _chunks(sessions):
        pipe = client.pipeline(transaction=False)
        for sid, payload in chunk:
            pipe.set(sid, payload, ex=TIMEOUT)
            sids.append(sid)
        pipe.execute()
    return sids


def login_suite(app, userids):
    """Log each user in on a new session of the suite ``users``
    application: the user index is written now; return the session ids and
    the commands that write the session keys."""
    from pyramid_session_suite import login

    tracker = tracker_of(app)
    sids, commands = [], []
    for userid in userids:
        request = blank_request(app)
        session = tracker.session(request)
        fill_anonymous(session)
        login(request, userid)
        session['user'] = userid
        commands.extend(session.flush_commands(True))
        sids.append(session.session_id)
    return sids, commands


def write_suite(client, commands):
    from pyramid_session_suite.persist import run_commands

    for chunk in _chunks(commands):
        run_commands(client, chunk)


def _chunks(items):
    items = iter(items)
    while chunk := list(itertools.islice(items, CHUNK)):
        yield chunk


def measure(url, count=DEFAULT_SESSIONS, say=None):
    """Measure ``count`` sessions per stack; return the
    :class:`MemoryRow` of the anchor and of the suite."""
    db = memory_db(url)
    check_memory_db(url)
    meter = db_client(url)
    writer = db_client(url)
    rows = []
    try:
        for stack in ('anchor', 'suite'):
            app = build(stack, writer, 'users')
            _store(stack, app, writer, user_ids(0, WARM_UP))
            meter.flushdb(asynchronous=False)
            writer.connection_pool.disconnect()
            before = used_memory(meter)
            sids, middle = _store(
                stack, app, writer, user_ids(WARM_UP, count), meter
            )
            writer.connection_pool.disconnect()
            after = used_memory(meter)
            pipe = meter.pipeline(transaction=False)
            for sid in sids:
                pipe.strlen(redis_key(sid))
            sizes = pipe.execute()
            if 0 in sizes:
                raise AssertionError(f'memory/{stack}: a session is missing')
            if middle is None:
                session_bytes, index_bytes = after - before, None
            else:
                session_bytes, index_bytes = after - middle, middle - before
            rows.append(
                MemoryRow(
                    stack=stack,
                    db=db,
                    sessions=count,
                    keys=meter.dbsize(),
                    value_bytes=sum(sizes) / len(sizes),
                    session_bytes=session_bytes,
                    index_bytes=index_bytes,
                )
            )
            meter.flushdb(asynchronous=False)
            if say is not None:
                row = rows[-1]
                say(
                    f'memory   {stack:<6} {row.per_session():,.0f} bytes '
                    f'per session'
                )
    finally:
        meter.flushdb(asynchronous=False)
        close(writer)
        close(meter)
    return rows


def _store(stack, app, writer, userids, meter=None):
    """Store a session per user; with ``meter``, read ``used_memory``
    after the index is written (suite). Return the session ids and that
    reading (``None`` for the anchor)."""
    if stack == 'anchor':
        return write_anchor(writer, list(anchor_sessions(app, userids))), None
    sids, commands = login_suite(app, userids)
    middle = None
    if meter is not None:
        writer.connection_pool.disconnect()
        middle = used_memory(meter)
    write_suite(writer, commands)
    return sids, middle
