"""What the sessions cost in Redis memory, and what a login costs Redis.

Every measurement stores ``count`` sessions of one stack in an empty
database of the benchmark's server and reads ``INFO memory``
``used_memory`` before and after (once it stopped moving); the database is
emptied (``FLUSHDB``) before and after each (it must be empty to begin
with). Each session holds a CSRF token and the small keys of
:data:`.apps.ANONYMOUS_DATA`, plus the user id once logged in.

- anchor: the payload ``pyramid_session_redis`` writes (its default pickle
  serializer, ``to_redis()`` of a real session), under an id of its default
  generator, with its TTL; written in pipelines (``SET ... EX``, what its
  ``SETEX`` stores).
- suite: the ``users`` application (policy and user index at their
  defaults), its sessions written by the commands the persist tween would
  send (``flush_commands``), in pipelines.

The measurements, and what each stores: :data:`DESCRIPTIONS`.

Besides ``used_memory`` (the server's total), every key left is surveyed
(``SCAN``): its kind (:data:`KINDS`), ``MEMORY USAGE key SAMPLES 0`` (what
that key takes, on its own) and, for a string, its length.

:func:`login_cost` gives a user ``n - 1`` sessions then logs it in again,
for a few ``n``: Redis time of the login script (``INFO commandstats``,
read before and after each login) and round trips per login.
"""

import contextlib
from dataclasses import dataclass, field
import itertools
import time
import redis

from pyramid_session_suite.testing import RoundTrips

from .apps import TIMEOUT, build, fill_anonymous, tracker_of
from .counting import (
    client as counted_client,
    close,
    evalsha_stats,
    sequences,
)
from .workloads import add_sessions, blank_request

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

#: the measurements, in order
LOGGED_IN = 'logged-in'
ANONYMOUS = 'anonymous'
TWO_PER_USER = 'logged-in x2'
ENDED = 'ended'
MEASUREMENTS = (LOGGED_IN, ANONYMOUS, TWO_PER_USER, ENDED)

#: what each measurement stores, for the report
DESCRIPTIONS = {
    LOGGED_IN: (
        'a session per user; suite: pyramid_session_suite.login on a new '
        'session of the users application (its login script writes the '
        'session), then the rest of the request\'s changes written'
    ),
    ANONYMOUS: (
        'no user; suite: a new session of the users application\'s '
        'namespace, written as the persist tween would; anchor: its payload '
        'without user'
    ),
    TWO_PER_USER: (
        'two sessions per user, half as many users; suite: the policy\'s '
        'login limit (max_sessions, 1 by default) lifted so that the second '
        'login ends nothing: a user with 2+ sessions has an index key (ZSET '
        '...:i)'
    ),
    ENDED: (
        'what an ended session leaves; suite: logged in as for logged-in, '
        'then each user\'s sessions ended (tracker.revoke_all): the key '
        'holds an ended marker (byte 0, digest, reason) for end_ttl; anchor: '
        'a logout deletes the key'
    ),
}

#: the stacks of each measurement, in order
STACKS = ('anchor', 'suite')

#: the kinds of keys, and what the report calls them: a session (its
#: value does not start with byte 0; logged-in ``<prefix>{tag}:<slot>`` or
#: anonymous ``<prefix><id>``), a user's index (ZSET ``...:i``), an ended
#: session's marker (a string starting with byte 0), anything else
KINDS = {
    'session': 'session keys',
    'index': 'index keys',
    'ended': 'ended markers',
    'other': 'other keys',
}

#: the sessions of the login cost's user, once logged in
LOGIN_SIZES = (1, 100, 1_000)
SMOKE_LOGIN_SIZES = (1, 10, 100)

#: logins timed per size (each of a user of its own)
LOGINS = 20
SMOKE_LOGINS = 10


@dataclass
class KeyKind:
    """The keys of one kind left by a measurement."""

    kind: str
    keys: int = 0
    #: sum of their ``MEMORY USAGE``, bytes
    usage: int = 0
    #: sum of their lengths (``STRLEN``), bytes; ``None``: not strings
    value: int | None = None

    @property
    def name(self):
        return KINDS[self.kind]

    @property
    def mean_usage(self):
        return self.usage / self.keys if self.keys else None

    @property
    def mean_value(self):
        if not self.keys or self.value is None:
            return None
        return self.value / self.keys


@dataclass
class MemoryRow:
    """The memory cost of ``sessions`` sessions of one stack in one
    measurement."""

    measurement: str
    stack: str
    #: the database they were stored in
    db: int
    sessions: int
    #: users logged in (``None``: anonymous)
    users: int | None
    #: Redis keys left
    keys: int
    #: growth of ``used_memory``, in bytes
    used: int
    #: the keys left, per kind (:data:`KINDS`) found
    kinds: dict = field(default_factory=dict)

    def kind(self, kind):
        """The :class:`KeyKind` ``kind`` (empty if there is none)."""
        return self.kinds.get(kind) or KeyKind(kind)

    @property
    def value_bytes(self):
        """Mean size of a stored session value (of an ended marker, when
        only those are left), or ``None``."""
        for kind in ('session', 'ended'):
            mean = self.kind(kind).mean_value
            if mean is not None:
                return mean
        return None

    def per_session(self):
        """``used_memory`` growth per session, bytes."""
        return self.used / self.sessions


def find_row(rows, measurement, stack):
    """The :class:`MemoryRow` of ``measurement`` and ``stack``, or
    ``None``."""
    return next(
        (
            row
            for row in rows
            if row.measurement == measurement and row.stack == stack
        ),
        None,
    )


def ratio(rows, measurement):
    """Suite bytes per session over the anchor's in ``measurement``, or
    ``None`` (not measured, or the anchor keeps nothing)."""
    anchor = find_row(rows, measurement, 'anchor')
    suite = find_row(rows, measurement, 'suite')
    if anchor is None or suite is None or not anchor.keys:
        return None
    return suite.per_session() / anchor.per_session()


@dataclass
class LoginCost:
    """What a login costs Redis when the user has ``sessions - 1``
    sessions already."""

    #: the user's sessions once logged in
    sessions: int
    logins: int
    #: ``cmdstat_evalsha`` of the logins: microseconds, calls
    server_usec: int
    script_calls: int
    #: per login, its round trips (lists of commands)
    counted: list
    #: elapsed seconds of the logins (login and session write, this
    #: process)
    seconds: float
    #: whether the user had an index key once logged in
    index: bool

    @property
    def server_micros(self):
        """Microseconds Redis spent running the login script, per call."""
        return self.server_usec / self.script_calls

    @property
    def calls(self):
        """Script calls per login."""
        return self.script_calls / self.logins

    @property
    def round_trips(self):
        return sum(map(len, self.counted)) / len(self.counted)

    @property
    def micros(self):
        """Wall-clock microseconds per login and session write."""
        return self.seconds / self.logins * 1e6

    @property
    def sequences(self):
        """The distinct command sequences of the logins."""
        return sequences(self.counted)


def memory_db(url):
    """The database of the measurement on the server of ``url``."""
    db = int(redis.connection.parse_url(url).get('db') or 0)
    return MEMORY_DB if db != MEMORY_DB else MEMORY_DB - 1


def db_client(url, recorder=None):
    """A client of the measurement's database on the server of ``url``
    (``from_url(url, db=...)`` would keep the database of the URL); with
    ``recorder`` (a :class:`RoundTrips`), its round trips are counted."""
    return counted_client(recorder, url, db=memory_db(url))


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


def used_memory(meter, attempts=40, pause=0.1):
    """``used_memory`` less the buffers of the clients connected
    (``mem_clients_normal``: not what the keys take, and it moves with the
    replies the meter reads), once two readings in a row agree: the server
    rehashes its dictionaries and trims client buffers in its cron (10
    times a second by default, hence the pause)."""
    last = None
    for _ in range(attempts):
        info = meter.info('memory')
        value = int(info['used_memory']) - int(
            info.get('mem_clients_normal', 0)
        )
        if value == last:
            return value
        last = value
        time.sleep(pause)
    return last


def user_ids(start, count, prefix=MEMORY_PREFIX):
    return [f'{prefix}{n:06d}' for n in range(start, start + count)]


def anchor_sessions(app, userids):
    """``(session id, payload)`` of an anchor session per user (``None``:
    an anonymous session, without ``user``), as ``pyramid_session_redis``
    would store them (nothing is written)."""
    from pyramid_session_redis.util import _generate_session_id

    for userid in userids:
        session = blank_request(app).session_multi['r']
        fill_anonymous(session)
        if userid is not None:
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


def delete_anchor(client, sids):
    """What ``pyramid_session_redis`` does at a logout (``invalidate()``):
    delete the session's key."""
    for chunk in _chunks(sids):
        client.delete(*chunk)


def login_suite(app, userids):
    """Log each user in on a new session of the suite ``users``
    application: the login script writes the session now; return the
    session ids and the commands that write the rest (what the request
    changed after the login)."""
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


def anonymous_suite(app, count):
    """``count`` new anonymous sessions of the suite ``users`` application's
    namespace: return their ids and the commands that create them."""
    tracker = tracker_of(app)
    sids, commands = [], []
    for _ in range(count):
        session = tracker.session(blank_request(app))
        fill_anonymous(session)
        commands.extend(session.flush_commands(True))
        sids.append(session.session_id)
    return sids, commands


def write_suite(client, commands):
    from pyramid_session_suite.redis._persist import run_commands

    for chunk in _chunks(commands):
        run_commands(client, chunk)


def _chunks(items):
    items = iter(items)
    while chunk := list(itertools.islice(items, CHUNK)):
        yield chunk


@contextlib.contextmanager
def unlimited(app):
    """The policy's login limit of the suite ``app`` lifted: a login ends
    no other session of its user."""
    tracker = tracker_of(app)
    saved = tracker.max_sessions
    tracker.max_sessions = 0
    try:
        yield tracker
    finally:
        tracker.max_sessions = saved


def survey(client, session_prefix=b''):
    """Every key of ``client``'s database, by kind: ``{kind:
    KeyKind}``."""
    kinds = {}
    keys = list(client.scan_iter(count=1000))
    for chunk in _chunks(keys):
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.type(key)
            pipe.memory_usage(key, samples=0)
            pipe.getrange(key, 0, 0)
            pipe.strlen(key)
        replies = pipe.execute(raise_on_error=False)
        for n, key in enumerate(chunk):
            kind_of, usage, first, length = replies[4 * n : 4 * n + 4]
            string = kind_of == b'string'
            if string and first == b'\x00':
                kind = 'ended'
            elif string and key.startswith(session_prefix):
                kind = 'session'
            elif kind_of == b'zset' and key.endswith(b':i'):
                kind = 'index'
            else:
                kind = 'other'
            found = kinds.setdefault(kind, KeyKind(kind))
            found.keys += 1
            found.usage += int(usage or 0)
            if string:
                found.value = (found.value or 0) + int(length)
    return {kind: kinds[kind] for kind in KINDS if kind in kinds}


def _anchor(measurement, app, writer, userids, anonymous):
    """Store the anchor's sessions of ``measurement``."""
    ids = [None] * len(userids) if anonymous else userids
    sids = write_anchor(writer, list(anchor_sessions(app, ids)))
    if measurement == ENDED:
        delete_anchor(writer, sids)


def _suite(measurement, app, writer, userids, anonymous):
    """Store the suite's sessions of ``measurement``."""
    if anonymous:
        _, commands = anonymous_suite(app, len(userids))
        write_suite(writer, commands)
        return
    if measurement == TWO_PER_USER:
        with unlimited(app):
            # every user's first login, then every user's second
            _, commands = login_suite(app, list(dict.fromkeys(userids)) * 2)
    else:
        _, commands = login_suite(app, userids)
    write_suite(writer, commands)
    if measurement == ENDED:
        tracker = tracker_of(app)
        for userid in dict.fromkeys(userids):
            tracker.revoke_all(None, userid)


STORE = {'anchor': _anchor, 'suite': _suite}


def expected_kinds(measurement, stack, sessions, users):
    """``{kind: keys}`` a measurement must leave."""
    if measurement == ENDED:
        return {'ended': sessions} if stack == 'suite' else {}
    if stack == 'suite' and measurement == TWO_PER_USER:
        return {'session': sessions, 'index': users}
    return {'session': sessions}


def measure(url, count=DEFAULT_SESSIONS, say=None):
    """Run every measurement (:data:`MEASUREMENTS`) on ``count`` sessions
    per stack; return their :class:`MemoryRow` s, anchor then suite."""
    db = memory_db(url)
    check_memory_db(url)
    meter = db_client(url)
    writer = db_client(url)
    rows = []
    try:
        apps = {stack: build(stack, writer, 'users') for stack in STACKS}
        prefix = tracker_of(apps['suite']).factory.key_prefix.encode()
        for stack, app in apps.items():
            # scripts loaded, connections open
            for measurement in MEASUREMENTS:
                STORE[stack](
                    measurement,
                    app,
                    writer,
                    user_ids(0, WARM_UP, 'warm'),
                    measurement == ANONYMOUS,
                )
                meter.flushdb(asynchronous=False)
        for measurement in MEASUREMENTS:
            anonymous = measurement == ANONYMOUS
            if measurement == TWO_PER_USER:
                users = max(1, count // 2)
                userids = [u for u in user_ids(0, users) for _ in (1, 2)]
            else:
                userids = user_ids(0, count)
            sessions = len(userids)
            users = None if anonymous else len(set(userids))
            for stack in STACKS:
                writer.connection_pool.disconnect()
                before = used_memory(meter)
                STORE[stack](
                    measurement, apps[stack], writer, userids, anonymous
                )
                writer.connection_pool.disconnect()
                after = used_memory(meter)
                kinds = survey(meter, prefix if stack == 'suite' else b'')
                row = MemoryRow(
                    measurement=measurement,
                    stack=stack,
                    db=db,
                    sessions=sessions,
                    users=users,
                    keys=meter.dbsize(),
                    used=after - before,
                    kinds=kinds,
                )
                found = {kind: k.keys for kind, k in kinds.items()}
                expected = expected_kinds(measurement, stack, sessions, users)
                if found != expected:
                    raise AssertionError(
                        f'memory/{measurement}/{stack}: keys {found}, '
                        f'expected {expected}'
                    )
                rows.append(row)
                meter.flushdb(asynchronous=False)
                if say is not None:
                    say(
                        f'memory   {measurement:<12} {stack:<6} '
                        f'{row.per_session():,.0f} bytes per session'
                    )
    finally:
        meter.flushdb(asynchronous=False)
        close(writer)
        close(meter)
    return rows


def login_cost(url, sizes=LOGIN_SIZES, logins=LOGINS, say=None):
    """For each ``n`` of ``sizes``: ``logins`` users, each given ``n - 1``
    sessions (:func:`.workloads.add_sessions`), each logs in once more
    (:func:`pyramid_session_suite.login` on a new session of the suite
    ``users`` application, its login limit lifted, then the session
    written). Return a :class:`LoginCost` per size."""
    from pyramid_session_suite import login
    from pyramid_session_suite.redis._persist import run_commands

    check_memory_db(url)
    recorder = RoundTrips(active=False)
    meter = db_client(url)
    writer = db_client(url, recorder)
    costs = []
    try:
        app = build('suite', writer, 'users')
        with unlimited(app) as tracker:
            # scripts loaded
            add_sessions(app, 'warm', 2)
            _, commands = login_suite(app, ['warm'])
            write_suite(writer, commands)
            meter.flushdb(asynchronous=False)
            for size in sizes:
                userids = user_ids(0, logins, f'cost{size}-')
                for userid in userids:
                    add_sessions(app, userid, size - 1)
                prepared = []
                for userid in userids:
                    request = blank_request(app)
                    session = tracker.session(request)
                    fill_anonymous(session)
                    prepared.append((userid, request, session))
                writer.ping()
                counted = []
                seconds = 0.0
                usec = calls = 0
                for userid, request, session in prepared:
                    # the login script's time alone: the session's own
                    # write is an EVALSHA too
                    before = evalsha_stats(meter)
                    recorder.start()
                    start = time.perf_counter()
                    login(request, userid)
                    seconds += time.perf_counter() - start
                    after = evalsha_stats(meter)
                    start = time.perf_counter()
                    session['user'] = userid
                    run_commands(writer, session.flush_commands(True))
                    seconds += time.perf_counter() - start
                    counted.append(recorder.stop())
                    usec += after[0] - before[0]
                    calls += after[1] - before[1]
                index = tracker.index.index_key(userids[0])
                cost = LoginCost(
                    sessions=size,
                    logins=logins,
                    server_usec=usec,
                    script_calls=calls,
                    counted=counted,
                    seconds=seconds,
                    index=bool(meter.exists(index)),
                )
                live = tracker.index.count(userids[0])
                if live != size or cost.script_calls < logins:
                    raise AssertionError(
                        f'login cost/{size}: {live} sessions, '
                        f'{cost.script_calls} script calls'
                    )
                costs.append(cost)
                meter.flushdb(asynchronous=False)
                if say is not None:
                    say(
                        f'login    {size:>6,} sessions  '
                        f'{cost.server_micros:,.1f} us Redis per login'
                    )
    finally:
        recorder.stop()
        meter.flushdb(asynchronous=False)
        close(writer)
        close(meter)
    return costs
