"""The tabs scenario: overlapping writers on one session, as a browser
with several tabs (or XHRs) makes them.

For each stack with sessions, over HTTP (a waitress server on loopback
with one thread per client; the stack's Redis client counts its round
trips):

- ``tabs set``: a session is created (``GET /write``), then
  :data:`WRITERS` requests, :data:`CLIENTS` at a time on as many
  persistent connections, each load it, pause :data:`PAUSE` seconds (so
  that they overlap) and set a key of their own, ``k<i>`` = ``i``. The
  session is then read back: a key whose request was answered with 200 but
  that is not stored with its value is a lost update.
- ``tabs delete``: a session is created and given :data:`DELETERS` keys
  (one request), then as many overlapping requests each delete their own
  key, after the same pause: a key a request answered with 200 deleted
  but that is still stored is an undone deletion.

A store where the last writer wins the whole session loses most of them;
one that merges the changes of each request key by key loses none. The
rate is that of the overlapping requests, bound by the pause (at most
``CLIENTS / PAUSE`` per second).

``python -m bench.tabs`` runs the scenario alone.
"""

import argparse
from dataclasses import dataclass, field
import http.client
import itertools
import json
import sys
import threading
import time
import urllib.parse

from pyramid_session_suite.testing import RedisServer

from .apps import build
from .counting import RoundTrips, command_names
from .driver import USER_AGENT
from .loopback import Server
from .progress import Progress

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


def _headers(cookie):
    headers = {'User-Agent': USER_AGENT}
    if cookie:
        headers['Cookie'] = cookie
    return headers


def get(port, path, cookie=None):
    """``GET path`` (with ``cookie``) on a connection of its own: return
    the status, the ``Set-Cookie`` headers and the body."""
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        connection.request('GET', path, headers=_headers(cookie))
        response = connection.getresponse()
        body = response.read()
        return response.status, response.headers.get_all('Set-Cookie'), body
    finally:
        connection.close()


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
    time on as many persistent connections; return the elapsed seconds and
    the status of each request (``0``: no answer)."""
    tickets = itertools.count()
    statuses = [0] * len(paths)
    headers = _headers(cookie)

    def client():
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        try:
            while (index := next(tickets)) < len(paths):
                try:
                    connection.request('GET', paths[index], headers=headers)
                    response = connection.getresponse()
                    response.read()
                    statuses[index] = response.status
                except (OSError, http.client.HTTPException):
                    connection.close()
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, statuses


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
    bar,
    writers=WRITERS,
    deleters=DELETERS,
    clients=CLIENTS,
    pause=PAUSE,
):
    """Serve ``apps`` (``{stack: app}``, whose Redis clients ``recorder``
    made) over HTTP and run each round on each; return
    :class:`TabsResults`."""
    counts = {'set': writers, 'delete': deleters}
    if min(writers, deleters, clients) < 1 or pause < 0:
        raise ValueError('counts must be positive, the pause not negative')
    servers = {}
    rounds = {}
    bar.add(len(KINDS) * len(apps))
    try:
        for stack, app in apps.items():
            servers[stack] = Server(app, threads=clients)
        for kind in KINDS:
            for stack, server in servers.items():
                bar.step(f'tabs {kind}/{stack}')
                rounds[kind, stack] = one_round(
                    kind,
                    stack,
                    server.port,
                    recorder,
                    counts[kind],
                    clients,
                    pause,
                )
            bar.note(
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


def main(argv=None):
    """Run the tabs scenario alone; print its report; return 0."""
    from .report import tabs_text

    parser = argparse.ArgumentParser(
        prog='python -m bench.tabs', description=__doc__.split('\n')[0]
    )
    parser.add_argument('--writers', type=int, default=WRITERS)
    parser.add_argument('--deleters', type=int, default=DELETERS)
    parser.add_argument('--clients', type=int, default=CLIENTS)
    parser.add_argument('--pause', type=float, default=PAUSE)
    parser.add_argument(
        '--redis-url',
        metavar='URL',
        help='use this Redis server (default: a private one)',
    )
    args = parser.parse_args(argv)
    recorder = RoundTrips(active=False)
    with RedisServer(url=args.redis_url) as server:
        clients = {stack: recorder.client(server.url) for stack in STACKS}
        try:
            apps = {stack: build(stack, clients[stack]) for stack in STACKS}
            tabs = run_tabs(
                apps,
                recorder,
                Progress(sys.stderr),
                writers=args.writers,
                deleters=args.deleters,
                clients=args.clients,
                pause=args.pause,
            )
        finally:
            for client in clients.values():
                client.close()
                client.connection_pool.disconnect()
    print(tabs_text(tabs), end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
