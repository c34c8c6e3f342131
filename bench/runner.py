"""One benchmark run: every scenario on every stack, in one process.

Per cell (scenario x stack): a warm-up, a counted pass (round trips and
commands per request, checked responses), then ``repeat`` timed batches of
``iterations`` requests. The batches are interleaved: each repetition runs
every scenario on every stack, in a stack order that rotates, so that
machine noise falls on all stacks alike. The rate of a cell is the median
of its batches; the ratio of two stacks is the median of their ratios in
each repetition.
"""

from dataclasses import dataclass, field
import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import time
import redis

from pyramid_session_suite.testing import RedisServer

from .apps import STACKS, build
from .counting import RoundTrips, command_names, warm_up
from .driver import call, time_requests
from .scenarios import (
    SCENARIOS,
    check_response,
    environ_for,
    returning_visitor,
)

#: requests per timed batch, and batches per cell: many short batches, so
#: that slow drifts of the machine (other tenants of a virtual machine,
#: frequency changes) fall on every stack alike. Sized for a run of about a
#: minute on 2 cores.
DEFAULT_ITERATIONS = 500
DEFAULT_REPEAT = 20
#: untimed requests per cell before anything is counted or timed
WARM_UP = 200
#: requests whose round trips are counted, per cell
COUNTED = 20

SMOKE_ITERATIONS = 10
SMOKE_REPEAT = 1
SMOKE_WARM_UP = 5
SMOKE_COUNTED = 5


@dataclass
class Cell:
    """The measurements of one scenario on one stack."""

    scenario: str
    stack: str
    iterations: int
    #: elapsed seconds of each timed batch
    batches: list = field(default_factory=list)
    #: per counted request, its round trips (lists of commands)
    counted: list = field(default_factory=list)

    @property
    def rates(self):
        return [self.iterations / seconds for seconds in self.batches]

    @property
    def rate(self):
        """Requests per second: the median of the batches."""
        return statistics.median(self.rates)

    @property
    def spread(self):
        """The interquartile range of the batch rates over their median."""
        rates = self.rates
        if len(rates) < 2:
            return 0.0
        low, _, high = statistics.quantiles(rates, n=4)
        return (high - low) / statistics.median(rates)

    @property
    def round_trips(self):
        """Round trips per request."""
        return sum(map(len, self.counted)) / len(self.counted)

    @property
    def commands(self):
        """Redis commands per request."""
        total = sum(len(trip) for trips in self.counted for trip in trips)
        return total / len(self.counted)

    @property
    def sequences(self):
        """The distinct command sequences of the counted requests: a
        tuple of round trips, each a tuple of command names."""
        found = []
        for trips in self.counted:
            sequence = tuple(tuple(command_names(trip)) for trip in trips)
            if sequence not in found:
                found.append(sequence)
        return found


@dataclass
class Results:
    iterations: int
    repeat: int
    smoke: bool
    cells: dict
    started: datetime.datetime
    seconds: float
    environment: dict

    def cell(self, scenario, stack):
        return self.cells[scenario, stack]

    def ratio(self, scenario, stack, base):
        """How many times faster ``stack`` is than ``base`` in
        ``scenario``: the median, over the repetitions, of the ratio of
        their rates in the same repetition. The batches of one repetition
        run back to back, so a slow spell of the machine cancels out."""
        rates = self.cell(scenario, stack).rates
        base_rates = self.cell(scenario, base).rates
        return statistics.median(
            rate / base_rate
            for rate, base_rate in zip(rates, base_rates, strict=True)
        )


def _per_stack(cells, scenario, show):
    return '  '.join(
        f'{stack} {show(cells[scenario.name, stack])}' for stack in STACKS
    )


def _round_trips(cell):
    return f'{cell.round_trips:g} rt'


def _last_rate(cell):
    return f'{cell.rates[-1]:,.0f}/s'


def rotated(items, by):
    by %= len(items)
    return items[by:] + items[:by]


def run(
    iterations=None,
    repeat=None,
    smoke=False,
    redis_url=None,
    counted=None,
    progress=sys.stderr,
):
    """Run the benchmark; return its :class:`Results`.

    ``redis_url`` names a server to use; without it a private one is
    started (see :class:`pyramid_session_suite.testing.RedisServer`).
    """
    if iterations is None:
        iterations = SMOKE_ITERATIONS if smoke else DEFAULT_ITERATIONS
    if repeat is None:
        repeat = SMOKE_REPEAT if smoke else DEFAULT_REPEAT
    if counted is None:
        counted = SMOKE_COUNTED if smoke else COUNTED
    if iterations < 1 or repeat < 1 or counted < 1:
        raise ValueError('iterations, repeat and counted must be positive')
    warm = SMOKE_WARM_UP if smoke else WARM_UP

    def say(message):
        if progress is not None:
            print(message, file=progress, flush=True)

    started = datetime.datetime.now().astimezone()
    clock = time.perf_counter()
    with RedisServer(url=redis_url) as server:
        recorder = RoundTrips(active=False)
        clients = {
            stack: recorder.client(server.url)
            for stack in STACKS
            if stack != 'floor'
        }
        try:
            for client in clients.values():
                warm_up(client)
            apps = {
                stack: build(stack, clients.get(stack)) for stack in STACKS
            }
            environment = describe(server)
            environs = prepare(apps)
            cells = {}
            for scenario in SCENARIOS:
                for stack in STACKS:
                    cells[scenario.name, stack] = cell = Cell(
                        scenario.name, stack, iterations
                    )
                    environ = environs[scenario.name, stack]
                    time_requests(apps[stack], environ, warm)
                    for _ in range(counted):
                        recorder.start()
                        response = call(apps[stack], environ)
                        cell.counted.append(recorder.stop())
                        check_response(stack, scenario, response)
                say(
                    f'counted  {scenario.name:<9} '
                    + _per_stack(cells, scenario, _round_trips)
                )

            for rep in range(repeat):
                for index, scenario in enumerate(SCENARIOS):
                    for stack in rotated(STACKS, rep + index):
                        cells[scenario.name, stack].batches.append(
                            time_requests(
                                apps[stack],
                                environs[scenario.name, stack],
                                iterations,
                            )
                        )
                    say(
                        f'run {rep + 1}/{repeat}  {scenario.name:<9} '
                        + _per_stack(cells, scenario, _last_rate)
                    )
        finally:
            for client in clients.values():
                client.close()
                client.connection_pool.disconnect()

    return Results(
        iterations=iterations,
        repeat=repeat,
        smoke=smoke,
        cells=cells,
        started=started,
        seconds=time.perf_counter() - clock,
        environment=environment,
    )


def prepare(apps):
    """The environ of every cell. A returning visitor of a stack carries
    the cookies its own ``/login`` set."""
    cookies = {
        stack: returning_visitor(app)
        for stack, app in apps.items()
        if stack != 'floor'
    }
    # the floor ignores cookies; it gets the same header as the suite
    cookies['floor'] = cookies['suite']
    return {
        (scenario.name, stack): environ_for(scenario, cookies[stack])
        for scenario in SCENARIOS
        for stack in STACKS
    }


def describe(server):
    """What the numbers depend on, for the report."""
    client = redis.Redis.from_url(server.url)
    try:
        redis_version = client.info('server').get('redis_version')
        ping = ping_micros(client)
    finally:
        client.close()
    return {
        'python': platform.python_version(),
        'platform': platform.platform(terse=True),
        'cpus': os.cpu_count(),
        'redis server': redis_version,
        'redis-py': redis.__version__,
        'round trip': f'{ping:.0f} us (median PING through redis-py)',
        'pyramid': _version('pyramid'),
        'pyramid_session_multi': _version('pyramid_session_multi'),
        'pyramid_session_redis': _version('pyramid_session_redis'),
        'pyramid_session_suite': _version('pyramid_session_suite'),
    }


PINGS = 200


def ping_micros(client):
    """The median time of a ``PING`` through ``client``, in microseconds:
    what one round trip costs on this machine."""
    client.ping()
    times = []
    for _ in range(PINGS):
        start = time.perf_counter()
        client.ping()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return 'not installed'
