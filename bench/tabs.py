"""The tabs scenario: overlapping writers on one session, as a browser
with several tabs (or XHRs) makes them.

For each stack with sessions, over HTTP (a waitress server on loopback
with one thread per client; the stack's Redis client counts its round
trips):

- ``tabs set``: a session is created (``GET /write``), then
  :data:`WRITERS` requests, :data:`CLIENTS` at a time, each load it,
  pause :data:`PAUSE` seconds (so that they overlap) and set a key of
  their own, ``k<i>`` = ``i``. The session is then read back: a key whose
  request was answered with 200 but that is not stored with its value is
  a lost update.
- ``tabs delete``: a session is created and given :data:`DELETERS` keys
  (one request), then as many overlapping requests each delete their own
  key, after the same pause: a key a request answered with 200 deleted
  but that is still stored is an undone deletion.

A store where the last writer wins the whole session loses most of them;
one that merges the changes of each request key by key loses none. The
rate is that of the overlapping requests, bound by the pause (at most
``CLIENTS / PAUSE`` per second).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import json
import time
import urllib.parse

from .counting import command_names
from .loopback import Server, get

#: the stacks with sessions
STACKS = ('anchor', 'suite')

#: the rounds, in order
KINDS = ('set', 'delete')

#: requests of the ``set`` round, and of the ``delete`` round
WRITERS = 40
DELETERS = 20
#: requests in flight at a time (and server threads)
CLIENTS = 8
#: seconds each request pauses with the session loaded
PAUSE = 0.05

#: the commands of a new Redis connection's handshake (the pool grows
#: while the requests overlap): not a request's
HANDSHAKE = frozenset({'HELLO', 'CLIENT', 'AUTH', 'SELECT'})


@dataclass
class TabsRound:
    """One round of overlapping requests of one session on one stack."""

    #: ``set`` or ``delete``
    kind: str
    stack: str
    #: the status of each request (``0``: no answer)
    statuses: list
    #: the keys whose request was answered with 200, but whose change is
    #: not in the session read back afterwards
    lost: list
    #: elapsed seconds of the overlapping requests
    seconds: float
    #: the Redis round trips of the overlapping requests (lists of
    #: commands, each a list of arguments)
    trips: list = field(default_factory=list)

    @property
    def name(self):
        return f'tabs {self.kind}'

    @property
    def requests(self):
        return len(self.statuses)

    @property
    def answered(self):
        """Requests answered with 200."""
        return self.statuses.count(200)

    @property
    def rate(self):
        """Requests per second."""
        return self.requests / self.seconds

    @property
    def round_trips(self):
        """Redis round trips per request."""
        return len(self.trips) / self.requests

    @property
    def commands(self):
        """Redis commands per request."""
        return sum(map(len, self.trips)) / self.requests


@dataclass
class TabsResults:
    #: requests in flight at a time
    clients: int
    #: seconds each request pauses with the session loaded
    pause: float
    #: ``{(kind, stack): TabsRound}``
    rounds: dict

    def round(self, kind, stack):
        return self.rounds[kind, stack]

    def has(self, kind, stack):
        return (kind, stack) in self.rounds


def tabs_path(keys, value=None, delete=False, pause=0):
    """The path of ``GET /tabs`` setting ``keys`` to ``value`` (or deleting
    them) after ``pause`` seconds; without keys, the session read back."""
    query = [('key', key) for key in keys]
    if value is not None:
        query.append(('value', value))
    if delete:
        query.append(('delete', 1))
    if pause:
        query.append(('pause', pause))
    if not query:
        return '/tabs'
    return '/tabs?' + urllib.parse.urlencode(query)


def stored(port, cookie):
    """The session of ``cookie``, as the stack reads it back."""
    status, _, body = get(port, tabs_path(()), cookie)
    if status != 200:
        raise RuntimeError(f'reading the session back: {status} {body!r}')
    return json.loads(body)


def new_session(port, keys=()):
    """Create a session of ``r`` (``GET /write``) holding ``keys`` (each
    ``1``); return its ``Cookie`` header."""
    status, cookies, body = get(port, '/write')
    jar = [c.split(';', 1)[0] for c in cookies or () if c.startswith('r=')]
    if status != 200 or not jar:
        raise RuntimeError(f'no session created: {status} {body!r}')
    cookie = jar[0]
    if keys:
        get(port, tabs_path(keys, value=1), cookie)
        missing = set(keys) - set(stored(port, cookie))
        if missing:
            raise RuntimeError(f'keys not stored: {sorted(missing)}')
    return cookie


def overlap(port, paths, cookie, clients):
    """Send ``GET`` of each of ``paths`` with ``cookie``, ``clients`` at a
    time; return the elapsed seconds and the status of each request
    (``0``: no answer)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda path: get(port, path, cookie), paths))
    return time.perf_counter() - start, [status for status, *_ in answers]


def request_trips(trips):
    """``trips`` without those of a new connection's handshake."""
    return [
        trip for trip in trips if not set(command_names(trip)) <= HANDSHAKE
    ]


def one_round(kind, stack, port, recorder, count, clients, pause):
    """A round of ``count`` overlapping requests of ``kind`` on one new
    session of the server at ``port``; return its :class:`TabsRound`."""
    delete = kind == 'delete'
    keys = [f'k{i}' for i in range(count)]
    cookie = new_session(port, keys if delete else ())
    paths = [
        tabs_path([key], value=i, delete=delete, pause=pause)
        for i, key in enumerate(keys)
    ]
    recorder.start()
    try:
        seconds, statuses = overlap(port, paths, cookie, clients)
    finally:
        trips = recorder.stop()
    final = stored(port, cookie)
    answered = [
        (i, key)
        for i, (key, status) in enumerate(zip(keys, statuses, strict=True))
        if status == 200
    ]
    if delete:
        lost = [key for _, key in answered if key in final]
    else:
        lost = [key for i, key in answered if final.get(key) != i]
    return TabsRound(
        kind, stack, statuses, lost, seconds, request_trips(trips)
    )


def run_tabs(
    apps,
    recorder,
    say=None,
    writers=WRITERS,
    deleters=DELETERS,
    clients=CLIENTS,
    pause=PAUSE,
):
    """Serve ``apps`` (``{stack: app}``, whose Redis clients ``recorder``
    made) over HTTP and run each round on each; return
    :class:`TabsResults`. ``say(line)`` tells the progress."""
    counts = {'set': writers, 'delete': deleters}
    if min(writers, deleters, clients) < 1 or pause < 0:
        raise ValueError('counts must be positive, the pause not negative')
    servers = {}
    rounds = {}
    try:
        for stack, app in apps.items():
            servers[stack] = Server(app, threads=clients)
        for kind in KINDS:
            for stack, server in servers.items():
                rounds[kind, stack] = one_round(
                    kind,
                    stack,
                    server.port,
                    recorder,
                    counts[kind],
                    clients,
                    pause,
                )
            if say is not None:
                say(
                    f'tabs {kind:<6}  '
                    + '  '.join(
                        f'{stack} {len(r.lost)}/{r.requests} lost'
                        for (k, stack), r in rounds.items()
                        if k == kind
                    )
                )
    finally:
        for server in servers.values():
            server.close()
    return TabsResults(clients=clients, pause=pause, rounds=rounds)
