"""``python -m bench.topologies``: the same application on one Redis, a
3-primary Redis Cluster and a Sentinel-managed primary, all on loopback.

Scenarios: a returning visitor reading and writing, and a logged-in user
(user index and policy included) reading and writing. Requests are
in-process WSGI calls; the topologies are interleaved, so machine noise
falls on all alike; a rate is the median of the batches, a ratio the
median of the per-repetition ratios to one Redis.
"""

import argparse
import statistics
import sys

from pyramid_session_suite.testing import (
    RedisClusterServers,
    RedisSentinelServers,
    RedisServer,
)

from .driver import call, make_environ, paired_ratio, rotated, time_requests
from .tables import text_table

SECRET = 'benchmark-only-secret-never-used-outside-the-benchmark'

SCENARIOS = ('read', 'write', 'user read', 'user write')


def make_app(connection):
    from pyramid.config import Configurator

    from pyramid_session_suite import login

    from .soakapp import SessionSecurityPolicy

    def view(request):
        if request.params.get('write'):
            request.session['n'] = request.session.get('n', 0) + 1
        return {'n': request.session.get('n')}

    def sign_in(request):
        request.response.headerlist.extend(
            login(request, request.params['user'])
        )
        return {}

    settings = {
        'session_suite.namespaces': 'main',
        'session_suite.request_session': 'main',
        'session_suite.namespace.main.backend': 'redis',
        'session_suite.namespace.main.secret': SECRET,
        'session_suite.user_index.secret': SECRET + '-index',
        'session_suite.policy.max_sessions': '0',
        **connection,
    }
    config = Configurator(settings=settings)
    config.set_security_policy(SessionSecurityPolicy())
    config.include('pyramid_session_suite.policy')
    config.add_route('home', '/')
    config.add_view(view, route_name='home', renderer='json')
    config.add_route('login', '/login')
    config.add_view(sign_in, route_name='login', renderer='json')
    return config.make_wsgi_app()


def visitor(app, user=None):
    """The environs of a returning visitor (logged in as ``user``): one
    that reads, one that writes."""
    response = call(app, writing(make_environ('/')))
    cookie = response.cookie_header()
    if user:
        response = call(app, make_environ('/login', cookie, {'user': user}))
        cookie = response.cookie_header() or cookie
    read = make_environ('/', cookie)
    write = writing(make_environ('/', cookie))
    for environ in (read, write):
        status = call(app, environ).status
        if not status.startswith('200'):
            raise RuntimeError(f'{status} for a returning visitor')
    return read, write


def writing(environ):
    environ['QUERY_STRING'] = 'write=1'
    return environ


def run(repeat=15, iterations=200, out=sys.stdout):
    topologies = {}
    with (
        RedisServer(url='') as single,
        RedisClusterServers(primaries=3, replicas=1) as cluster,
        RedisSentinelServers(replicas=1, sentinels=3) as sentinel,
    ):
        connections = {
            'one Redis': {'session_suite.redis_url': single.url},
            'cluster': {
                'session_suite.redis_cluster_nodes': ' '.join(cluster.nodes)
            },
            'Sentinel': {
                'session_suite.redis_sentinels': ' '.join(sentinel.sentinels),
                'session_suite.redis_sentinel_master': sentinel.master_name,
            },
        }
        for name, connection in connections.items():
            app = make_app(connection)
            read, write = visitor(app)
            user_read, user_write = visitor(app, user='alice')
            environs = dict(
                zip(
                    SCENARIOS,
                    (read, write, user_read, user_write),
                    strict=True,
                )
            )
            topologies[name] = app, environs
        rates = {(t, s): [] for t in topologies for s in SCENARIOS}
        for i in range(repeat):
            for scenario in SCENARIOS:
                for name in rotated(list(topologies), i):
                    app, environs = topologies[name]
                    elapsed = time_requests(
                        app, environs[scenario], iterations
                    )
                    rates[name, scenario].append(iterations / elapsed)
            print(f'  repetition {i + 1}/{repeat}', file=sys.stderr)
    report(rates, list(topologies), out)
    return rates


def report(rates, names, out):
    base = names[0]
    body = []
    for scenario in SCENARIOS:
        for name in names:
            mine = rates[name, scenario]
            ratio = paired_ratio(mine, rates[base, scenario])
            median = statistics.median(mine)
            body.append((scenario, name, f'{median:,.0f}', f'{ratio:.2f}'))
    headers = ('scenario', 'topology', 'req/s', f'x {base}')
    print(text_table(headers, body, 'llrr', grouped=True), file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m bench.topologies', description=__doc__.split('\n')[0]
    )
    parser.add_argument('--repeat', type=int, default=15)
    parser.add_argument('--iterations', type=int, default=200)
    args = parser.parse_args(argv)
    run(args.repeat, args.iterations)
    return 0


if __name__ == '__main__':
    sys.exit(main())
