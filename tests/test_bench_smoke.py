"""The benchmark's smoke mode runs, and the Redis round trips it counts are
the ones the design promises. Nothing here looks at timings."""

import pytest
import redis

from bench import main, run
from bench.apps import STACKS
from bench.memory import db_client
from bench.report import rst_report, text_report
from bench.runner import LIST_USER
from bench.scenarios import SMOKE_LIST_SIZE
from pyramid_session_suite.index import user_tag

# pyramid_session_redis (the anchor) calls the deprecated Redis.setex
pytestmark = pytest.mark.filterwarnings(
    'ignore:Call to deprecated setex:DeprecationWarning'
)

#: the listing scenario of the smoke run (the full run lists 1,000)
LIST = f'list {SMOKE_LIST_SIZE}'


@pytest.fixture(scope='module')
def results(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return run(smoke=True, redis_url=redis_server.url, progress=None)


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
        ('write', [['GETEX'], ['SET']]),
        ('new', [['SET']]),
        # logged in, with the policy and the user index (touch_interval
        # 60 s): the bookkeeping costs nothing in steady state
        ('user read', [['GETEX']]),
        ('user write', [['GETEX'], ['SET']]),
        # the anonymous session, the index (and policy) script, then the
        # old id deleted and the new one created, pipelined
        ('login', [['GETEX'], ['EVALSHA'], ['DEL', 'EVAL']]),
        (LIST, [['EVALSHA']]),
    ],
)
def test_suite_round_trips(results, scenario, commands):
    cell = results.cell(scenario, 'suite')
    assert cell.round_trips == len(commands)
    assert sequence(results, scenario, 'suite') == commands


def set_options(command):
    """The options of ``SET key value [options...]``."""
    assert command[0].upper() == b'SET'
    return [arg.upper() for arg in command[3:]]


def test_suite_creates_a_session_with_set_nx(results):
    ((command,),) = counted(results, 'new', 'suite')
    assert b'NX' in set_options(command)


@pytest.mark.parametrize('scenario', ['write', 'user write'])
def test_suite_writes_an_existing_session_with_set_xx(results, scenario):
    _, (command,) = counted(results, scenario, 'suite')
    assert b'XX' in set_options(command)


def test_suite_login_moves_the_session_into_the_users_slot(results):
    for trips in results.cell('login', 'suite').counted:
        (getex,), (evalsha,), (delete, create) = trips
        anonymous = getex[1]
        assert b'{' not in anonymous
        # the anonymous session that was read is the one deleted
        assert delete[1:] == [anonymous]
        # the index script, on the user's two keys
        assert evalsha[2] == b'2'
        z, h = evalsha[3:5]
        assert z.endswith(b':z') and h.endswith(b':h')
        tag = z[z.index(b'{') : z.index(b'}') + 1]
        assert h.startswith(z[:-1])
        # the new session key is created in the same slot, unless ended
        assert create[2] == b'2'
        key, ended = create[3:5]
        assert key.startswith(b'session:' + tag + b':')
        assert ended == key + b':ended'


def test_each_login_is_a_new_user(results):
    logins = results.cell('login', 'suite').counted
    # the index keys of each login's user
    assert len({trips[1][0][3] for trips in logins}) == len(logins)


def test_the_listing_reads_one_users_index(results):
    ((command,),) = counted(results, LIST, 'suite')
    tag = user_tag(LIST_USER).encode()
    assert command[2:5] == [
        b'2',
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
    assert rst.count('.. list-table::') == 2
    names = [scenario.name for scenario in results.scenarios]
    assert names == [
        'untouched',
        'read',
        'write',
        'new',
        'user read',
        'user write',
        'login',
        LIST,
    ]
    width = max(map(len, names))
    for scenario in results.scenarios:
        for stack in scenario.stacks:
            assert len(results.cell(scenario.name, stack).batches) == 1
            assert f'{scenario.name:<{width}}  {stack:<6}' in text
    assert results.scenarios[-1].stacks == ('suite',)
    assert all(s.stacks == STACKS for s in results.scenarios[:-1])


def test_memory_is_measured_for_both_stacks(results, redis_server):
    anchor, suite = results.memory
    assert (anchor.stack, suite.stack) == ('anchor', 'suite')
    assert anchor.sessions == suite.sessions > 0
    # a session key each; the suite adds its user's index (two keys)
    assert anchor.keys == anchor.sessions
    assert suite.keys == 3 * suite.sessions
    assert anchor.index_bytes is None
    assert suite.index_bytes > 0
    assert anchor.session_bytes > 0 and suite.session_bytes > 0
    # the measurement's database is left empty
    client = db_client(redis_server.url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()
        client.connection_pool.disconnect()
    text = text_report(results, 'x')
    assert 'MB/10k' in text
    assert text.splitlines()[-1].startswith('suite ')


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
        }
    ]
    out = capsys.readouterr().out
    assert 'GETEX' in out and 'EVALSHA' in out
    assert output.read_text().startswith('Benchmark')
