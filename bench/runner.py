"""One benchmark run: every scenario on every stack, in one process.

Per cell (scenario x stack): a warm-up, a counted pass (round trips and
commands per request, checked responses), then ``repeat`` timed batches of
``iterations`` requests (scaled down for the slow scenarios: logins, whose
anonymous sessions are made untimed before each batch, and listings). The
batches are interleaved: each repetition runs every scenario on every
stack, in a stack order that rotates, so that machine noise falls on all
stacks alike. The rate of a cell is the median of its batches; the ratio
of two stacks is the median of their ratios in each repetition.

The read and write scenarios run on a fourth stack, ``limit``: the
physical limit of the operation (the floor's request and raw redis-py
commands, see :class:`.workloads.Limit`); with hiredis installed, the
anchor, the suite and the limit run them again with redis-py's pure-Python
reply parser (stacks ``anchor/py``, ``suite/py``, ``limit/py``), in the same
interleaved batches. Then the suite's read and write paths are profiled
(see :mod:`.profiling`).

With the HTTP layer come the tabs scenario's overlapping writers of one
session (see :mod:`.tabs`). Then the Redis memory of the sessions is
measured, and the Redis time of a login as its user's sessions grow (see
:mod:`.memory`).
"""

from dataclasses import dataclass, field
import datetime
import importlib.metadata
import itertools
import os
import platform
import statistics
import sys
import time
import redis

from pyramid_session_suite.testing import RedisServer

from . import memory, profiling
from .apps import (
    LIMIT,
    PYTHON,
    STACKS,
    TIMEOUT,
    base_stack,
    build,
    is_python,
    tracker_of,
)
from .counting import (
    RoundTrips,
    client as counted_client,
    close,
    default_parser,
    parser_of,
    sequences,
    warm_up,
)
from .driver import call, make_environ, paired_ratio, rotated
from .loopback import find_wrk, run_http, wrk_version
from .scenarios import (
    LIST_SIZE,
    SMOKE_LIST_SIZE,
    check_result,
    environ_for,
    logged_in_visitor,
    make_scenarios,
    returning_visitor,
)
from .tabs import STACKS as TABS_STACKS, run_tabs
from .workloads import (
    HandOffs,
    Limit,
    Listings,
    Logins,
    Requests,
    add_sessions,
)

#: the applications built: every stack, plain, and the suite with users
#: (the floor and the anchor serve the ``users`` scenarios with their one
#: application), with the user index alone, with the index and the policy,
#: and with cross-domain sharing alone
APPS = (
    *((stack, 'plain') for stack in STACKS),
    ('suite', 'users'),
    ('suite', 'index'),
    ('suite', 'index+policy'),
    ('suite', 'crossdomain'),
)

#: the user whose sessions are listed
LIST_USER = 'many'

#: the key the limit stacks read and write (a copy of the suite's session
#: of the returning visitor), per stack
LIMIT_KEY = 'bench:limit:{stack}'

#: requests per timed batch, and batches per cell: many short batches, so
#: that slow drifts of the machine (other tenants of a virtual machine,
#: frequency changes) fall on every stack alike. Sized, with the setup and
#: the memory measurement, for a run of about a minute and a half on 2
#: quiet cores.
DEFAULT_ITERATIONS = 300
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
    #: microseconds Redis spent per operation, when measured
    server_micros: float | None = None

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
        """The distinct command sequences of the counted requests (see
        :func:`.counting.sequences`)."""
        return sequences(self.counted)


@dataclass
class Results:
    iterations: int
    repeat: int
    smoke: bool
    cells: dict
    started: datetime.datetime
    seconds: float
    environment: dict
    #: the :class:`.scenarios.Scenario` s run, in order
    scenarios: tuple = ()
    #: the :class:`.memory.MemoryRow` of each measurement and stack
    memory: list = field(default_factory=list)
    #: the :class:`.memory.LoginCost` of each size of the user
    login_cost: list = field(default_factory=list)
    #: the :class:`.loopback.HttpResults`, if the HTTP layer ran
    http: object = None
    #: the :class:`.tabs.TabsResults`, if the HTTP layer ran
    tabs: object = None
    #: the reply parser of each stack's Redis client, as a connection has
    #: it (see :func:`.counting.parser_of`)
    parsers: dict = field(default_factory=dict)
    #: the :class:`.profiling.Profile` of each profiled scenario
    profiles: list = field(default_factory=list)

    def cell(self, scenario, stack):
        return self.cells[scenario, stack]

    def has(self, scenario, stack):
        return (scenario, stack) in self.cells

    def scenario(self, name):
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise KeyError(name)

    def ratio(self, scenario, stack, base, base_scenario=None):
        """How many times faster ``stack`` is than ``base`` in
        ``scenario`` (or than ``base`` in ``base_scenario``): the median,
        over the repetitions, of the ratio of their rates in the same
        repetition. The batches of one repetition run back to back, so a
        slow spell of the machine cancels out."""
        return paired_ratio(
            self.cell(scenario, stack).rates,
            self.cell(base_scenario or scenario, base).rates,
        )

    def limit_of(self, scenario, stack):
        """The ``(scenario, stack)`` of the limit that bounds ``stack`` in
        ``scenario`` (same parser), or ``None``."""
        found = self.scenario(scenario).limit
        limit = LIMIT + PYTHON if is_python(stack) else LIMIT
        if found is None or not self.has(found, limit):
            return None
        return found, limit

    def limit_ratio(self, scenario, stack):
        """``stack``'s rate in ``scenario`` over its limit's, or
        ``None``."""
        limit = self.limit_of(scenario, stack)
        if limit is None or not self.has(scenario, stack):
            return None
        return self.ratio(scenario, stack, limit[1], limit[0])


def _per_stack(cells, scenario, show):
    return '  '.join(
        f'{stack} {show(cells[scenario.name, stack])}'
        for stack in scenario.stacks
    )


def _round_trips(cell):
    return f'{cell.round_trips:g} rt'


def _last_rate(cell):
    return f'{cell.rates[-1]:,.0f}/s'


def scaled(count, scenario):
    """``count`` operations of an ordinary scenario, for ``scenario``."""
    return max(1, round(count * scenario.scale))


def run(
    iterations=None,
    repeat=None,
    smoke=False,
    redis_url=None,
    counted=None,
    memory_sessions=None,
    list_size=None,
    progress=sys.stderr,
    http=True,
    profile=True,
    both_parsers=None,
):
    """Run the benchmark; return its :class:`Results`.

    ``redis_url`` names a server to use; without it a private one is
    started (see :class:`pyramid_session_suite.testing.RedisServer`).
    ``memory_sessions`` is the number of sessions per stack of each memory
    measurement (see :mod:`.memory`), ``list_size`` the number of sessions
    of the listed user. With ``http``, the HTTP layer runs too if ``wrk``
    is installed (see :mod:`.loopback`), and the tabs scenario (see
    :mod:`.tabs`). With ``profile``, the suite's read and write paths are
    profiled (see :mod:`.profiling`).
    ``both_parsers`` (default: if hiredis is installed) runs the read and
    write scenarios with the pure-Python parser too.
    """
    if iterations is None:
        iterations = SMOKE_ITERATIONS if smoke else DEFAULT_ITERATIONS
    if repeat is None:
        repeat = SMOKE_REPEAT if smoke else DEFAULT_REPEAT
    if counted is None:
        counted = SMOKE_COUNTED if smoke else COUNTED
    if memory_sessions is None:
        memory_sessions = (
            memory.SMOKE_SESSIONS if smoke else memory.DEFAULT_SESSIONS
        )
    if list_size is None:
        list_size = SMOKE_LIST_SIZE if smoke else LIST_SIZE
    if min(iterations, repeat, counted, memory_sessions, list_size) < 1:
        raise ValueError(
            'iterations, repeat, counted, memory_sessions and list_size must '
            'be positive'
        )
    scenarios = make_scenarios(list_size, both_parsers)
    warm = SMOKE_WARM_UP if smoke else WARM_UP

    say = Say(progress)
    width = max(len(scenario.name) for scenario in scenarios)
    started = datetime.datetime.now().astimezone()
    clock = time.perf_counter()
    with RedisServer(url=redis_url) as server:
        memory.check_memory_db(server.url)
        recorder = RoundTrips(active=False)
        keys = app_keys(scenarios)
        clients = {
            key: counted_client(recorder, server.url, parser(key[0]))
            for key in keys
            if key[0] != 'floor'
        }
        try:
            for client in clients.values():
                warm_up(client)
            apps = {
                key: build(key[0], clients.get(key), key[1])
                for key in keys
                if base_stack(key[0]) != LIMIT
            }
            for stack in STACKS:
                apps.setdefault((stack, 'users'), apps[stack, 'plain'])
            environment = describe(server)
            parsers = {
                stack: parser_of(client)
                for (stack, variant), client in clients.items()
                if variant == 'plain'
            }
            workloads = prepare(apps, scenarios, list_size, clients, recorder)
            cells = {}
            for scenario in scenarios:
                for stack in scenario.stacks:
                    cells[scenario.name, stack] = cell = Cell(
                        scenario.name, stack, scaled(iterations, scenario)
                    )
                    workload = workloads[scenario.name, stack]
                    workload.run(workload.prepare(scaled(warm, scenario)))
                    for _ in range(counted):
                        prepared = workload.prepare(1)
                        recorder.start()
                        result = workload.once(prepared)
                        cell.counted.append(recorder.stop())
                        check_result(stack, scenario, result)
                say(
                    f'counted  {scenario.name:<{width}} '
                    + _per_stack(cells, scenario, _round_trips)
                )

            for rep in range(repeat):
                for index, scenario in enumerate(scenarios):
                    for stack in rotated(scenario.stacks, rep + index):
                        cell = cells[scenario.name, stack]
                        workload = workloads[scenario.name, stack]
                        prepared = workload.prepare(cell.iterations)
                        cell.batches.append(workload.run(prepared))
                    say(
                        f'run {rep + 1}/{repeat}  {scenario.name:<{width}} '
                        + _per_stack(cells, scenario, _last_rate),
                        timing=True,
                    )
            profiles = []
            if profile:
                count = (
                    profiling.SMOKE_REQUESTS if smoke else profiling.REQUESTS
                )
                profiled = [
                    (name, workloads[name, 'suite'])
                    for name in profiling.PROFILED
                    if (name, 'suite') in workloads
                ]
                for name, workload in profiled:
                    found = profiling.profile(
                        workload.app, workload.environ, count, name
                    )
                    profiles.append(found)
                    say(
                        f'profiled {name:<{width}} '
                        f'{found.micros(found.seconds):,.0f} us per request '
                        'under cProfile'
                    )
            http_results = tabs_results = None
            if http and find_wrk() is None:
                say('no HTTP layer: wrk is not installed (make bench does)')
            elif http:
                http_results = run_http(
                    {stack: apps[stack, 'plain'] for stack in STACKS},
                    scenarios,
                    {
                        key: workload.environ.get('HTTP_COOKIE')
                        for key, workload in workloads.items()
                        if isinstance(workload, Requests)
                    },
                    say,
                    smoke=smoke,
                )
            if http:
                tabs_results = run_tabs(
                    {stack: apps[stack, 'plain'] for stack in TABS_STACKS},
                    recorder,
                    say,
                )
            for key, cell in cells.items():
                server_time = getattr(workloads[key], 'server_time', None)
                if server_time is not None:
                    cell.server_micros = server_time()
        finally:
            for client in clients.values():
                close(client)
        memory_rows = memory.measure(server.url, memory_sessions, say)
        login_cost = memory.login_cost(
            server.url,
            memory.SMOKE_LOGIN_SIZES if smoke else memory.LOGIN_SIZES,
            memory.SMOKE_LOGINS if smoke else memory.LOGINS,
            say,
        )
    environment['load average'] += f', {_load()} at the end'

    return Results(
        iterations=iterations,
        repeat=repeat,
        smoke=smoke,
        cells=cells,
        started=started,
        seconds=time.perf_counter() - clock,
        environment=environment,
        scenarios=scenarios,
        memory=memory_rows,
        login_cost=login_cost,
        http=http_results,
        tabs=tabs_results,
        parsers=parsers,
        profiles=profiles,
    )


def parser(stack):
    """The reply parser of ``stack``'s client: redis-py's pure-Python one
    for the ``/py`` stacks, else redis-py's default (hiredis if
    installed)."""
    return 'python' if is_python(stack) else default_parser()


def app_keys(scenarios):
    """The ``(stack, variant)`` of every application (and Redis client) of
    ``scenarios``: :data:`APPS`, and those of the stacks the scenarios add
    (the limits, the pure-Python parser's) with the ``plain`` variant."""
    keys = dict.fromkeys(APPS)
    for scenario in scenarios:
        for stack in scenario.stacks:
            if stack not in STACKS:
                keys[stack, 'plain'] = None
    return tuple(keys)


def session_sample(app, cookie, client, recorder):
    """The key and value of the Redis session ``cookie`` names on the
    suite ``app``: the key its ``/read`` sends first."""
    recorder.start()
    try:
        call(app, make_environ('/read', cookie))
    finally:
        trips = recorder.stop()
    key = trips[0][0][1]
    value = client.get(key)
    if not value:
        raise AssertionError(f'no session at {key!r}')
    return key, value


def prepare(apps, scenarios, list_size, clients=None, recorder=None):
    """The workload of every cell. A returning visitor of a stack carries
    the cookies its own application set: ``/visitor`` for the anonymous
    one, ``/anon`` then ``/login`` for the logged-in one (on the
    ``users`` application; and, for the suite, the same on the application
    of each other logged-in scenario: its ``plain`` variant for the
    ``plain user`` scenarios, and so on). The user
    of the listing gets its sessions. A limit stack reads (and writes) a
    copy of the suite's session of the returning visitor, on its own key
    and client (``clients``; its requests are counted by ``recorder``)."""
    listing = apps['suite', 'users']
    # first (it takes a while): the logged-in visitors are made last, so
    # that their first touch_interval covers the counted requests
    add_sessions(listing, LIST_USER, list_size)
    visitors = {
        stack: {'returning': returning_visitor(apps[stack, 'plain'])}
        for stack, variant in apps
        if variant == 'plain' and stack != 'floor'
    }
    for stack in STACKS:
        if stack != 'floor':
            visitors[stack]['user'] = logged_in_visitor(apps[stack, 'users'])
    # the same logged-in visitor on the suite without the user index,
    # policy and cross-domain sharing (its login view: the anchor's), and
    # with some of them (a user of its own each)
    for scenario in scenarios:
        if scenario.visitor and scenario.visitor not in visitors['suite']:
            visitors['suite'][scenario.visitor] = logged_in_visitor(
                apps['suite', scenario.variant], scenario.user
            )
    # the floor ignores cookies; it gets the same headers as the suite
    visitors['floor'] = visitors['suite']
    sample = None
    login_ids = itertools.count(1)
    workloads = {}
    for scenario in scenarios:
        for stack in scenario.stacks:
            if base_stack(stack) == LIMIT:
                client = clients[stack, 'plain']
                if sample is None:
                    sample = session_sample(
                        apps['suite', 'plain'],
                        visitors['suite']['returning'],
                        client,
                        recorder,
                    )
                key = LIMIT_KEY.format(stack=stack)
                client.set(key, sample[1], ex=TIMEOUT)
                workloads[scenario.name, stack] = Limit(
                    apps['floor', 'plain'],
                    environ_for(scenario, visitors['suite']),
                    client,
                    key,
                    write=scenario.path == '/write',
                )
                continue
            app = apps[stack, scenario.variant]
            if scenario.kind == 'request':
                workload = Requests(
                    app, environ_for(scenario, visitors[stack])
                )
            elif scenario.kind == 'login':
                workload = Logins(app, login_ids, stack != 'floor')
            elif scenario.kind == 'list':
                workload = Listings(tracker_of(app).index, LIST_USER)
            elif scenario.kind in ('token', 'redeem'):
                workload = HandOffs(app, redeem=scenario.kind == 'redeem')
            else:
                raise ValueError(f'unknown kind {scenario.kind!r}')
            workloads[scenario.name, stack] = workload
    return workloads


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
        'redis-py parser': (
            f'hiredis {_version("hiredis")} (stacks /py: the pure-Python '
            'parser)'
            if default_parser() == 'hiredis'
            else 'pure Python (hiredis not installed)'
        ),
        'round trip': f'{ping:.0f} us (median PING through redis-py)',
        'wrk': wrk_version(wrk) if (wrk := find_wrk()) else 'not installed',
        'load average': f'{_load()} at the start',
        'pyramid': _version('pyramid'),
        'pyramid_session_multi': _version('pyramid_session_multi'),
        'pyramid_session_redis': _version('pyramid_session_redis'),
        'pyramid_session_suite': _version('pyramid_session_suite'),
    }


PINGS = 200


class Say:
    """Progress lines on ``stream`` (none if it is ``None``); with
    ``timing``, the time elapsed since the start."""

    def __init__(self, stream):
        self.stream = stream
        self.started = time.perf_counter()

    def __call__(self, message, timing=False):
        if self.stream is None:
            return
        if timing:
            seconds = round(time.perf_counter() - self.started)
            message += f'  ({seconds // 60}:{seconds % 60:02d})'
        print(message, file=self.stream, flush=True)


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


def _load():
    """The 1-minute load average of the machine (other processes make the
    timings noisy), or ``?``."""
    try:
        return f'{os.getloadavg()[0]:.2f}'
    except OSError:
        return '?'


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return 'not installed'
