"""The HTTP layer: the same stacks behind a real WSGI server on loopback.

One waitress server per stack (its default 4 threads), each in a
background thread of this process on a free port. The load generator is
Debian's ``wrk`` when it is installed (``make bench`` installs it): a
process of its own, in C, so the servers do not share their GIL (nor much
of the CPU) with their client; ``clients`` persistent HTTP/1.1
connections on :data:`WRK_THREADS` threads, for :data:`WRK_SECONDS` per
batch. Without it (and in the smoke run, which sends a fixed number of
requests), a bounded load generator in Python threads of this process —
``clients`` persistent connections (``http.client``) — sends a fixed
number of requests per batch or until a time limit, whichever comes first:
then the absolute rates are those of the whole setup, and only the ratios
between stacks are fair. The cells are interleaved like the in-process
ones: each round runs every scenario on every stack, in a rotating stack
order.

waitress warns ("Task queue depth is N") whenever a request waits for a
thread, which with more clients than threads is every moment: its
``waitress.queue`` logger is raised to ``ERROR`` for the bench's servers.
"""

import collections
from dataclasses import dataclass, field
import http.client
import itertools
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
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

#: the load generators: ``wrk`` (a process of its own), ``python``
#: (threads of this process); ``auto``: wrk if installed, but for the
#: smoke run
CLIENTS_KINDS = ('auto', 'wrk', 'python')
#: wrk: threads, rounds, and seconds per batch (whole seconds: wrk takes
#: no less)
WRK_THREADS = 2
WRK_ROUNDS = 5
WRK_SECONDS = 1
#: wrk's script: counts the answers by status (wrk itself counts only
#: those above 399) and prints the summary on one line
WRK_SCRIPT = """\
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  other = 0
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local ok, other = 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("ok")
    other = other + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "bench-wrk %d %d %d %d %d %d %d %d %.0f %.0f %.0f\\n",
    summary.duration, summary.requests, ok, other,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99)))
end
"""


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
    #: per batch, ``{q: latency in seconds}`` of the percentiles of
    #: :data:`PERCENTILES` (wrk reports those, not every latency)
    percentiles: list = field(default_factory=list)

    @property
    def rate(self):
        return statistics.median(self.rates)

    @property
    def requests(self):
        return sum(self.statuses.values())

    def percentile(self, q):
        """The ``q``-th percentile latency, in milliseconds (with wrk: the
        median over the batches of each batch's)."""
        if not self.latencies and self.percentiles:
            return (
                statistics.median(found[q] for found in self.percentiles) * 1e3
            )
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


#: the latency percentiles wrk reports
PERCENTILES = (50, 90, 99)


@dataclass
class HttpResults:
    clients: int
    rounds: int
    #: requests per batch at most (``None``: no limit but the time)
    requests: int | None
    seconds: float
    scenarios: tuple
    cells: dict
    #: what sent the requests: ``wrk …`` or ``python``
    generator: str = 'python'
    #: wrk's threads
    threads: int = 0

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

        quiet_waitress()
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


def quiet_waitress():
    """No "Task queue depth" warning: with more clients than threads,
    requests wait for a thread all the time."""
    logging.getLogger('waitress.queue').setLevel(logging.ERROR)


def find_wrk():
    """The path of ``wrk``, or ``None``."""
    return shutil.which('wrk')


def wrk_version(path):
    """``wrk debian/4.1.0-3+b2``."""
    found = subprocess.run(
        [path, '-v'], capture_output=True, text=True, check=False
    )
    words = (found.stdout or found.stderr).split()
    return ' '.join(words[:2]) or 'wrk'


def wrk_load(wrk, script, port, path, cookie, seconds, clients, threads):
    """Load ``GET path`` (with ``cookie``) with ``wrk`` for ``seconds``
    (whole) over ``clients`` connections on ``threads`` threads; return
    the elapsed seconds, the requests answered, ``{q: seconds}`` of the
    latency percentiles and the statuses (``0``: socket errors)."""
    command = [
        wrk,
        f'-t{min(threads, clients)}',
        f'-c{clients}',
        f'-d{max(1, round(seconds))}s',
        '--timeout',
        '30s',
        '-s',
        script,
        '-H',
        f'User-Agent: {USER_AGENT}',
    ]
    if cookie:
        command += ['-H', f'Cookie: {cookie}']
    command.append(f'http://127.0.0.1:{port}{path}')
    found = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=120
    )
    lines = [
        line.split()[1:]
        for line in found.stdout.splitlines()
        if line.startswith('bench-wrk ')
    ]
    if found.returncode or not lines:
        raise RuntimeError(
            f'{" ".join(command)} failed ({found.returncode}): '
            f'{found.stdout}{found.stderr}'
        )
    duration, requests, ok, other, *errors = map(int, lines[-1][:8])
    p50, p90, p99 = (float(value) / 1e6 for value in lines[-1][8:])
    statuses = collections.Counter()
    statuses[200] += ok
    if other:
        statuses['other'] += other
    if sum(errors):
        statuses[0] += sum(errors)
    percentiles = dict(zip(PERCENTILES, (p50, p90, p99), strict=True))
    return duration / 1e6, requests, percentiles, statuses


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


def run_http(apps, scenarios, cookies, bar, smoke=False, client='auto'):
    """Serve ``apps`` (``{stack: app}``) over HTTP and load them with the
    request of each scenario named in :data:`HTTP_SCENARIOS`; ``cookies``
    maps ``(scenario name, stack)`` to the ``Cookie`` header sent.
    ``client`` is the load generator (see :data:`CLIENTS_KINDS`). Return
    :class:`HttpResults`."""
    from .runner import rotated

    if client not in CLIENTS_KINDS:
        raise ValueError(f'unknown load generator {client!r}')
    wrk = None
    if client != 'python' and not (client == 'auto' and smoke):
        wrk = find_wrk()
        if wrk is None and client == 'wrk':
            raise RuntimeError('wrk is not installed')
    clients = SMOKE_CLIENTS if smoke else CLIENTS
    rounds = SMOKE_ROUNDS if smoke else ROUNDS
    count = SMOKE_REQUESTS if smoke else REQUESTS
    seconds = SMOKE_SECONDS if smoke else SECONDS
    warm = SMOKE_WARM_UP if smoke else WARM_UP
    if wrk is not None:
        rounds = SMOKE_ROUNDS if smoke else WRK_ROUNDS
        count = None
        seconds = WRK_SECONDS
    chosen = [s for s in scenarios if s.name in HTTP_SCENARIOS]
    stacks = {
        scenario.name: [stack for stack in scenario.stacks if stack in apps]
        for scenario in chosen
    }
    servers = {}
    cells = {}
    script = None
    bar.add(rounds * sum(map(len, stacks.values())))
    try:
        if wrk is not None:
            handle, script = tempfile.mkstemp(prefix='bench-', suffix='.lua')
            with os.fdopen(handle, 'w') as file:
                file.write(WRK_SCRIPT)
        for stack, app in apps.items():
            servers[stack] = Server(app)
        for scenario in chosen:
            for stack in stacks[scenario.name]:
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
                for stack in rotated(stacks[scenario.name], rep + index):
                    cell = cells[scenario.name, stack]
                    bar.step(
                        f'http {rep + 1}/{rounds}  {scenario.name}/{stack}'
                    )
                    port = servers[stack].port
                    cookie = cookies[scenario.name, stack]
                    if wrk is not None:
                        elapsed, answered, percentiles, statuses = wrk_load(
                            wrk,
                            script,
                            port,
                            scenario.path,
                            cookie,
                            seconds,
                            clients,
                            WRK_THREADS,
                        )
                        cell.rates.append(answered / elapsed)
                        cell.percentiles.append(percentiles)
                    else:
                        elapsed, latencies, statuses = load(
                            port,
                            scenario.path,
                            cookie,
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
                            for st in stacks[scenario.name]
                        ),
                        timing=True,
                    )
    finally:
        for server in servers.values():
            server.close()
        if script is not None:
            os.unlink(script)
    return HttpResults(
        clients=clients,
        rounds=rounds,
        requests=count,
        seconds=seconds,
        scenarios=tuple(s.name for s in chosen),
        cells=cells,
        generator='python' if wrk is None else wrk_version(wrk),
        threads=0 if wrk is None else min(WRK_THREADS, clients),
    )
