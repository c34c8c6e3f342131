"""A bounded soak on loopback: the whole suite under a realistic mix of
concurrent browsers, for a fixed time, then an audit of what it left.

``python -m bench.soak --seconds 60 --clients 32`` (or :func:`soak`):

- a private Redis server (``REDIS_URL`` instead, whose database must be
  empty) and, in a child process, waitress serving :mod:`bench.soakapp`
  (two sites of a cross-domain group, every feature on) on loopback;
- ``clients`` threads (:mod:`bench.soakclient`), each one person with its
  own account and four browsers (one more than the policy allows
  sessions), a cookie jar per browser and site and one keep-alive
  connection, loop for ``seconds`` over a mix of: untouched pages, new
  anonymous visitors, reads, writes, listing and revoking sessions,
  logging in, out and in again, handing the session to the other site
  with a single-use token (redirect and push flows) and replaying that
  token, anonymous page views bounced through the hub, and logins to one
  account that every client shares;
- each client keeps the model of what its browsers should see: its own
  counters (a read showing less than it wrote is a lost write), its
  sessions (the index must list exactly them), the sessions it ended
  (their browsers must be told so);
- every few seconds (:mod:`bench.soakaudit`): the server process's
  resident memory and allocated Python blocks, Redis ``used_memory``,
  ``used_memory_dataset`` and ``DBSIZE``;
- at the end, every Redis key is read back: each must have a TTL; each
  index member must name a live session and the index must find each
  logged-in session; sessions, ended sessions and the sessions the index
  finds must be exactly the ones the clients' models account for; token
  claims must all be younger than a token's lifetime.

Memory is judged on the samples after a warm-up (the first quarter of the
run, while pools, caches and allocator arenas fill up), cut in two halves
whose medians are compared: a median ignores the odd sample taken while
many requests were in flight, and a leak of ``L`` per request moves it by
``L`` times the requests between the two medians (about 2,500 in the test
suite's 10-second run, 12,000 in a minute with 32 clients). The server
collects its garbage before each sample, so its allocated Python blocks
(every object, strings included) count live objects only: they must not
grow by more than 2% or 5,000 blocks (a leak of 2 objects per request over
10 seconds, well under one per request over a minute), nor its resident
memory by more than 5% or 8 MB. Redis memory grows with the sessions by
design (they live 20 minutes); the number of keys is audited exactly at
the end, and what is judged is the dataset's bytes per key (at most 25%
more).

Nothing is timed: throughput is reported, never judged.
"""

import argparse
import collections
from dataclasses import dataclass, field
import os
import random
import sys
import time
import redis

from pyramid_session_suite.testing import RedisServer

from .soakapp import APP, MAX_SESSIONS, TIMEOUT, ServerProcess
from .soakaudit import CLAIM_TTL, WARM_UP, Census, Sampler, take_census, trends
from .soakclient import DEVICES, Client, Tally
from .tables import text_table

DEFAULT_SECONDS = 60
DEFAULT_CLIENTS = 32
DEFAULT_THREADS = 8
#: the test suite's soak: ``SESSION_SUITE_SOAK_SECONDS`` or this long
SHORT_SECONDS = 10
SHORT_CLIENTS = 16
ENV_SECONDS = 'SESSION_SUITE_SOAK_SECONDS'


@dataclass
class SoakResult:
    seconds: float
    clients: int
    threads: int
    elapsed: float
    redis_version: str
    tally: Tally
    census: Census
    #: what the clients' models account for
    expected: dict
    #: tokens redeemed within a claim's lifetime before the census
    recent_claims: int
    samples: list
    trends: list
    server_errors: list
    server_warnings: collections.Counter
    checks: list = field(default_factory=list)

    @property
    def ok(self):
        return all(ok for _, ok, _ in self.checks)

    @property
    def failed(self):
        return [name for name, ok, _ in self.checks if not ok]

    @property
    def rate(self):
        return self.tally.requests / self.elapsed

    @property
    def server_5xx(self):
        return sum(n for s, n in self.tally.statuses.items() if s >= 500)


def judge(result):
    """The checks of a run: ``[(name, ok, detail)]``."""
    t, c, e = result.tally, result.census, result.expected
    kinds = c.kinds
    seen = [kinds[k] for k in ('anonymous session', 'user session',
                               'ended marker')]  # fmt: skip
    expected = [e['anonymous'], e['users'], e['ends']]
    exact = result.elapsed < TIMEOUT - 60  # no session can have idled out
    if exact:
        accounted = seen == expected
    else:
        accounted = all(a <= b for a, b in zip(seen, expected, strict=True))
    shared = kinds['shared'], kinds['shared marker']
    logged_in = kinds['user session'] + kinds['shared']
    memory = [trend for trend in result.trends if trend.limit is not None]
    return [
        ('no 5xx', result.server_5xx == 0, f'{result.server_5xx}'),
        ('every request answered', t.errors == 0, f'{t.errors} unanswered'),
        ('answers as expected', not t.surprises,
         f'{sum(t.surprises.values())} surprises'),
        ('no lost writes', t.lost_writes == t.phantom_writes == 0,
         f'{t.lost_writes} lost, {t.phantom_writes} phantom'),
        ('no lost sessions', t.lost_sessions == 0, f'{t.lost_sessions}'),
        ('listings match the sessions', t.index_mismatches == 0,
         f'{t.index_mismatches} mismatches'),
        ('ended sessions told, cookies cleared', t.stale_cookies_kept == 0,
         f'{sum(t.ended_told.values()):,} told, '
         f'{t.stale_cookies_kept} cookies kept'),
        ('replayed tokens refused',
         t.replays_accepted == 0 and t.replays_refused == t.redeemed,
         f'{t.replays_refused:,} of {t.redeemed:,} refused'),
        ('every key has a TTL', not c.no_ttl, f'{len(c.no_ttl)} without'),
        ('no unknown keys', not kinds['unknown'], f'{kinds["unknown"]}'),
        ('the index finds every logged-in session',
         c.entries == logged_in == e['users'] + kinds['shared']
         and not (c.dangling or c.orphans),
         f'{c.entries:,} found, {logged_in:,} sessions; {c.dangling} '
         f'dangling, {c.orphans} orphans'),
        ('sessions and markers accounted for', accounted,
         'anonymous/logged-in/ended {} ({} {})'.format(
             '/'.join(map('{:,}'.format, seen)),
             'expected' if exact else 'at most',
             '/'.join(map('{:,}'.format, expected)))),
        ('shared account: each login live or ended',
         sum(shared) == t.shared_logins and shared[0] <= MAX_SESSIONS,
         f'{shared[0]} live + {shared[1]:,} ended = {sum(shared):,}, '
         f'{t.shared_logins:,} logins'),
        ('token claims within their lifetime',
         kinds['token claim'] <= result.recent_claims
         and c.claim_ttl_max <= CLAIM_TTL,
         f'{kinds["token claim"]:,} claims, {result.recent_claims:,} redeemed '
         f'in the last {CLAIM_TTL} s; TTLs <= {c.claim_ttl_max} s'),
        ('server logged no errors', not result.server_errors,
         f'{len(result.server_errors)} error lines'),
        ('memory stable', all(trend.ok for trend in memory),
         ', '.join(f'{trend.name} {fmt(trend.growth, trend.unit, True)}'
                   for trend in memory) or 'run too short to judge'),
    ]  # fmt: skip


# -- the report --------------------------------------------------------------


def fmt(value, unit, signed=False):
    sign = '+' if signed and value >= 0 else ''
    if unit == 'bytes' and abs(value) >= 2**20:
        return f'{sign}{value / 2**20:,.1f} MB'
    if unit == 'bytes' and abs(value) >= 2**10:
        return f'{sign}{value / 2**10:,.0f} KB'
    return f'{sign}{value:,.0f}' + (' B' if unit == 'bytes' else '')


def text_report(result):
    """The report of a run, as text."""
    t, c, e = result.tally, result.census, result.expected
    n = c.kinds
    live_shared = n['shared']
    lines = [
        f'soak: {result.elapsed:.0f} s, {result.clients} clients '
        f'({DEVICES} browsers each), waitress {result.threads} threads, '
        f'Redis {result.redis_version}; loopback',
        '',
        f'requests {t.requests:,} ({result.rate:,.0f}/s); by status: '
        + ', '.join(f'{s} {k:,}' for s, k in sorted(t.statuses.items())),
        f'lost writes {t.lost_writes}, phantom writes {t.phantom_writes}, '
        f'lost sessions {t.lost_sessions}',
        f'tokens minted {t.minted:,}, redeemed {t.redeemed:,}, replays '
        f'refused {t.replays_refused:,}, accepted {t.replays_accepted}',
        'ended sessions told: '
        + ', '.join(f'{r} {k:,}' for r, k in sorted(t.ended_told.items())),
        f'shared account: {t.shared_logins:,} logins; displaced by another '
        f'login {t.shared_unborn:,} times before their session was written '
        f'(no cookie), {t.shared_displaced:,} times later (told: 401)',
        '',
        text_table(('operation', 'requests'),
              [(name, f'{k:,}') for name, k in t.operations.most_common()]),
        '',
        text_table(('keys at the end', 'count', 'expected'), [
            ('anonymous sessions', n['anonymous session'], e['anonymous']),
            ('logged-in sessions', n['user session'], e['users']),
            ('ended-session markers', n['ended marker'], e['ends']),
            ('shared account: sessions', live_shared, f'<= {MAX_SESSIONS}'),
            ('shared account: markers', n['shared marker'],
             t.shared_logins - live_shared),
            ('index keys (users with 2+ sessions)', n['index'], ''),
            ('sessions the index finds', c.entries,
             e['users'] + live_shared),
            ('token claims', n['token claim'], f'<= {result.recent_claims:,}'),
            ('unknown', n['unknown'], 0),
            ('all (DBSIZE)', c.keys, ''),
            ('without a TTL', len(c.no_ttl), 0),
        ]),
        '',
    ]  # fmt: skip
    if result.trends:
        lines += [
            text_table(
                ('memory (median)', 'first half', 'second half', 'growth',
                 'limit', ''),
                [(tr.name, fmt(tr.first, tr.unit), fmt(tr.second, tr.unit),
                  fmt(tr.growth, tr.unit, True),
                  '' if tr.limit is None else fmt(tr.limit, tr.unit),
                  '' if tr.limit is None else verdict(tr.ok))
                 for tr in result.trends],
            ),
            f'(the first {WARM_UP:.0%} of the run left out; limit: the '
            'larger of a share of the first half and a fixed slack)',
            '',
        ]  # fmt: skip
    lines.append(
        text_table(
            ('check', '', 'detail'),
            [(name, verdict(ok), d) for name, ok, d in result.checks],
            align='lll',
        )
    )
    if result.server_warnings:
        warnings = result.server_warnings.items()
        listed = ', '.join(f'{name} {k:,}' for name, k in warnings)
        lines += ['', f'server warnings (by logger): {listed}']
    for name, examples in sorted(t.examples.items()):
        lines.append(f'surprise: {name} x{t.surprises[name]}')
        lines += [f'    {example}' for example in examples]
    lines += [f'server: {line}' for line in result.server_errors[:10]]
    if c.no_ttl:
        lines.append('without a TTL: ' + ', '.join(c.no_ttl[:5]))
    lines += ['', 'PASS' if result.ok else 'FAIL: ' + ', '.join(result.failed)]
    return '\n'.join(lines)


def verdict(ok):
    return 'PASS' if ok else 'FAIL'


def soak(
    seconds=DEFAULT_SECONDS,
    clients=DEFAULT_CLIENTS,
    threads=DEFAULT_THREADS,
    redis_url=None,
    interval=None,
    seed=None,
    app=APP,
    say=None,
):
    """Run the soak; return a :class:`SoakResult` (``result.ok``).

    ``redis_url``: a server whose database is empty (default: a private
    one, or ``REDIS_URL``); ``interval``: seconds between memory samples
    (default: about 30 samples); ``app``: factory of the WSGI application
    served, ``module:name`` taking the Redis URL; ``say``: a callable for
    progress lines.
    """
    interval = interval or min(5.0, max(0.5, seconds / 30))
    seed = random.randrange(2**32) if seed is None else seed
    with RedisServer(redis_url) as server:
        client = redis.Redis.from_url(server.url, decode_responses=False)
        try:
            size = client.dbsize()
            if size:
                raise RuntimeError(
                    f'{server.url} holds {size} keys; the soak needs an '
                    'empty database (it accounts for every key)'
                )
            version = client.info('server')['redis_version']
            with ServerProcess(server.url, threads, app) as process:
                if say is not None:
                    say(
                        f'soak: {seconds:g} s, {clients} clients, waitress '
                        f'{threads} threads (pid {process.pid}, port '
                        f'{process.port}), Redis {server.url}, seed {seed}'
                    )
                elapsed, workers, samples = drive(
                    process.port, client, seconds, clients, interval, seed,
                    say,
                )  # fmt: skip
                census_time = time.time()
                census = take_census(client)
                process.stop()
                errors, warnings = process.log_summary()
        finally:
            client.close()
    tally = Tally()
    expected = collections.Counter()
    for worker in workers:
        tally.merge(worker.tally)
        expected.update(worker.expected_keys())
    result = SoakResult(
        seconds=seconds,
        clients=clients,
        threads=threads,
        elapsed=elapsed,
        redis_version=version,
        tally=tally,
        census=census,
        expected=expected,
        recent_claims=sum(
            1 for at in tally.redeemed_at if at > census_time - CLAIM_TTL
        ),
        samples=samples,
        trends=trends(samples, elapsed),
        server_errors=errors,
        server_warnings=warnings,
    )
    result.checks = judge(result)
    return result


def drive(port, client, seconds, clients, interval, seed, say):
    """Run the clients until the time is up, sampling memory meanwhile;
    return the seconds elapsed, the clients and the samples."""
    rng = random.Random(seed)
    start = time.monotonic()
    workers = [
        Client(n, port, start + seconds, rng.randrange(2**32))
        for n in range(clients)
    ]
    sampler = Sampler(port, client, workers, interval, say)
    sampler.sample()
    for worker in workers:
        worker.start()
    sampler.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    sampler.stop()
    sampler.sample()
    return elapsed, workers, sampler.samples


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m bench.soak',
        description=(
            'Soak the suite on loopback: waitress, a private Redis, many '
            'concurrent browsers for a fixed time; then audit the keys and '
            'the memory. Exits 1 when a check fails.'
        ),
    )
    parser.add_argument(
        '--seconds',
        type=float,
        default=float(os.environ.get(ENV_SECONDS) or DEFAULT_SECONDS),
        help=f'how long the clients run (default {DEFAULT_SECONDS}, or '
        f'${ENV_SECONDS})',
    )
    parser.add_argument('--clients', type=int, default=DEFAULT_CLIENTS)
    parser.add_argument(
        '--threads',
        type=int,
        default=DEFAULT_THREADS,
        help=f'waitress threads (default {DEFAULT_THREADS})',
    )
    parser.add_argument('--redis-url', help='default: a private server')
    parser.add_argument('--seed', type=int)
    parser.add_argument(
        '--interval', type=float, help='seconds between memory samples'
    )
    args = parser.parse_args(argv)
    result = soak(
        seconds=args.seconds,
        clients=args.clients,
        threads=args.threads,
        redis_url=args.redis_url,
        interval=args.interval,
        seed=args.seed,
        say=print,
    )
    print()
    print(text_report(result))
    return 0 if result.ok else 1


if __name__ == '__main__':
    sys.exit(main())
