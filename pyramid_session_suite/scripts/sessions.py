"""``session-suite``: the sessions of users, from the command line.

::

    session-suite development.ini list alice [--json]
    session-suite development.ini revoke alice HANDLE [HANDLE ...]
    session-suite development.ini revoke-all alice
    session-suite development.ini prune [alice]
    session-suite development.ini counts [--json]
    session-suite production.ini check [--json]

Like Pyramid's own scripts (``pshell``, ``proutes``), it loads the
application of ``CONFIG_URI`` (``file.ini`` or ``file.ini#name``) with
:func:`pyramid.paster.bootstrap` and works with its registry: the per-user
session index of ``pyramid_session_suite.user_index``, which the
application must include. Sessions are ended through the application's
:class:`~pyramid_session_suite.user_index.SessionTracker` with the
bootstrap request, so ``SessionRevoked`` subscribers hear of them (reason
``operator``) and their browsers are told why on their next request.
``check`` needs no index: it checks every Redis store of the application
(see :mod:`pyramid_session_suite.health`).

Exit codes: 0 done, 1 nothing matched (``revoke``) or a store has a
problem (``check``), 2 usage or configuration error, 3 Redis unreachable
or failing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
import datetime
import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO, cast
from paste.deploy.loadwsgi import APP, loadcontext
import plaster
from plaster import PlasterError
from pyramid.exceptions import ConfigurationError
from pyramid.paster import bootstrap, setup_logging
from pyramid.scripting import prepare
import redis

from ..interfaces import IUserIndex

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.scripting import AppEnvironment

    from ..health import HealthReport, ServerReport
    from ..redis.clients import RedisClient
    from ..user_index import SessionTracker
    from ..user_index.store import UserIndex

EXIT_OK = 0
EXIT_NO_MATCH = 1
EXIT_CONFIG = 2
EXIT_REDIS = 3

#: how the ids that ``UserIndex.users()`` cannot read back are shown
UNREADABLE = '(unreadable id)'

#: the reason recorded for the sessions this script ends
REASON = 'operator'

INCLUDE = 'pyramid_session_suite.user_index'

DESCRIPTION = f"""\
List, end and count the sessions of users, through the per-user session
index of a Pyramid application that includes {INCLUDE}.
CONFIG_URI is the application's ini file, optionally with a #name
(development.ini#main), as for pshell and proutes.
"""

EPILOG = """\
exit codes: 0 done, 1 nothing matched (revoke) or a store has a problem
(check), 2 usage or configuration error, 3 Redis unreachable or failing.
"""


class UsageError(Exception):
    """A command line that cannot be carried out (exit code 2)."""


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``session-suite`` with ``argv`` (default: ``sys.argv[1:]``);
    write results to ``out`` and errors to ``err`` (default: standard
    output and error). Return the exit code."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = make_parser()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (already shown)
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    settings = dict(args.settings or ()) | dict(args.sub_settings or ())
    try:
        setup_logging(args.config_uri)
        env = load(args.config_uri, settings)
    except UsageError as exc:
        return fail(err, str(exc), EXIT_CONFIG)
    except (PlasterError, OSError, LookupError, ConfigurationError) as exc:
        if isinstance(exc, (KeyError, IndexError)):
            raise  # a bug in the application factory: keep its traceback
        return fail(err, f'cannot load {args.config_uri}: {exc}', EXIT_CONFIG)
    except redis.RedisError as exc:  # an application that uses Redis early
        message = f'Redis failed while loading {args.config_uri}: '
        return fail(err, message + one_line(exc), EXIT_REDIS)
    try:
        if not args.needs_index:
            return cast(int, args.command(env['registry'], args, out))
        tracker: SessionTracker | None = env['registry'].queryUtility(
            IUserIndex
        )
        if tracker is None:
            return fail(
                err,
                f'the application of {args.config_uri} does not include '
                f'{INCLUDE}: there is no session index to work with (add '
                f'config.include({INCLUDE!r}) to the application, or '
                f'{INCLUDE} to its pyramid.includes setting)',
                EXIT_CONFIG,
            )
        console = Console(tracker, env['request'], out)
        try:
            return cast(int, args.command(console, args))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            where = redis_address(tracker.index.client)
            message = f'cannot reach Redis at {where}: {one_line(exc)}'
            return fail(err, message, EXIT_REDIS)
        except redis.RedisError as exc:
            where = redis_address(tracker.index.client)
            message = f'Redis error at {where}: {one_line(exc)}'
            return fail(err, message, EXIT_REDIS)
    finally:
        env['closer']()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='session-suite',
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_setting_option(parser, 'settings')
    parser.add_argument(
        'config_uri',
        metavar='CONFIG_URI',
        help='the application: development.ini or development.ini#name',
    )
    commands = parser.add_subparsers(
        title='commands', metavar='COMMAND', required=True
    )
    common = argparse.ArgumentParser(add_help=False)
    add_setting_option(common, 'sub_settings')

    def command(
        name: str,
        function: Callable[..., int],
        help: str,
        description: str,
        needs_index: bool = True,
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=description,
            epilog=EPILOG,
            parents=[common],
        )
        sub.set_defaults(command=function, needs_index=needs_index)
        return sub

    sub = command(
        'list',
        cmd_list,
        "list a user's sessions",
        'List the live sessions of USERID, most recently active first: '
        'handle, client (browser and system), IP address, location, '
        'creation, last activity (UTC) and time left before the session '
        'expires if left idle.',
    )
    add_userid(sub)
    add_json_option(sub)

    sub = command(
        'revoke',
        cmd_revoke,
        'end some sessions of a user',
        'End the sessions of USERID with the given handles (as shown by '
        '"list"); their browsers are anonymous on their next request. '
        'Prints how many sessions ended; the exit code is 1 when none did.',
    )
    add_userid(sub)
    sub.add_argument(
        'handles',
        metavar='HANDLE',
        nargs='+',
        help='a session handle, as shown by "list"',
    )

    sub = command(
        'revoke-all',
        cmd_revoke_all,
        'end every session of a user',
        'End every session of USERID (e.g. after a password change or a '
        'compromise). Prints how many sessions ended.',
    )
    add_userid(sub)

    sub = command(
        'prune',
        cmd_prune,
        'drop index entries whose session is gone',
        'Drop the index entries whose session no longer exists in Redis '
        '(expired or deleted), for USERID or, without it, for every user '
        'with a session or an index (found with SCAN). Entries of sessions '
        'logged in by earlier releases younger than their login grace '
        'period are kept. Reads and writes of the index prune as they go; '
        'this only tidies up ahead of them.',
    )
    add_userid(sub, nargs='?', default=None)

    sub = command(
        'counts',
        cmd_counts,
        'count the live sessions of every user',
        'For every user with an index (found with SCAN), the number of '
        'live sessions, and the total. Counting prunes dead entries as it '
        f'goes. Users whose id is too long to be read back from Redis are '
        f'shown as "{UNREADABLE}" and not counted.',
    )
    add_json_option(sub)

    sub = command(
        'check',
        cmd_check,
        'check the session stores',
        'Connect to every Redis store of the application and report, for '
        'each of its servers: whether it answers and its round-trip time, '
        'its Redis version (6.2 or later: GETEX), its role, a '
        'maxmemory-policy that may evict sessions (any but noeviction, '
        'unless maxmemory is 0), the cluster state, the Sentinel primary. '
        'The exit code is 1 when a store has a problem, 3 when one cannot '
        'be reached.',
        needs_index=False,
    )
    add_json_option(sub)
    return parser


def add_setting_option(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        '--setting',
        dest=dest,
        metavar='KEY=VALUE',
        action='append',
        type=setting_arg,
        help='override a setting of the application (repeatable), e.g. '
        '--setting session_suite.redis_url=redis://replica:6379/0',
    )


def add_userid(parser: argparse.ArgumentParser, **kw: Any) -> None:
    parser.add_argument(
        'userid',
        metavar='USERID',
        type=userid_arg,
        help='the user id, as the application logs users in with',
        **kw,
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--json', action='store_true', help='print JSON instead of a table'
    )


def setting_arg(value: str) -> tuple[str, str]:
    key, sep, setting = value.partition('=')
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, not {value!r}')
    return key.strip(), setting


def userid_arg(value: str) -> str:
    if not value:
        raise argparse.ArgumentTypeError('a user id cannot be empty')
    return value


# -- loading the application --------------------------------------------------


def load(config_uri: str, settings: Mapping[str, str]) -> AppEnvironment:
    """The environment of :func:`pyramid.paster.bootstrap` for the
    application of ``config_uri``, made with ``settings`` overriding those
    of its ini section."""
    options = {'__script__': 'session-suite'}
    if not settings:
        return bootstrap(config_uri, options=options)
    app = load_app(config_uri, settings, options)
    env = prepare()  # the registry of the application just made
    env['app'] = app
    return env


def load_app(
    config_uri: str, settings: Mapping[str, str], options: Mapping[str, str]
) -> WSGIApplication:
    """:func:`pyramid.paster.get_app` with ``settings`` added to the
    ``[app:...]`` section that makes the application (through a pipeline,
    ``filter-with`` or ``[filter-app:...]`` if need be)."""
    loader = plaster.get_loader(config_uri, protocols=['wsgi'])
    spec = getattr(loader, 'pastedeploy_spec', None)
    if spec is None:
        raise UsageError(
            f'--setting needs a PasteDeploy ini file, not {config_uri}'
        )
    here = os.path.dirname(loader.filepath) if loader.filepath else None
    global_conf = {
        '__file__': loader.filepath,
        'here': here or os.getcwd(),
        **loader.uri.options,
        **options,
    }
    context = loadcontext(
        APP,
        spec,
        name=loader.uri.fragment or None,
        relative_to=loader.relative_to,
        global_conf=global_conf,
    )
    target = context
    while target is not None and target.object is None:
        target = getattr(target, 'app_context', None) or getattr(
            target, 'next_context', None
        )
    if target is None or target.protocol != 'paste.app_factory':
        raise UsageError(
            f'--setting: {config_uri} does not name an application '
            'section ([app:...]) whose settings could be changed'
        )
    target.local_conf.update(settings)
    return cast('WSGIApplication', context.create())


# -- the commands -------------------------------------------------------------


class Console:
    """What the commands work with."""

    def __init__(
        self, tracker: SessionTracker, request: Request, out: TextIO
    ) -> None:
        self.tracker = tracker
        self.index = tracker.index
        self.request = request
        self.out = out

    def print(self, *lines: str) -> None:
        for line in lines:
            self.out.write(line + '\n')

    def json(self, value: object) -> None:
        self.out.write(json.dumps(value, indent=2, sort_keys=True) + '\n')

    def users(self) -> tuple[list[str], int]:
        """Every user with an index, once each: (readable ids sorted,
        number of unreadable ones)."""
        seen, unreadable = set(), 0
        for userid in self.index.users():
            if userid is None:
                unreadable += 1
            else:
                seen.add(userid)
        return sorted(seen), unreadable


def cmd_list(console: Console, args: argparse.Namespace) -> int:
    entries = console.index.list(args.userid)
    if args.json:
        sessions = [
            {key: value for key, value in entry.items() if key != 'current'}
            for entry in entries
        ]
        console.json({'userid': args.userid, 'sessions': sessions})
        return EXIT_OK
    who = printable(args.userid)
    if not entries:
        console.print(f'{who} has no sessions')
        return EXIT_OK
    rows = [
        (
            entry['handle'],
            printable(entry.get('label') or '-'),
            printable(entry.get('ip') or '-'),
            printable(entry.get('location') or '-'),
            timestamp(entry.get('created')),
            timestamp(entry.get('last_seen')),
            duration(entry.get('expires_in')),
        )
        for entry in entries
    ]
    header = (
        'HANDLE',
        'CLIENT',
        'IP',
        'LOCATION',
        'CREATED (UTC)',
        'LAST SEEN (UTC)',
        'EXPIRES IN',
    )
    console.print(
        f'{plural(len(entries), "session")} of {who}, most recent first:',
        *table(header, rows),
    )
    return EXIT_OK


def cmd_revoke(console: Console, args: argparse.Namespace) -> int:
    handles = list(dict.fromkeys(args.handles))
    count = console.tracker.revoke(
        console.request, args.userid, handles, reason=REASON
    )
    who = printable(args.userid)
    if count == 0:
        console.print(
            f'no session of {who} matched: nothing ended '
            '(see "list" for the handles)'
        )
        return EXIT_NO_MATCH
    line = f'ended {plural(count, "session")} of {who}'
    missed = len(handles) - count
    if missed > 0:
        line += f' ({plural(missed, "handle")} matched nothing)'
    console.print(line)
    return EXIT_OK


def cmd_revoke_all(console: Console, args: argparse.Namespace) -> int:
    count = console.tracker.revoke_all(
        console.request, args.userid, reason=REASON
    )
    console.print(
        f'ended {plural(count, "session")} of {printable(args.userid)}'
    )
    return EXIT_OK


def prune_user(index: UserIndex, userid: str) -> tuple[int, int]:
    """Prune the index of ``userid``; return ``(removed, live)``."""
    live, removed = index.prune_counts(userid)
    return removed, live


def cmd_prune(console: Console, args: argparse.Namespace) -> int:
    if args.userid is not None:
        removed, live = prune_user(console.index, args.userid)
        console.print(
            f'{printable(args.userid)}: removed '
            f'{plural(removed, "dead entry", "dead entries")}, '
            f'{plural(live, "live session")} left'
        )
        return EXIT_OK
    userids, unreadable = console.users()
    total_removed = total_live = pruned_users = 0
    for userid in userids:
        removed, live = prune_user(console.index, userid)
        if removed:
            pruned_users += 1
            console.print(
                f'{printable(userid)}: removed '
                f'{plural(removed, "dead entry", "dead entries")}'
            )
        total_removed += removed
        total_live += live
    console.print(
        f'removed {plural(total_removed, "dead entry", "dead entries")} '
        f'of {plural(pruned_users, "user")}; '
        f'{plural(len(userids), "user")} checked, '
        f'{plural(total_live, "live session")} left'
    )
    if unreadable:
        console.print(
            f'skipped {plural(unreadable, "user")} shown as {UNREADABLE}: '
            'their index is pruned when next read, and expires on its own'
        )
    return EXIT_OK


def cmd_counts(console: Console, args: argparse.Namespace) -> int:
    userids, unreadable = console.users()
    counts = {}
    for userid in userids:
        count = console.index.count(userid)
        if count:  # 0: every entry was dead, and is gone now
            counts[userid] = count
    total = sum(counts.values())
    if args.json:
        console.json(
            {'users': counts, 'total': total, 'unreadable': unreadable}
        )
        return EXIT_OK
    rows = [(printable(userid), str(n)) for userid, n in counts.items()]
    rows += [(UNREADABLE, '?')] * unreadable
    if rows:
        console.print(*table(('USER', 'SESSIONS'), rows))
    console.print(
        f'total: {plural(total, "live session")}, '
        f'{plural(len(counts), "user")}'
    )
    if unreadable:
        console.print(
            f'({plural(unreadable, "user")} with an unreadable id not counted)'
        )
    return EXIT_OK


def cmd_check(
    registry: Registry, args: argparse.Namespace, out: TextIO
) -> int:
    from ..health import check

    report = check(registry)
    if args.json:
        out.write(json.dumps(report.as_dict(), indent=2) + '\n')
    else:
        out.write(''.join(line + '\n' for line in health_lines(report)))
    if not report.reachable:
        return EXIT_REDIS
    return EXIT_OK if report.ok else EXIT_NO_MATCH


def health_lines(report: HealthReport) -> list[str]:
    """The report of ``check``, for people."""
    lines = []
    if not report.stores:
        return ['no Redis session store configured']
    for store in report.stores:
        namespaces = ', '.join(store.namespaces) or '(no namespace)'
        status = 'ok' if store.ok else 'PROBLEM'
        lines.append(f'{store.kind} {store.address} [{namespaces}]: {status}')
        if store.sentinels is not None:
            answered, total = store.sentinels
            primary = store.primary or 'unknown'
            lines.append(
                f'  primary {primary} ({answered} of {total} Sentinels '
                'answered)'
            )
        rows = [
            (
                server.address,
                server.role or '-',
                (server.version or '?') if server.reachable else '-',
                f'{server.rtt * 1000:.2f} ms' if server.rtt else '-',
                memory(server),
                server.cluster_state or '-',
            )
            for server in store.servers
        ]
        if rows:
            header = ('SERVER', 'ROLE', 'REDIS', 'RTT', 'MAXMEMORY', 'CLUSTER')
            lines += ['  ' + line for line in table(header, rows)]
        lines += [f'  problem: {printable(p)}' for p in store.problems]
        lines += [f'  warning: {printable(w)}' for w in store.warnings]
    bad = sum(not store.ok for store in report.stores)
    total = len(report.stores)
    lines.append(
        f'{plural(total, "store")} checked: '
        + (f'{bad} with problems' if bad else 'all healthy')
    )
    return lines


def memory(server: ServerReport) -> str:
    """``maxmemory`` and its policy, as a column of ``check``."""
    if not server.reachable:
        return '-'
    policy = server.policy or 'policy ?'
    if server.maxmemory is None:
        return f'? {policy}'
    if not server.maxmemory:
        return f'none ({policy})'
    return f'{size(server.maxmemory)} {policy}'


def size(count: float) -> str:
    """``'512 B'``, ``'100 MiB'``, ``'1.5 GiB'``."""
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if count < 1024 or unit == 'GiB':
            break
        count /= 1024
    return f'{count:.3g} {unit}'


# -- output -------------------------------------------------------------------


def fail(err: TextIO, message: str, code: int) -> int:
    err.write(f'session-suite: error: {message}\n')
    return code


def one_line(exc: BaseException) -> str:
    return ' '.join(str(exc).split()) or type(exc).__name__


def redis_address(client: RedisClient) -> str:
    """Where ``client`` connects, without its credentials."""
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return repr(client)
    if kwargs.get('path'):
        where = kwargs['path']
    else:
        where = f'{kwargs.get("host", "localhost")}:{kwargs.get("port", 6379)}'
    return f'{where} (db {kwargs.get("db", 0)})'


def printable(text: object) -> str:
    """``text`` with control characters escaped: user ids, user agents and
    locations come from outside and must not drive the terminal."""
    return ''.join(
        char if char.isprintable() else char.encode('unicode_escape').decode()
        for char in str(text)
    )


def plural(count: int, singular: str, plural: str | None = None) -> str:
    return f'{count} {singular if count == 1 else plural or singular + "s"}'


def timestamp(seconds: float | None) -> str:
    if not seconds:
        return '-'
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime('%Y-%m-%d %H:%M:%S')


def duration(seconds: float | None) -> str:
    """``'19m 58s'``, ``'3h 05m'``, ``'2d 04h'``; ``'never'`` for
    ``None`` (no expiry)."""
    if seconds is None:
        return 'never'
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f'{seconds}s'
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f'{minutes}m {seconds:02d}s'
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f'{hours}h {minutes:02d}m'
    days, hours = divmod(hours, 24)
    return f'{days}d {hours:02d}h'


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a left-aligned text table."""
    lines = [header, *rows]
    columns = zip(*lines, strict=True)
    widths = [max(len(cell) for cell in column) for column in columns]
    return [
        '  '.join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    ]


if __name__ == '__main__':
    sys.exit(main())
