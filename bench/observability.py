"""What metrics and traces cost: in-process throughput of a Redis session
read (and write) without and with ``pyramid_session_suite.metrics`` and
``pyramid_session_suite.tracing``, against a private Redis server::

    python -m bench.observability [--rounds 101] [--count 200]

Every variant is the same application (one Redis namespace, the request's
session; ``/read`` reads a key, ``/write`` increments one) with the same
session cookie; only the includes differ. The variants run in turns, in a
new order each round, ``count`` requests a turn; a variant's figure is its
median throughput, and its cost the median, over the rounds, of its
throughput over the bare application's in the same round (paired: a
busy moment of the machine slows both).

Variants: ``bare``; ``bare, again`` (the same application: its cost is
the noise of the run); ``subscriber`` (``bare`` with one event subscriber,
for an event the requests never send: what any subscriber costs, since
Pyramid then sends ``NewRequest``, ``BeforeTraversal``, ``ContextFound``
and ``NewResponse`` on every request; the metrics subscribe to the suite's
events, so they pay it in an application that had no subscriber);
``metrics`` (``prometheus_client``, a registry of its own); ``tracing``
(no tracer provider: the API's no-op tracer); ``metrics+tracing``; and,
when ``opentelemetry-sdk`` is installed, ``tracing, SDK`` (an SDK provider
that samples every span and exports it nowhere: the cost of recording,
not of sending).

Last, the cost of watching one load alone (the clock read twice and
each watcher's ``loaded()``, in a loop, best of 5), without the noise of
requests; and
of one of the user index's scripts (a ``login``: what a login, a logout,
a listing or a token claim pays per round trip, with no payload
observed). Reads and writes run none of those.
"""

import argparse
import gc
import random
import statistics
import sys
import time
from pyramid.config import Configurator

from pyramid_session_suite.testing import RedisServer

from .driver import time_requests

SECRET = 'benchmark-only-secret-48-bytes-never-deployed!!'

#: the goal: metrics and tracing together cost at most this share of the
#: read throughput
GOAL = 0.03

BASE = 'bare'

#: the bare application again: its "cost" is the noise of the run
CONTROL = 'bare, again'


def make_app(
    redis_url, metrics=False, tracing=False, provider=None, subscriber=False
):
    """The application of a variant."""
    settings = {
        'session_suite.namespaces': 'r',
        'session_suite.request_session': 'r',
        'session_suite.namespace.r.backend': 'redis',
        'session_suite.namespace.r.secret': SECRET,
        'session_suite.redis_url': redis_url,
    }
    if metrics:
        from prometheus_client import CollectorRegistry

        settings['session_suite.metrics.registry'] = CollectorRegistry()
    if provider is not None:
        settings['session_suite.tracing.tracer_provider'] = provider
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite')
    if metrics:
        config.include('pyramid_session_suite.metrics')
    if tracing:
        config.include('pyramid_session_suite.tracing')
    if subscriber:
        from pyramid_session_suite.events import StoreUnavailable

        config.add_subscriber(lambda event: None, StoreUnavailable)

    def read(request):
        request.response.text = request.session.get('user', '-')
        return request.response

    def write(request):
        session = request.session
        session['visits'] = session.get('visits', 0) + 1
        request.response.text = 'ok'
        return request.response

    def login(request):
        request.session.update(
            user='alice', theme='dark', lang='en-GB', tz='Europe/Paris'
        )
        request.response.text = 'ok'
        return request.response

    for name, view in (('read', read), ('write', write), ('login', login)):
        config.add_route(name, '/' + name)
        config.add_view(view, route_name=name)
    return config.make_wsgi_app()


def variants(redis_url):
    """``{name: app}``."""
    apps = {
        BASE: make_app(redis_url),
        CONTROL: make_app(redis_url),
        'subscriber': make_app(redis_url, subscriber=True),
        'metrics': make_app(redis_url, metrics=True),
        'tracing': make_app(redis_url, tracing=True),
        'metrics+tracing': make_app(redis_url, metrics=True, tracing=True),
    }
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return apps
    apps['tracing, SDK'] = make_app(
        redis_url, tracing=True, provider=TracerProvider()
    )
    return apps


def _start_response(status, headers, exc_info=None):
    if not status.startswith('200'):
        raise AssertionError(status)


def environ(path, cookie=None):
    env = {
        'REQUEST_METHOD': 'GET',
        'PATH_INFO': path,
        'SCRIPT_NAME': '',
        'QUERY_STRING': '',
        'SERVER_NAME': 'localhost',
        'SERVER_PORT': '80',
        'SERVER_PROTOCOL': 'HTTP/1.1',
        'HTTP_HOST': 'localhost',
        'REMOTE_ADDR': '198.51.100.7',
        'wsgi.url_scheme': 'http',
        'wsgi.version': (1, 0),
        'wsgi.input': None,
        'wsgi.errors': sys.stderr,
        'wsgi.multithread': False,
        'wsgi.multiprocess': False,
        'wsgi.run_once': False,
    }
    if cookie:
        env['HTTP_COOKIE'] = cookie
    return env


def session_cookie(app):
    """The cookie of a new session holding a logged-in user's few keys."""
    headers = []

    def start_response(status, response_headers, exc_info=None):
        headers.extend(response_headers)

    b''.join(app(environ('/login'), start_response))
    [cookie] = [v for k, v in headers if k.lower() == 'set-cookie']
    return cookie.split(';')[0]


def measure(apps, env, rounds, count, seed=0):
    """``{name: [requests per second of each round]}``, in turns."""
    order = list(apps)
    shuffle = random.Random(seed).shuffle
    for app in apps.values():  # warm up: connections, caches
        b''.join(app(env.copy(), _start_response))  # answers 200
        time_requests(app, env, max(100, count // 10))
    rates = {name: [] for name in apps}
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            rates[name].append(count / time_requests(apps[name], env, count))
    return rates


def per_load(watchers, count=20_000):
    """Seconds the watching of one load takes (what a read tells
    ``watchers`` of its load that found a session), best of 5."""
    best = float('inf')
    for _ in range(5):
        gc.collect()
        start = time.perf_counter()
        for _ in range(count):
            started = time.perf_counter()
            ended = time.perf_counter()
            for watcher in watchers:
                watcher.loaded('r', started, ended, 'hit', 160)
        best = min(best, (time.perf_counter() - start) / count)
    return best


def per_script(watchers, count=20_000):
    """Seconds the watching of one of the user index's scripts takes."""
    from pyramid_session_suite import watch

    best = float('inf')
    for _ in range(5):
        gc.collect()
        start = time.perf_counter()
        for _ in range(count):
            watch.done(watchers, 'r', 'login', time.perf_counter())
        best = min(best, (time.perf_counter() - start) / count)
    return best


def watchers_of(app):
    from pyramid_session_suite.watch import watchers_of

    return list(watchers_of(app.registry))


def report(scenario, rates):
    """The lines of one scenario's table."""
    base = rates[BASE]
    lines = [
        f'{scenario}: median of {len(base)} rounds',
        f'  {"variant":<16} {"req/s":>8} {"us/req":>7} {"x bare":>7} '
        f'{"cost":>7}  {"quartiles":>11}',
    ]
    for name, values in rates.items():
        median = statistics.median(values)
        ratios = sorted(v / b for v, b in zip(values, base, strict=True))
        ratio = statistics.median(ratios)
        quartiles = statistics.quantiles(ratios, n=4)
        lines.append(
            f'  {name:<16} {median:>8,.0f} {1e6 / median:>7.1f} '
            f'{ratio:>7.3f} {1 - ratio:>+7.1%}  '
            f'{quartiles[0]:.3f}-{quartiles[2]:.3f}'
        )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m bench.observability',
        description=__doc__.split('\n\n')[0],
    )
    parser.add_argument('--rounds', type=int, default=101)
    parser.add_argument('--count', type=int, default=200)
    parser.add_argument(
        '--scenarios', nargs='+', default=['read', 'write'],
        choices=['read', 'write'],
    )  # fmt: skip
    args = parser.parse_args(argv)
    with RedisServer(url='') as server:
        apps = variants(server.url)
        cookie = session_cookie(apps[BASE])
        version = server.client().info('server')['redis_version']
        print(
            f'Python {sys.version.split()[0]}, Redis {version} on loopback, '
            f'{args.count} requests a turn, variants in turns'
        )
        costs = {}
        for scenario in args.scenarios:
            env = environ('/' + scenario, cookie)
            rates = measure(apps, env, args.rounds, args.count)
            print('\n'.join(report(scenario, rates)))
            costs[scenario] = {
                name: 1 - paired(rates[name], rates[BASE]) for name in rates
            }
            costs[scenario]['us'] = 1e6 / statistics.median(rates[BASE])
        read_us = costs['read']['us'] if 'read' in costs else None
        print('watching one load alone (best of 5):')
        print('\n'.join(watching(apps, per_load, read_us)))
        print('watching one user index script alone (a login, best of 5):')
        print('\n'.join(watching(apps, per_script)))
    if 'read' in costs:
        read = costs['read']
        both = read['metrics+tracing']
        verdict = 'within' if both <= GOAL else 'over'
        print(
            f'reads, metrics+tracing (no provider): {both:+.1%} against the '
            f'bare application ({verdict} the {GOAL:.0%} goal; the same '
            f'application again: {read[CONTROL]:+.1%}, the noise of this '
            f'run)'
        )
    return 0


def watching(apps, per, read_us=None):
    """The lines of what watching one operation costs (``per(watchers)``
    seconds), for each variant that watches, against a bare read of
    ``read_us`` microseconds."""
    none = per([])
    lines = [f'  the core, with a watcher: {none * 1e6:.2f} us']
    for name, app in apps.items():
        if name in (BASE, CONTROL, 'subscriber'):
            continue
        us = (per(watchers_of(app)) - none) * 1e6
        line = f'  + {name}: {us:.2f} us'
        if read_us is not None:
            line += f' ({us / read_us:.1%} of a bare read)'
        lines.append(line)
    return lines


def paired(values, base):
    """The median of ``values`` over ``base``, round by round."""
    return statistics.median(
        value / other for value, other in zip(values, base, strict=True)
    )


if __name__ == '__main__':
    sys.exit(main())
