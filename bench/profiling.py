"""Where the microseconds of a suite read and write go: ``cProfile`` of
``N`` in-process requests of a scenario on the suite, the functions' own
time grouped by the package they live in.

The standard library and C builtins belong to no package of interest:
their own time is charged to the package that called them (through the
profile's caller edges, up the calls until a package is found), but for
two groups kept apart: the socket calls (``sendall``, ``recv_into``:
mostly waiting for Redis) and hiredis's reader. The profiler slows every
Python call down (roughly doubles a request here): the shares are the
part to read, the microseconds are those under the profiler.
"""

import cProfile
from dataclasses import dataclass
import gc
import pathlib
import pstats
import time

#: the suite's scenarios profiled
PROFILED = ('read', 'write', 'user read', 'user write')
#: the scenarios whose top functions are listed
TOP_SCENARIOS = ('read', 'write')
#: functions listed per scenario
TOP = 12

REQUESTS = 2000
SMOKE_REQUESTS = 20

#: the directory name of a package, and its name in the report; the
#: outermost counts when the path holds several (the suite's ``redis``
#: sub-package is the suite's)
PACKAGES = {
    'pyramid_session_suite': 'pyramid_session_suite',
    'pyramid_session_redis': 'pyramid_session_redis',
    'pyramid_session_multi': 'pyramid_session_multi',
    'redis': 'redis-py',
    'hiredis': 'hiredis',
    'webob': 'webob',
    'pyramid': 'pyramid',
    'zope': 'zope.interface',
    'bench': 'bench (driver loop)',
}

#: the groups of C builtins kept apart from their callers
SOCKET = 'socket I/O (waiting for Redis)'
HIREDIS = 'hiredis'

#: the rows of the package table, in order (others follow)
ORDER = (
    'pyramid_session_suite',
    'pyramid_session_redis',
    'pyramid_session_multi',
    'redis-py',
    HIREDIS,
    SOCKET,
    'webob',
    'pyramid',
    'zope.interface',
    'bench (driver loop)',
    'other',
)


@dataclass
class Profile:
    """The profile of one scenario on the suite."""

    scenario: str
    requests: int
    #: wall seconds of the profiled requests (under the profiler)
    seconds: float
    #: ``{package: own seconds}``, standard library and builtins charged
    #: to their callers' package
    packages: dict
    #: ``[(function, where, calls, own seconds), ...]``, by own time
    functions: list

    @property
    def own_seconds(self):
        return sum(self.packages.values())

    def micros(self, seconds):
        """``seconds`` of the whole run, in microseconds per request."""
        return seconds * 1e6 / self.requests


def _start_response(status, headers, exc_info=None):
    pass


def profile(app, environ, count, scenario=''):
    """Profile ``count`` requests of ``environ`` through ``app``; return
    a :class:`Profile`."""
    profiler = cProfile.Profile()
    copy = environ.copy
    join = b''.join
    gc.collect()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(count):
        app_iter = app(copy(), _start_response)
        join(app_iter)
        close = getattr(app_iter, 'close', None)
        if close is not None:
            close()
    profiler.disable()
    seconds = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats
    return Profile(
        scenario=scenario,
        requests=count,
        seconds=seconds,
        packages=by_package(stats),
        functions=top_functions(stats),
    )


def package_of(function):
    """The report's name of the package ``function`` (a pstats key) lives
    in, or ``None`` for the standard library and the other builtins."""
    filename, _, name = function
    if filename == '~':
        if '_socket.socket' in name or 'select' in name:
            return SOCKET
        if 'hiredis' in name:
            return HIREDIS
        return None
    for part in pathlib.PurePath(filename).parts[:-1]:
        if part in PACKAGES:
            return PACKAGES[part]
    return None


def by_package(stats):
    """``{package: own seconds}`` of a profile's ``stats`` (a
    ``pstats.Stats(...).stats``)."""
    shares = {}

    def owners(function, weight_index, visiting):
        """``{package: fraction}``: who ``function``'s time is charged
        to; by the callers' part of its own time (``weight_index`` 2),
        then, up the calls, of its inclusive time (3)."""
        package = package_of(function)
        if package is not None:
            return {package: 1.0}
        key = function, weight_index
        if key in shares:
            return shares[key]
        if function in visiting:
            return {'other': 1.0}
        visiting = visiting | {function}
        callers = stats[function][4] if function in stats else {}
        weights = {
            caller: edge[weight_index]
            for caller, edge in callers.items()
            if caller != function and edge[weight_index] > 0
        }
        total = sum(weights.values())
        found = {}
        if not total:
            found = {'other': 1.0}
        for caller, weight in weights.items():
            for owner, fraction in owners(caller, 3, visiting).items():
                found[owner] = found.get(owner, 0.0) + (
                    fraction * weight / total
                )
        shares[key] = found
        return found

    totals = {}
    for function, (_, _, own, _, _) in stats.items():
        if own <= 0:
            continue
        for owner, fraction in owners(function, 2, frozenset()).items():
            totals[owner] = totals.get(owner, 0.0) + own * fraction
    return totals


def label(function):
    """``redis/connection.py:123(read_response)``, or a builtin's name."""
    filename, line, name = function
    if filename == '~':
        return name
    parts = pathlib.PurePath(filename).parts
    for index in range(len(parts) - 1):
        if parts[index] in PACKAGES:
            filename = '/'.join(parts[index:])
            break
    else:
        filename = '/'.join(parts[-2:])
    return f'{filename}:{line}({name})'


def top_functions(stats, count=TOP):
    """The ``count`` functions of most own time: ``(function, package,
    calls, own seconds)``; a function of no package shows ``stdlib`` (or
    ``builtin``)."""
    ranked = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)
    found = []
    for function, (_, calls, own, _, _) in ranked[:count]:
        package = package_of(function)
        if package is None:
            package = 'builtin' if function[0] == '~' else 'stdlib'
        found.append((label(function), package, calls, own))
    return found


def ordered_packages(profiles):
    """The packages of ``profiles``, in :data:`ORDER`."""
    seen = set()
    for found in profiles:
        seen.update(found.packages)
    order = [package for package in ORDER if package in seen]
    return order + sorted(seen - set(order))
