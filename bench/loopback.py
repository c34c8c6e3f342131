"""The HTTP layer: the same stacks behind a real WSGI server on loopback.

One waitress server per stack (its default 4 threads), each in a
background thread of this process on a free port; a bounded load
generator in Python threads — ``clients`` persistent HTTP/1.1 connections
(``http.client``) — sends the requests of a scenario, a fixed number per
batch or until a time limit, whichever comes first. The cells are
interleaved like the in-process ones: each round runs every scenario on
every stack, in a rotating stack order. Everything (servers, clients,
Redis client) shares one process and its GIL, and on 2 cores the Python
load generator takes a large share of the CPU: the absolute rates are
those of this whole setup, the ratios between stacks are the fair part.
"""

import collections
from dataclasses import dataclass, field
import http.client
import itertools
import statistics
import threading
import time

from pyramid_session_suite.testing import free_port

from .driver import USER_AGENT

#: the scenarios served over HTTP
HTTP_SCENARIOS = ('untouched', 'read', 'write')

CLIENTS = 16
ROUNDS = 3
#: per batch: at most this many requests, and at most this long
REQUESTS = 800
SECONDS = 1.0
#: untimed requests per cell, per client, before the rounds
WARM_UP = 5

SMOKE_CLIENTS = 4
SMOKE_ROUNDS = 1
SMOKE_REQUESTS = 32
#: a safety limit only: a smoke batch always sends all its requests
SMOKE_SECONDS = 30.0
SMOKE_WARM_UP = 1


@dataclass
class HttpCell:
    scenario: str
    stack: str
    #: per batch: requests answered / elapsed seconds
    rates: list = field(default_factory=list)
    #: every timed request's latency, in seconds
    latencies: list = field(default_factory=list)
    #: status codes (``0``: no answer) of the timed requests
    statuses: collections.Counter = field(default_factory=collections.Counter)

    @property
    def rate(self):
        return statistics.median(self.rates)

    @property
    def requests(self):
        return sum(self.statuses.values())

    def percentile(self, q):
        """The ``q``-th percentile latency, in milliseconds."""
        ordered = sorted(self.latencies)
        index = min(
            len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1)
        )
        return ordered[index] * 1e3

    @property
    def p50(self):
        return self.percentile(50)

    @property
    def p90(self):
        return self.percentile(90)

    @property
    def p99(self):
        return self.percentile(99)


@dataclass
class HttpResults:
    clients: int
    rounds: int
    requests: int
    seconds: float
    scenarios: tuple
    cells: dict

    def ratio(self, scenario, stack, base):
        """Median over the rounds of the per-round rate ratio."""
        rates = self.cells[scenario, stack].rates
        base_rates = self.cells[scenario, base].rates
        return statistics.median(
            a / b for a, b in zip(rates, base_rates, strict=True)
        )


class Server:
    """A waitress server of ``app`` on a free loopback port, in a
    background thread, with ``threads`` worker threads."""

    def __init__(self, app, threads=4):
        from webtest.http import StopableWSGIServer

        self.port = free_port()
        self.server = StopableWSGIServer.create(
            app,
            host='127.0.0.1',
            port=self.port,
            expose_tracebacks=False,
            threads=threads,
        )
        if not self.server.wait():
            raise RuntimeError(f'no server on port {self.port}')

    def close(self):
        self.server.shutdown()


def load(port, path, cookie, count, seconds, clients):
    """Send ``GET path`` (with ``cookie``) ``count`` times over ``clients``
    persistent connections, stopping after ``seconds``; return the elapsed
    seconds, the latencies and the statuses."""
    tickets = itertools.count()
    latencies = []
    statuses = collections.Counter()
    lock = threading.Lock()
    headers = {'User-Agent': USER_AGENT}
    if cookie:
        headers['Cookie'] = cookie
    start = time.perf_counter()
    deadline = start + seconds

    def client():
        mine, codes = [], collections.Counter()
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        try:
            while next(tickets) < count and time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    connection.request('GET', path, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    codes[response.status] += 1
                except (OSError, http.client.HTTPException):
                    codes[0] += 1
                    connection.close()
                    continue
                mine.append(time.perf_counter() - began)
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)
                statuses.update(codes)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, latencies, statuses


def run_http(apps, scenarios, cookies, bar, smoke=False):
    """Serve ``apps`` (``{stack: app}``) over HTTP and load them with the
    request of each scenario named in :data:`HTTP_SCENARIOS`; ``cookies``
    maps ``(scenario name, stack)`` to the ``Cookie`` header sent. Return
    :class:`HttpResults`."""
    from .runner import rotated

    clients = SMOKE_CLIENTS if smoke else CLIENTS
    rounds = SMOKE_ROUNDS if smoke else ROUNDS
    count = SMOKE_REQUESTS if smoke else REQUESTS
    seconds = SMOKE_SECONDS if smoke else SECONDS
    warm = SMOKE_WARM_UP if smoke else WARM_UP
    chosen = [s for s in scenarios if s.name in HTTP_SCENARIOS]
    servers = {}
    cells = {}
    bar.add(rounds * sum(len(s.stacks) for s in chosen))
    try:
        for stack, app in apps.items():
            servers[stack] = Server(app)
        for scenario in chosen:
            for stack in scenario.stacks:
                cells[scenario.name, stack] = HttpCell(scenario.name, stack)
                load(
                    servers[stack].port,
                    scenario.path,
                    cookies[scenario.name, stack],
                    warm * clients,
                    seconds,
                    clients,
                )
        for rep in range(rounds):
            for index, scenario in enumerate(chosen):
                for stack in rotated(scenario.stacks, rep + index):
                    cell = cells[scenario.name, stack]
                    bar.step(
                        f'http {rep + 1}/{rounds}  {scenario.name}/{stack}'
                    )
                    elapsed, latencies, statuses = load(
                        servers[stack].port,
                        scenario.path,
                        cookies[scenario.name, stack],
                        count,
                        seconds,
                        clients,
                    )
                    cell.rates.append(sum(statuses.values()) / elapsed)
                    cell.latencies.extend(latencies)
                    cell.statuses.update(statuses)
                if not bar.tty:
                    bar.note(
                        f'http {rep + 1}/{rounds}  {scenario.name} '
                        + '  '.join(
                            f'{st} {cells[scenario.name, st].rates[-1]:,.0f}/s'
                            for st in scenario.stacks
                        ),
                        timing=True,
                    )
    finally:
        for server in servers.values():
            server.close()
    return HttpResults(
        clients=clients,
        rounds=rounds,
        requests=count,
        seconds=seconds,
        scenarios=tuple(s.name for s in chosen),
        cells=cells,
    )
