"""The benchmark's smoke mode runs, and the Redis round trips it counts are
the ones the design promises. Nothing here looks at timings."""

import hashlib
import io
import itertools
import logging
import re
import statistics
import pytest
import redis
from redis.crc import key_slot

from bench import main, memory, profiling, run
from bench.apps import LIMIT, STACKS
from bench.counting import default_parser
from bench.loopback import find_wrk
from bench.memory import db_client
from bench.report import (
    COLUMNS,
    LOGIN_COST_COLUMNS,
    MEMORY_COLUMNS,
    budget_checks,
    http_title,
    login_cost_rows,
    memory_rows,
    memory_title,
    parser_rows,
    profile_rows,
    rows,
    rst_report,
    text_report,
    text_table,
)
from bench.runner import LIST_USER
from bench.scenarios import INDEX_USER, POLICY_USER, SMOKE_LIST_SIZE, USER
from pyramid_session_suite.redis import stored
from pyramid_session_suite.user_index.store import user_tag

# pyramid_session_redis (the anchor) calls the deprecated Redis.setex
pytestmark = pytest.mark.filterwarnings(
    'ignore:Call to deprecated setex:DeprecationWarning'
)

#: the listing scenario of the smoke run (the full run lists 1,000)
LIST = f'list {SMOKE_LIST_SIZE}'

#: the logged-in visitor without all the features: the suite only
SUITE_ONLY = (
    'plain user read',
    'plain user write',
    'index user read',
    'policy user read',
)

#: whether the run has the pure-Python parser's stacks too
HIREDIS = default_parser() == 'hiredis'

#: whether the run has the HTTP layer (loaded by wrk)
WRK = find_wrk() is not None


@pytest.fixture(scope='module')
def smoke_run(redis_server):
    """The results of a smoke run, and the progress lines it printed."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    progress = io.StringIO()
    found = run(smoke=True, redis_url=redis_server.url, progress=progress)
    return found, progress.getvalue().splitlines()


@pytest.fixture(scope='module')
def results(smoke_run):
    return smoke_run[0]


@pytest.fixture(scope='module')
def progress(smoke_run):
    return smoke_run[1]


def sequence(results, scenario, stack):
    """The one command sequence of the counted requests of a cell."""
    sequences = results.cell(scenario, stack).sequences
    assert len(sequences) == 1, sequences
    return [list(trip) for trip in sequences[0]]


def counted(results, scenario, stack):
    """The round trips of the first counted request of a cell, as lists of
    commands, each a list of arguments (bytes)."""
    return results.cell(scenario, stack).counted[0]


@pytest.mark.parametrize(
    ('scenario', 'commands'),
    [
        ('untouched', []),
        ('read', [['GETEX']]),
        ('write', [['GETEX'], ['EVALSHA']]),
        ('new', [['SET']]),
        # logged in, with the policy and the user index (touch_interval
        # 60 s): the bookkeeping costs nothing in steady state
        ('user read', [['GETEX']]),
        ('user write', [['GETEX'], ['EVALSHA']]),
        # the same logged-in visitor without the index, policy and
        # cross-domain sharing: the same round trips
        ('plain user read', [['GETEX']]),
        ('plain user write', [['GETEX'], ['EVALSHA']]),
        # the same read with the user index alone, then with the policy
        # too: the same round trip
        ('index user read', [['GETEX']]),
        ('policy user read', [['GETEX']]),
        # the anonymous session, the index (and policy) script, then the
        # old id deleted and the new one created, pipelined
        ('login', [['GETEX'], ['EVALSHA'], ['DEL', 'EVAL']]),
        (LIST, [['EVALSHA']]),
        # a hand-off token minted and opened: no Redis at all
        ('token', []),
        # minted, opened and claimed: one script, one round trip
        ('token redeem', [['EVAL']]),
    ],
)
def test_suite_round_trips(results, scenario, commands):
    cell = results.cell(scenario, 'suite')
    assert cell.round_trips == len(commands)
    assert sequence(results, scenario, 'suite') == commands


@pytest.mark.parametrize(
    ('scenario', 'trips'),
    [
        ('user read', 1),
        ('user write', 2),
        ('plain user read', 1),
        ('plain user write', 2),
        ('index user read', 1),
        ('policy user read', 1),
    ],
)
def test_the_logged_in_scenarios_are_counted(progress, scenario, trips):
    """The progress line of the counted pass: the suite alone for the
    logged-in visitor without all the features."""
    stacks = list(STACKS) if scenario.startswith('user') else ['suite']
    [line] = [
        line.split()
        for line in progress
        if line.split()[: 1 + len(scenario.split())]
        == ['counted', *scenario.split()]
    ]
    shown = line[1 + len(scenario.split()) :]
    assert shown[::3] == stacks
    assert shown[shown.index('suite') + 1 :][:2] == [str(trips), 'rt']


def set_options(command):
    """The options of ``SET key value [options...]``."""
    assert command[0].upper() == b'SET'
    return [arg.upper() for arg in command[3:]]


def test_suite_creates_a_session_with_set_nx(results):
    ((command,),) = counted(results, 'new', 'suite')
    assert b'NX' in set_options(command)


@pytest.mark.parametrize(
    'scenario', ['write', 'user write', 'plain user write']
)
def test_suite_merges_the_keys_a_request_changed(results, scenario):
    _, (command,) = counted(results, scenario, 'suite')
    # the merge script, by its SHA1 (Redis holds it since the warm-up)
    sha = hashlib.sha1(stored.MERGE.encode()).hexdigest().encode()
    assert command[0].upper() == b'EVALSHA' and command[1] == sha
    # one key of the session (ttl, header, whole, 1 key set, 0 kept); ttl
    # 0: the key keeps the TTL the request's GETEX gave it
    session_key, ttl, _, whole, sets, kept = command[3:9]
    assert command[2] == b'1' and b'session' in session_key
    assert (ttl, whole, sets, kept) == (b'0', b'0', b'1', b'0')


def test_suite_login_moves_the_session_into_the_users_slot(results):
    for trips in results.cell('login', 'suite').counted:
        (getex,), (evalsha,), (delete, merge) = trips
        anonymous = getex[1]
        assert b'{' not in anonymous
        # the anonymous session that was read is the one deleted
        assert delete[1:] == [anonymous]
        # the index script writes the session in the user's first slot,
        # on the user's keys (those of earlier releases' index too)
        assert evalsha[2] == b'4'
        first, index, old_z, old_h = evalsha[3:7]
        tag = first[first.index(b'{') : first.index(b'}') + 1]
        assert first == b'session:' + tag + b':0'
        assert index.endswith(tag + b':i')
        assert old_z.endswith(tag + b':z') and old_h.endswith(tag + b':h')
        # the request's later changes (its new CSRF token) are merged
        assert merge[0].upper() == b'EVAL' and merge[3] == first


def test_the_logged_in_visitor_stays_logged_in_while_it_reads(redis_url):
    """The user scenarios measure a login the index keeps: the security
    policy of the logged-in stacks names the user, so the index does not
    forget the login on the first read (it would if nobody were logged
    in)."""
    from bench.apps import build, tracker_of
    from bench.driver import call, make_environ
    from bench.scenarios import USER, logged_in_visitor

    client = redis.Redis.from_url(redis_url)
    app = build('suite', client, 'users')
    environ = make_environ('/read', logged_in_visitor(app))
    for _ in range(3):
        assert call(app, environ.copy()).status == '200 OK'
    [entry] = tracker_of(app).index.list(USER)
    assert entry.handle


def test_each_login_is_a_new_user(results):
    logins = results.cell('login', 'suite').counted
    # the index keys of each login's user
    assert len({trips[1][0][3] for trips in logins}) == len(logins)


def test_the_token_redeem_claims_the_token_once(results):
    for trips in results.cell('token redeem', 'suite').counted:
        (((name, _, count, claim, sid, *_),),) = trips
        # one script: the claim, written only if the session exists
        assert name.upper() == b'EVAL' and count == b'2'
        assert claim.startswith(b'session_suite:xd:jti:')
        assert key_slot(claim) == key_slot(sid)
    claims = [
        t[0][0][3] for t in results.cell('token redeem', 'suite').counted
    ]
    # every hand-off is a new token
    assert len(set(claims)) == len(claims)


def test_the_listing_reads_one_users_index(results):
    ((command,),) = counted(results, LIST, 'suite')
    tag = user_tag(LIST_USER).encode()
    assert command[2:7] == [
        b'4',
        b'session:{' + tag + b'}:0',
        b'session_suite:users:{' + tag + b'}:i',
        b'session_suite:users:{' + tag + b'}:z',
        b'session_suite:users:{' + tag + b'}:h',
    ]


#: pyramid_session_redis stores an expiry time (``python_expires``, on by
#: default) that it renews at every save: a read-only request rewrites the
#: whole session (SETEX) instead of refreshing its TTL (EXPIRE) once the
#: clock has moved on by a second since the last save, so either may be
#: counted
ANCHOR_READ = [[['GET'], ['EXPIRE']], [['GET'], ['SETEX']]]


@pytest.mark.parametrize(
    ('scenario', 'allowed'),
    [
        ('untouched', [[]]),
        ('read', ANCHOR_READ),
        ('write', [[['GET'], ['SETEX']]]),
        ('new', [[['WATCH'], ['GET'], ['MULTI', 'SETEX', 'EXEC'], ['SETEX']]]),
        ('user read', ANCHOR_READ),
        ('user write', [[['GET'], ['SETEX']]]),
        (
            'login',
            [
                [
                    ['GET'],
                    ['DEL'],
                    ['WATCH'],
                    ['GET'],
                    ['MULTI', 'SETEX', 'EXEC'],
                    ['SETEX'],
                ]
            ],
        ),
    ],
)
def test_anchor_round_trips(results, scenario, allowed):
    cell = results.cell(scenario, 'anchor')
    assert cell.round_trips == len(allowed[0])
    for found in cell.sequences:
        assert [list(trip) for trip in found] in allowed


def test_the_anchor_has_no_listing(results):
    assert not results.has(LIST, 'anchor')
    assert not results.has(LIST, 'floor')
    lines = text_report(results, 'x').splitlines()
    key = [*LIST.split(), 'anchor']
    [row] = [line.split() for line in lines if line.split()[:3] == key]
    assert set(row[3:]) == {'-'}


def test_floor_never_calls_redis(results):
    for scenario in results.scenarios:
        if results.has(scenario.name, 'floor'):
            assert results.cell(scenario.name, 'floor').round_trips == 0


def test_every_cell_was_timed_and_reported(results):
    command = 'python -m bench --smoke'
    text = text_report(results, command)
    rst = rst_report(results, command)
    # the timings, then a section per part of the run, each with its table
    headings = ['Profile', 'Tabs', 'Memory', 'Login cost', 'Budget']
    headings += ['Reply parsers'] * HIREDIS + ['HTTP'] * WRK
    for heading in headings:
        assert f'\n{heading}\n{"-" * len(heading)}\n' in rst
    # one table for the timings and each section but the budget, and the
    # top functions of two profiles
    assert rst.count('.. list-table::') == len(headings) + 2
    names = [scenario.name for scenario in results.scenarios]
    assert names == [
        'untouched',
        'read',
        'write',
        'new',
        'user read',
        'user write',
        'plain user read',
        'plain user write',
        'index user read',
        'policy user read',
        'login',
        LIST,
        'token',
        'token redeem',
    ]
    width = max(map(len, names))
    for scenario in results.scenarios:
        for stack in scenario.stacks:
            assert len(results.cell(scenario.name, stack).batches) == 1
            if stack in (*STACKS, LIMIT):
                assert f'{scenario.name:<{width}}  {stack:<6}' in text
    # the read and write have their limit, and the pure-Python parser's
    # stacks if hiredis is installed
    limited = (*STACKS, LIMIT)
    if HIREDIS:
        limited += ('anchor/py', 'suite/py', 'limit/py')
    suite = ('suite',)
    assert [s.stacks for s in results.scenarios] == [
        STACKS,
        limited,
        limited,
        *[STACKS] * 3,
        *[suite] * 4,
        STACKS,
        *[suite] * 3,
    ]
    # the logged-in visitor without all the features: the suite only
    for name in SUITE_ONLY:
        [row] = [
            line.split()
            for line in text.splitlines()
            if line.split()[:4] == [*name.split(), 'anchor']
        ]
        assert set(row[4:]) == {'-'}
    assert 'token hand-off: mint + open' in text


def test_the_breakdown_visitors_are_users_of_their_own(results):
    """The reads of the breakdown load the session of a user of their own,
    in the user's slot of the index of their application."""
    for name, user in (
        ('index user read', INDEX_USER),
        ('policy user read', POLICY_USER),
        ('user read', USER),
    ):
        ((getex,),) = counted(results, name, 'suite')
        assert getex[1] == f'session:{{{user_tag(user)}}}:0'.encode()
    ((getex,),) = counted(results, 'plain user read', 'suite')
    assert b'{' not in getex[1]
    assert len({INDEX_USER, POLICY_USER, USER}) == 3
    assert len(INDEX_USER) == len(POLICY_USER) == len(USER)


def test_the_logged_in_read_is_broken_down_feature_by_feature(results):
    """One line after the features on / off: for each step of the
    logged-in read, the median over the repetitions of its time per
    request less the step before's; the total is their sum; no budget
    line."""
    lines = text_report(results, 'x').splitlines()
    features = 'logged-in features on / off (the same logged-in visitor), '
    [index] = [i for i, line in enumerate(lines) if line.startswith(features)]
    line = lines[index + 1]
    assert re.fullmatch(
        r'logged-in read, feature by feature \(us per request over plain '
        r'user read\): user index [+-][\d,]+, policy [+-][\d,]+, '
        r'cross-domain [+-][\d,]+ \(total [+-][\d,]+\)',
        line,
    ), line
    rates = [
        results.cell(name, 'suite').rates
        for name in (
            'plain user read',
            'index user read',
            'policy user read',
            'user read',
        )
    ]
    costs = [
        statistics.median(
            1e6 / rate - 1e6 / base
            for rate, base in zip(after, before, strict=True)
        )
        for before, after in itertools.pairwise(rates)
    ]
    steps = [
        f'{feature} {round(cost):+,}'
        for feature, cost in zip(
            ('user index', 'policy', 'cross-domain'), costs, strict=True
        )
    ]
    assert line == (
        'logged-in read, feature by feature (us per request over plain '
        f'user read): {", ".join(steps)} (total {round(sum(costs)):+,})'
    )
    assert f'- {line}\n' in rst_report(results, 'x')
    checks = [line for line, _, _ in budget_checks(results)]
    for name in ('index user read', 'policy user read'):
        assert not [line for line in checks if name in line]


def memory_row(results, measurement, stack):
    row = memory.find_row(results.memory, measurement, stack)
    assert row is not None, (measurement, stack)
    return row


def kinds(row):
    """``{kind: keys}`` of a memory row."""
    return {kind: found.keys for kind, found in row.kinds.items()}


def test_memory_is_measured_for_both_stacks(results, redis_server):
    assert [(row.measurement, row.stack) for row in results.memory] == [
        (measurement, stack)
        for measurement in memory.MEASUREMENTS
        for stack in ('anchor', 'suite')
    ]
    count = memory.SMOKE_SESSIONS
    for row in results.memory:
        assert row.sessions == count and row.db == results.memory[0].db
        assert row.keys == sum(kinds(row).values())
    # logged in, a user each: a session key each, no index key
    for stack in ('anchor', 'suite'):
        row = memory_row(results, memory.LOGGED_IN, stack)
        assert row.users == row.sessions == row.keys
        assert kinds(row) == {'session': count}
    # anonymous: a session key each, no user
    for stack in ('anchor', 'suite'):
        row = memory_row(results, memory.ANONYMOUS, stack)
        assert row.users is None
        assert kinds(row) == {'session': count}
    # two per user: the suite adds a user's index, a ZSET of both slots
    anchor = memory_row(results, memory.TWO_PER_USER, 'anchor')
    suite = memory_row(results, memory.TWO_PER_USER, 'suite')
    assert anchor.users == suite.users == count // 2
    assert kinds(anchor) == {'session': count}
    assert kinds(suite) == {'session': count, 'index': count // 2}
    assert suite.kind('index').value is None
    # ended: the anchor deletes the key, the suite leaves a short marker
    anchor = memory_row(results, memory.ENDED, 'anchor')
    suite = memory_row(results, memory.ENDED, 'suite')
    assert anchor.keys == 0 and anchor.value_bytes is None
    assert kinds(suite) == {'ended': count}
    ended = suite.kind('ended')
    # byte 0, a 16-byte digest, the reason
    assert ended.mean_value == 1 + 16 + len('revoked') == suite.value_bytes
    assert (
        0
        < suite.per_session()
        < memory_row(results, memory.LOGGED_IN, 'suite').per_session()
    )
    # what is measured makes sense: the logged-in session holds the user
    # id, MEMORY USAGE counts a value and more, used_memory grows by more
    # than the values
    for row in results.memory:
        for found in row.kinds.values():
            assert found.mean_usage > (found.mean_value or 0) > 0 or (
                found.kind == 'index' and found.mean_usage > 0
            )
        if row.keys:
            assert row.used > row.keys * row.value_bytes
    for stack in ('anchor', 'suite'):
        assert (
            memory_row(results, memory.LOGGED_IN, stack).value_bytes
            > memory_row(results, memory.ANONYMOUS, stack).value_bytes
        )
    # the ratios to the anchor, but where the anchor keeps nothing
    for measurement in (memory.LOGGED_IN, memory.ANONYMOUS):
        assert 0.2 < memory.ratio(results.memory, measurement) < 5
    assert memory.ratio(results.memory, memory.TWO_PER_USER) > (
        memory.ratio(results.memory, memory.LOGGED_IN)
    )
    assert memory.ratio(results.memory, memory.ENDED) is None
    # the measurement's database is left empty
    client = db_client(redis_server.url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()
        client.connection_pool.disconnect()


def test_the_memory_table_has_a_total_and_kinds_per_measurement(results):
    table = memory_rows(results)
    parts = [tuple(row[:3]) for row in table]
    assert parts == [
        (memory.LOGGED_IN, 'anchor', 'total'),
        (memory.LOGGED_IN, 'suite', 'total'),
        (memory.LOGGED_IN, 'suite', 'session keys'),
        (memory.ANONYMOUS, 'anchor', 'total'),
        (memory.ANONYMOUS, 'suite', 'total'),
        (memory.ANONYMOUS, 'suite', 'session keys'),
        (memory.TWO_PER_USER, 'anchor', 'total'),
        (memory.TWO_PER_USER, 'suite', 'total'),
        (memory.TWO_PER_USER, 'suite', 'session keys'),
        (memory.TWO_PER_USER, 'suite', 'index keys'),
        (memory.ENDED, 'anchor', 'total'),
        (memory.ENDED, 'suite', 'total'),
        (memory.ENDED, 'suite', 'ended markers'),
    ]
    rows = {tuple(row[:3]): row for row in table}
    count = f'{memory.SMOKE_SESSIONS:,}'
    goals = {memory.LOGGED_IN: '1.25', memory.ANONYMOUS: '1'}
    # sessions, users, keys
    assert rows[memory.LOGGED_IN, 'suite', 'total'][3:6] == [count] * 3
    assert rows[memory.ANONYMOUS, 'suite', 'total'][3:6] == [count, '-', count]
    assert rows[memory.TWO_PER_USER, 'suite', 'index keys'][5:7] == [
        f'{memory.SMOKE_SESSIONS // 2:,}',
        '-',
    ]
    assert rows[memory.ENDED, 'anchor', 'total'][5:8] == ['0', '-', '-']
    for key, row in rows.items():
        ratio, goal = row[-2:]
        if key[1:] != ('suite', 'total') or key[0] == memory.ENDED:
            assert ratio == '-'
        else:
            found = memory.ratio(results.memory, key[0])
            assert ratio == f'{found:.2f}'
        most = goals.get(key[0]) if key[1:] == ('suite', 'total') else None
        if most is not None:
            assert goal in (f'<= {most} PASS', f'<= {most} MISS')
        else:
            assert goal == '-'
    text = text_report(results, 'x')
    table = text_table(MEMORY_COLUMNS, memory_rows(results))
    assert f'{memory_title(results)}\n\n{table}\n' in text
    assert 'MEMORY USAGE (SAMPLES 0) is per key' in text
    # the goals are budget lines, PASS or MISS, never --strict
    checks = [c for c in budget_checks(results) if c[0].startswith('memory')]
    assert [line.split(':')[0] for line, _, _ in checks] == [
        'memory logged-in',
        'memory anonymous',
    ]
    assert not any(round_trips for _, _, round_trips in checks)
    for line, met, _ in checks:
        assert f'{"PASS" if met else "MISS"}  {line}' in text
    rst = rst_report(results, 'x')
    assert '\nMemory\n------\n' in rst and 'ended markers' in rst


def test_the_login_cost_is_measured_for_each_size(results):
    costs = results.login_cost
    assert [cost.sessions for cost in costs] == list(memory.SMOKE_LOGIN_SIZES)
    for cost in costs:
        assert cost.logins == memory.SMOKE_LOGINS
        # one login script, then the session's write: two round trips
        assert cost.script_calls == cost.logins and cost.calls == 1
        assert cost.round_trips == 2
        assert cost.sequences == [(('EVALSHA',), ('EVALSHA',))]
        assert cost.server_micros > 0 and cost.micros > 0
        # a user of one session has no index key
        assert cost.index == (cost.sessions > 1)
    text = text_report(results, 'x')
    table = text_table(LOGIN_COST_COLUMNS, login_cost_rows(results))
    assert table in text
    lines = table.splitlines()[2:]
    assert [line.split()[0] for line in lines] == [
        f'{size:,}' for size in memory.SMOKE_LOGIN_SIZES
    ]
    assert 'a whole login request (login scenario' in text
    rst = rst_report(results, 'x')
    assert '\nLogin cost\n----------\n' in rst


def test_main_writes_the_report(results, tmp_path, capsys, monkeypatch):
    calls = []

    def fake_run(**kw):
        calls.append(kw)
        return results

    monkeypatch.setattr('bench.cli.run', fake_run)
    output = tmp_path / 'smoke.rst'
    argv = ['--smoke', '--iterations', '2', '--memory-sessions', '20']
    argv += ['--output', str(output)]
    assert main(argv, redis_url='redis://example.invalid/0') == 0
    assert calls == [
        {
            'iterations': 2,
            'repeat': None,
            'smoke': True,
            'memory_sessions': 20,
            'list_size': None,
            'redis_url': 'redis://example.invalid/0',
            'http': True,
            'profile': True,
        }
    ]
    out = capsys.readouterr().out
    assert 'GETEX' in out and 'EVALSHA' in out
    assert output.read_text().startswith('Benchmark')
    assert 'PASS  read: 1 round trips (1)' in out


@pytest.mark.skipif(not WRK, reason='wrk is not installed')
def test_wrk_loaded_the_http_layer_from_a_process_of_its_own(results):
    http = results.http
    assert http.scenarios == ('untouched', 'read', 'write')
    assert set(http.cells) == {
        (name, stack) for name in http.scenarios for stack in STACKS
    }
    assert http.generator.startswith('wrk') and http.rounds == 1
    for cell in http.cells.values():
        # every request answered, with 200
        assert len(cell.rates) == 1 and cell.rate > 0
        assert cell.statuses == {200: cell.requests} and cell.requests > 0
        assert 0 < cell.p50 <= cell.p90 <= cell.p99
    # no "Task queue depth" warnings from the bench's servers
    level = logging.getLogger('waitress.queue').getEffectiveLevel()
    assert level >= logging.ERROR
    text = text_report(results, 'x')
    assert f'loaded by {http.generator} in a process of its own' in text
    assert http_title(http) in text and 'p99 ms' in text


def test_without_wrk_there_is_no_http_layer(results, monkeypatch):
    from bench.loopback import run_http

    if not WRK:
        assert results.http is None
        assert results.environment['wrk'] == 'not installed'
        assert '\nHTTP\n----\n' not in rst_report(results, 'x')
    monkeypatch.setattr('bench.loopback.find_wrk', lambda: None)
    with pytest.raises(RuntimeError, match='wrk is not installed'):
        run_http({}, (), {}, print)


def test_budget_round_trips_pass_and_strict_uses_them(
    results, tmp_path, monkeypatch
):
    checks = budget_checks(results)
    round_trips = [line for line, met, rt in checks if rt]
    assert len(round_trips) == 5
    assert all(met for _, met, rt in checks if rt)
    lines = text_report(results, 'x').splitlines()
    # a timing budget is reported, PASS or MISS (never checked here)
    assert any(line[6:].startswith('token mint + redeem') for line in lines)
    monkeypatch.setattr('bench.cli.run', lambda **kw: results)
    argv = ['--smoke', '--strict']
    argv += ['--output', str(tmp_path / 'smoke.rst')]
    assert main(argv) == 0
    # a round-trip budget missed fails --strict (and only --strict)
    monkeypatch.setattr(
        'bench.cli.budget_checks', lambda results: [('read: 1', False, True)]
    )
    assert main(argv) == 1
    assert main(argv[:1] + argv[2:]) == 0
    monkeypatch.setattr(
        'bench.cli.budget_checks', lambda results: [('timing', False, False)]
    )
    assert main(argv) == 0


def test_the_topology_benchmark_runs():
    import io

    from bench import topologies

    out = io.StringIO()
    rates = topologies.run(repeat=1, iterations=5, out=out)
    assert set(rates) == {
        (topology, scenario)
        for topology in ('one Redis', 'cluster', 'Sentinel')
        for scenario in topologies.SCENARIOS
    }
    assert all(r[0] > 0 for r in rates.values())
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ['scenario', 'topology', 'req/s']
    assert lines[0].endswith('x one Redis')
    rows = [line for line in lines[2:] if line]
    assert len(rows) == 3 * len(topologies.SCENARIOS)


def test_the_tabs_scenario_counts_lost_updates(results):
    from bench.tabs import DELETERS, KINDS, WRITERS

    tabs = results.tabs
    assert set(tabs.rounds) == {
        (kind, stack) for kind in KINDS for stack in ('anchor', 'suite')
    }
    for found in tabs.rounds.values():
        # every overlapping request answered with 200, its Redis round
        # trips counted (none of a connection's handshake)
        assert found.answered == found.requests
        assert found.round_trips > 0 and found.rate > 0
        assert not {'HELLO', 'CLIENT'} & {
            command[0].upper() for trip in found.trips for command in trip
        }
    assert tabs.round('set', 'suite').requests == WRITERS
    assert tabs.round('delete', 'suite').requests == DELETERS
    # the last writer wins the anchor's whole session
    lost = len(tabs.round('set', 'anchor').lost)
    assert lost > 0
    text = text_report(results, 'x')
    rows = {tuple(line.split()[:3]): line.split() for line in text.split('\n')}
    for (kind, stack), found in tabs.rounds.items():
        row = rows['tabs', kind, stack]
        assert row[3:6] == [str(found.requests)] * 2 + [str(len(found.lost))]
    assert f'anchor lost {lost} of {WRITERS} updates' in text
    # the suite's promise is a budget line, PASS or MISS, never --strict
    checks = [c for c in budget_checks(results) if c[0].startswith('tabs')]
    assert [line.split(':')[0] for line, _, _ in checks] == [
        'tabs set',
        'tabs delete',
    ]
    assert not any(round_trips for _, _, round_trips in checks)
    for line, met, _ in checks:
        assert f'{"PASS" if met else "MISS"}  {line}' in text
    rst = rst_report(results, 'x')
    assert '\nTabs\n----\n' in rst and f'anchor lost {lost} of' in rst


@pytest.mark.parametrize(
    ('scenario', 'commands'),
    [('read', [['GETEX']]), ('write', [['GETEX'], ['SET']])],
)
def test_the_limit_is_a_bare_request_and_raw_commands(
    results, scenario, commands
):
    for stack in (LIMIT, 'limit/py') if HIREDIS else (LIMIT,):
        assert sequence(results, scenario, stack) == commands
        trips = counted(results, scenario, stack)
        key = trips[0][0][1]
        # one key, refreshed like the suite's session
        assert {command[1] for trip in trips for command in trip} == {key}
        assert trips[0][0][2:] == [b'EX', b'1200']
        if scenario == 'write':
            # the session-sized value read, written back
            ((command,),) = trips[1:]
            assert len(command[2]) > 20 and command[3:] == [b'EX', b'1200']


@pytest.mark.skipif(not HIREDIS, reason='hiredis is not installed')
def test_both_parsers_run_the_reads_and_writes(results):
    for stack in ('anchor', 'suite', LIMIT):
        assert results.parsers[stack].startswith('_HiredisParser')
        python = results.parsers[f'{stack}/py']
        assert python.startswith('_RESP') and 'Hiredis' not in python
        for scenario in ('read', 'write'):
            fast = results.cell(scenario, stack)
            slow = results.cell(scenario, f'{stack}/py')
            assert slow.round_trips == fast.round_trips
            if stack != 'anchor':
                assert slow.sequences == fast.sequences
    table = parser_rows(results)
    assert [row[:2] for row in table] == [
        [scenario, stack]
        for scenario in ('read', 'write')
        for stack in ('anchor', 'suite', LIMIT)
    ]
    text = text_report(results, 'x')
    assert 'Reply parsers: ' in text
    assert 'hiredis / the pure-Python parser: read anchor' in text
    assert '\nReply parsers\n-------------\n' in rst_report(results, 'x')


def test_the_suite_is_measured_against_its_limits(results):
    table = {(row[0], row[1]): row for row in rows(results)}
    limit = [name for name, _ in COLUMNS].index('x limit')
    assert table['read', LIMIT][limit] == table['write', LIMIT][limit]
    assert table['read', LIMIT][limit] == '1.00'
    assert table['read', 'floor'][limit] == '-'
    assert table['untouched', 'suite'][limit] == '-'
    assert ('untouched', LIMIT) not in table
    ratio = results.ratio('read', 'suite', LIMIT)
    assert table['read', 'suite'][limit] == f'{ratio:.2f}'
    # a logged-in read is bound by the same limit as an anonymous one
    ratio = results.ratio('user write', 'suite', LIMIT, 'write')
    assert table['user write', 'suite'][limit] == f'{ratio:.2f}'
    # the logged-in visitor without all the features has no limit
    for name in SUITE_ONLY:
        assert table[name, 'suite'][limit] == '-'
    checks = {line: rt for line, _, rt in budget_checks(results)}
    # the logged-in goal: the features on / off, the same visitor
    prefixes = [
        'untouched: suite >= 0.95 x floor req/s',
        'read: suite >= 0.8 x its limit req/s (hiredis',
        'write: suite >= 0.8 x its limit req/s (hiredis',
        'user read: suite >= 0.9 x suite plain user read req/s (',
        'user write: suite >= 0.9 x suite plain user write req/s (',
    ]
    if HIREDIS:
        prefixes += [
            'read: suite >= 0.8 x its limit req/s (pure Python',
            'write: suite >= 0.8 x its limit req/s (pure Python',
        ]
    else:
        prefixes = [p.replace('(hiredis', '(pure Python') for p in prefixes]
    for prefix in prefixes:
        [line] = [line for line in checks if line.startswith(prefix)]
        # timings: hints, never --strict
        assert checks[line] is False
    # no goal against the anonymous visitor, none of the plain twins
    assert not [line for line in checks if 'x suite read' in line]
    assert not [line for line in checks if line.startswith('plain user')]
    text = text_report(results, 'x')
    assert 'limits (the floor\'s request, then a raw redis-py GETEX' in text
    features = (
        'logged-in features on / off (the same logged-in visitor), suite: '
    )
    [line] = [line for line in text.splitlines() if line.startswith(features)]
    ratios = [
        f'{name} {results.ratio(name, "suite", "suite", plain):.2f} x {plain}'
        for name, plain in (
            ('user read', 'plain user read'),
            ('user write', 'plain user write'),
        )
    ]
    assert line == features + ', '.join(ratios)
    # the anonymous visitor: an informative line, no PASS or MISS
    anonymous = 'logged in / anonymous, suite: '
    [line] = [line for line in text.splitlines() if line.startswith(anonymous)]
    ratios = [
        f'{name} {results.ratio(name, "suite", "suite", plain):.2f} x {plain}'
        for name, plain in (('user read', 'read'), ('user write', 'write'))
    ]
    assert line == anonymous + ', '.join(ratios)


def test_the_profile_groups_the_time_by_package(results):
    profiles = results.profiles
    assert [found.scenario for found in profiles] == list(profiling.PROFILED)
    for found in profiles:
        assert found.requests == profiling.SMOKE_REQUESTS
        for package in ('pyramid_session_suite', 'pyramid', 'webob'):
            assert found.packages.get(package, 0) > 0, package
        assert found.packages.get('redis-py', 0) > 0
        # the standard library and builtins are charged to a package
        assert found.packages.get('other', 0) < 0.05 * found.own_seconds
        assert len(found.functions) == profiling.TOP
        assert found.own_seconds <= found.seconds
    table = profile_rows(results)
    assert table[-1][0] == 'total'
    assert table[-1][2::2] == ['100%'] * len(profiles)
    text = text_report(results, 'x')
    assert 'Profile: cProfile of 20 in-process requests' in text
    assert 'read: the 12 functions of most own time' in text
    assert '\nProfile\n-------\n' in rst_report(results, 'x')


def test_the_observability_benchmark_runs(capsys):
    import re

    from bench import observability

    assert observability.main(['--rounds', '3', '--count', '20']) == 0
    out = capsys.readouterr().out
    variants = [
        'bare',
        'bare, again',
        'subscriber',
        'metrics',
        'tracing',
        'metrics+tracing',
        'tracing, SDK',
    ]
    for scenario in ('read', 'write'):
        table = out.split(f'{scenario}: median of 3 rounds\n')[1]
        rows = table.splitlines()[1 : 1 + len(variants)]
        names = [re.split(r'\s{2,}', row.strip())[0] for row in rows]
        assert names == variants
    assert 'watching one load alone' in out
    assert out.splitlines()[-1].startswith(
        'reads, metrics+tracing (no provider): '
    )
