"""``python -m bench``: run the benchmark, print the table, write it to
``bench/results/``."""

import argparse
import pathlib
import shlex
import sys

from .memory import DEFAULT_SESSIONS, SMOKE_SESSIONS
from .report import budget_checks, rst_report, text_report
from .runner import DEFAULT_ITERATIONS, DEFAULT_REPEAT, run
from .scenarios import LIST_SIZE, SMOKE_LIST_SIZE

RESULTS = pathlib.Path(__file__).resolve().parent / 'results'


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m bench',
        description=(
            'Compare bare Pyramid (floor), pyramid_session_multi with '
            'pyramid_session_redis (anchor) and pyramid_session_suite '
            '(suite) through in-process WSGI calls, against the physical '
            'limit of a read and a write (limit) and with both reply '
            'parsers of redis-py; profile the suite; load them over HTTP '
            '(with wrk, if installed); measure the Redis memory their '
            'sessions take.'
        ),
    )
    parser.add_argument(
        '--iterations',
        type=int,
        metavar='N',
        help=f'requests per timed batch (default {DEFAULT_ITERATIONS})',
    )
    parser.add_argument(
        '--repeat',
        type=int,
        metavar='R',
        help=f'timed batches per cell (default {DEFAULT_REPEAT})',
    )
    parser.add_argument(
        '--memory-sessions',
        type=int,
        metavar='N',
        help=(
            'sessions per stack of the memory measurement (default '
            f'{DEFAULT_SESSIONS:,}; {SMOKE_SESSIONS} with --smoke)'
        ),
    )
    parser.add_argument(
        '--list-sessions',
        type=int,
        metavar='N',
        help=(
            f'sessions of the listed user (default {LIST_SIZE:,}; '
            f'{SMOKE_LIST_SIZE} with --smoke)'
        ),
    )
    parser.add_argument(
        '--smoke',
        action='store_true',
        help='a few requests per cell, to check that it runs',
    )
    parser.add_argument(
        '--redis-url',
        metavar='URL',
        help='use this Redis server (default: REDIS_URL, else a private one)',
    )
    parser.add_argument(
        '--output',
        type=pathlib.Path,
        metavar='PATH',
        help=(
            'where to write the reStructuredText report (default '
            'bench/results/latest.rst, or smoke.rst with --smoke)'
        ),
    )
    parser.add_argument(
        '--no-http',
        action='store_true',
        help=(
            'skip the HTTP layer (waitress on loopback, loaded by wrk) and '
            'the tabs scenario'
        ),
    )
    parser.add_argument(
        '--no-profile',
        action='store_true',
        help="skip the profile of the suite's read and write paths",
    )
    parser.add_argument(
        '--strict',
        action='store_true',
        help='exit with status 1 if a round-trip budget is missed',
    )
    return parser.parse_args(argv)


def main(argv=None, redis_url=None):
    """Run the benchmark from the command line; return the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    args = parse_args(argv)
    results = run(
        iterations=args.iterations,
        repeat=args.repeat,
        smoke=args.smoke,
        memory_sessions=args.memory_sessions,
        list_size=args.list_sessions,
        redis_url=args.redis_url or redis_url,
        http=not args.no_http,
        profile=not args.no_profile,
    )
    command = shlex.join([sys.executable, '-m', 'bench', *argv])
    print(text_report(results, command), end='')
    output = args.output
    if output is None:
        output = RESULTS / ('smoke.rst' if args.smoke else 'latest.rst')
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(rst_report(results, command), encoding='utf-8')
    print(f'\nwritten to {output}', file=sys.stderr)
    missed = [
        line
        for line, met, round_trips in budget_checks(results)
        if round_trips and not met
    ]
    if args.strict and missed:
        print(f'--strict: round-trip budget missed: {missed}', file=sys.stderr)
        return 1
    return 0
