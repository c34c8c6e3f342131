"""``python -m fuzz [TARGET ...] [--runs N | --seconds S]``: run each
target in its own process and say how many inputs each tried."""

import argparse
import pathlib
import re
import subprocess
import sys
import time

#: the targets of :mod:`fuzz.targets` (importing it instruments and builds
#: an application: only the processes that fuzz do)
TARGETS = ('cookie', 'cookie_header', 'token', 'next', 'body', 'host')

HERE = pathlib.Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m fuzz')
    parser.add_argument('targets', nargs='*', help='default: all')
    parser.add_argument('--runs', type=int, default=200_000)
    parser.add_argument('--seconds', type=int, help='per target, not runs')
    parser.add_argument('--list', action='store_true')
    args = parser.parse_args(argv)
    if args.list:
        print('\n'.join(TARGETS))
        return 0
    names = args.targets or list(TARGETS)
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f'unknown targets: {", ".join(sorted(unknown))}')
    crashes = HERE / 'crashes'
    crashes.mkdir(exist_ok=True)
    budget = (
        f'-max_total_time={args.seconds}'
        if args.seconds
        else f'-runs={args.runs}'
    )
    failed = []
    for name in names:
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                '-m',
                'fuzz.run',
                name,
                budget,
                f'-artifact_prefix={crashes}/{name}-',
                '-print_final_stats=1',
            ],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        runs = re.findall(r'Done (\d+) runs', done.stderr)
        tried = runs[-1] if runs else '?'
        status = 'ok' if done.returncode == 0 else 'FAILED'
        print(f'{name:14} {status:6} {tried:>9} inputs  {seconds:6.0f} s')
        if done.returncode:
            failed.append(name)
            print(done.stderr[-3000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
