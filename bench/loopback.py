"""The HTTP layer: the same stacks behind a real WSGI server on loopback,
loaded by Debian's ``wrk`` (``make bench`` installs it).

One waitress server per stack (its default 4 threads), each in a
background thread of this process on a free port. ``wrk`` runs in a
process of its own, in C, so the servers do not share their GIL (nor much
of the CPU) with their client: ``clients`` persistent HTTP/1.1 connections
on :data:`WRK_THREADS` threads, for :data:`SECONDS` per batch. The cells
are interleaved like the in-process ones: each round runs every scenario
on every stack, in a rotating stack order. Without ``wrk`` there is no
HTTP layer.

waitress warns ("Task queue depth is N") whenever a request waits for a
thread, which with more clients than threads is every moment: its
``waitress.queue`` logger is raised to ``ERROR`` for the bench's servers.
"""

import collections
from dataclasses import dataclass, field
import http.client
import logging
import os
import shutil
import statistics
import subprocess
import tempfile

from pyramid_session_suite.testing import free_port

from .driver import USER_AGENT, paired_ratio, rotated

#: the scenarios served over HTTP
HTTP_SCENARIOS = ('untouched', 'read', 'write')

#: connections, rounds, and untimed requests per cell before the rounds
CLIENTS = 16
ROUNDS = 5
WARM_UP = 50
SMOKE_CLIENTS = 4
SMOKE_ROUNDS = 1
SMOKE_WARM_UP = 2
#: wrk's threads, and seconds per batch (whole seconds: wrk takes no less)
WRK_THREADS = 2
SECONDS = 1
#: the latency percentiles wrk reports
PERCENTILES = (50, 90, 99)
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
    #: status codes of the timed requests (``0``: socket errors)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    #: per batch, ``{q: latency in seconds}`` of :data:`PERCENTILES`
    percentiles: list = field(default_factory=list)

    @property
    def rate(self):
        return statistics.median(self.rates)

    @property
    def requests(self):
        return sum(self.statuses.values())

    def percentile(self, q):
        """The median over the batches of their ``q``-th percentile
        latency, in milliseconds."""
        return statistics.median(found[q] for found in self.percentiles) * 1e3

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
    seconds: float
    scenarios: tuple
    cells: dict
    #: ``wrk debian/4.1.0-3+b2``
    generator: str
    #: wrk's threads
    threads: int

    def ratio(self, scenario, stack, base):
        """Median over the rounds of the per-round rate ratio."""
        return paired_ratio(
            self.cells[scenario, stack].rates, self.cells[scenario, base].rates
        )


class Server:
    """A waitress server of ``app`` on a free loopback port, in a
    background thread, with ``threads`` worker threads."""

    def __init__(self, app, threads=4):
        from webtest.http import StopableWSGIServer

        # no "Task queue depth" warning: with more clients than threads,
        # requests wait for a thread all the time
        logging.getLogger('waitress.queue').setLevel(logging.ERROR)
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


def get(port, path, cookie=None):
    """``GET path`` (with ``cookie``) on a connection of its own: return
    the status (``0``: no answer), the ``Set-Cookie`` headers and the
    body."""
    headers = {'User-Agent': USER_AGENT}
    if cookie:
        headers['Cookie'] = cookie
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        connection.request('GET', path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return response.status, response.headers.get_all('Set-Cookie'), body
    except (OSError, http.client.HTTPException):
        return 0, None, b''
    finally:
        connection.close()


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


def wrk_load(wrk, script, port, path, cookie, clients):
    """Load ``GET path`` (with ``cookie``) with ``wrk`` for
    :data:`SECONDS` over ``clients`` connections; return the elapsed
    seconds, the requests answered, ``{q: seconds}`` of the latency
    percentiles and the statuses (``0``: socket errors)."""
    command = [
        wrk,
        f'-t{min(WRK_THREADS, clients)}',
        f'-c{clients}',
        f'-d{SECONDS}s',
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
    latencies = (float(value) / 1e6 for value in lines[-1][8:])
    statuses = collections.Counter({200: ok, 'other': other, 0: sum(errors)})
    percentiles = dict(zip(PERCENTILES, latencies, strict=True))
    return duration / 1e6, requests, percentiles, +statuses


def run_http(apps, scenarios, cookies, say, smoke=False):
    """Serve ``apps`` (``{stack: app}``) over HTTP and load them with
    ``wrk`` with the request of each scenario named in
    :data:`HTTP_SCENARIOS`; ``cookies`` maps ``(scenario name, stack)`` to
    the ``Cookie`` header sent; ``say(line, timing)`` tells the progress.
    Return :class:`HttpResults`."""
    wrk = find_wrk()
    if wrk is None:
        raise RuntimeError('wrk is not installed')
    clients = SMOKE_CLIENTS if smoke else CLIENTS
    rounds = SMOKE_ROUNDS if smoke else ROUNDS
    warm = SMOKE_WARM_UP if smoke else WARM_UP
    chosen = [s for s in scenarios if s.name in HTTP_SCENARIOS]
    stacks = {
        scenario.name: [stack for stack in scenario.stacks if stack in apps]
        for scenario in chosen
    }
    servers = {}
    cells = {}
    handle, script = tempfile.mkstemp(prefix='bench-', suffix='.lua')
    with os.fdopen(handle, 'w') as file:
        file.write(WRK_SCRIPT)
    try:
        for stack, app in apps.items():
            servers[stack] = Server(app)
        for scenario in chosen:
            for stack in stacks[scenario.name]:
                cells[scenario.name, stack] = HttpCell(scenario.name, stack)
                for _ in range(warm):
                    port = servers[stack].port
                    get(port, scenario.path, cookies[scenario.name, stack])
        for rep in range(rounds):
            for index, scenario in enumerate(chosen):
                for stack in rotated(stacks[scenario.name], rep + index):
                    cell = cells[scenario.name, stack]
                    elapsed, answered, percentiles, statuses = wrk_load(
                        wrk,
                        script,
                        servers[stack].port,
                        scenario.path,
                        cookies[scenario.name, stack],
                        clients,
                    )
                    cell.rates.append(answered / elapsed)
                    cell.percentiles.append(percentiles)
                    cell.statuses.update(statuses)
                say(
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
        os.unlink(script)
    return HttpResults(
        clients=clients,
        rounds=rounds,
        seconds=SECONDS,
        scenarios=tuple(s.name for s in chosen),
        cells=cells,
        generator=wrk_version(wrk),
        threads=min(WRK_THREADS, clients),
    )
