"""The benchmark's smoke mode runs, and the Redis round trips it counts are
the ones the design promises. Nothing here looks at timings."""

import pytest

from bench import main, run
from bench.apps import STACKS
from bench.report import rst_report, text_report
from bench.scenarios import SCENARIO_NAMES

# pyramid_session_redis (the anchor) calls the deprecated Redis.setex
pytestmark = pytest.mark.filterwarnings(
    'ignore:Call to deprecated setex:DeprecationWarning'
)


@pytest.fixture(scope='module')
def results(redis_server):
    return run(smoke=True, redis_url=redis_server.url, progress=None)


def sequence(results, scenario, stack):
    """The one command sequence of the counted requests of a cell."""
    sequences = results.cell(scenario, stack).sequences
    assert len(sequences) == 1, sequences
    return [list(trip) for trip in sequences[0]]


@pytest.mark.parametrize(
    ('scenario', 'commands'),
    [
        ('untouched', []),
        ('read', [['GETEX']]),
        ('write', [['GETEX'], ['SET']]),
        ('new', [['SET']]),
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
    ((command,),) = results.cell('new', 'suite').counted[0]
    assert b'NX' in set_options(command)


def test_suite_writes_an_existing_session_with_set_xx(results):
    _, (command,) = results.cell('write', 'suite').counted[0]
    assert b'XX' in set_options(command)


@pytest.mark.parametrize(
    ('scenario', 'round_trips'),
    [('untouched', 0), ('read', 2), ('new', 4)],
)
def test_anchor_round_trips(results, scenario, round_trips):
    assert results.cell(scenario, 'anchor').round_trips == round_trips
    assert len(results.cell(scenario, 'anchor').sequences) == 1


def test_floor_never_calls_redis(results):
    for scenario in SCENARIO_NAMES:
        assert results.cell(scenario, 'floor').round_trips == 0


def test_every_cell_was_timed_and_reported(results):
    command = 'python -m bench --smoke'
    text = text_report(results, command)
    rst = rst_report(results, command)
    assert '.. list-table::' in rst
    for scenario in SCENARIO_NAMES:
        for stack in STACKS:
            assert len(results.cell(scenario, stack).batches) == 1
            assert f'{scenario:<9}  {stack:<6}' in text


def test_main_writes_the_report(redis_server, tmp_path, capsys):
    output = tmp_path / 'smoke.rst'
    argv = ['--smoke', '--iterations', '2', '--output', str(output)]
    assert main(argv, redis_url=redis_server.url) == 0
    assert 'GETEX' in capsys.readouterr().out
    assert output.read_text().startswith('Benchmark')
