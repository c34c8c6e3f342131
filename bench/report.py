"""The results table, as plain text and as reStructuredText."""

from .apps import STACKS
from .scenarios import SCENARIOS

COLUMNS = (
    ('scenario', 'scenario'),
    ('stack', 'stack'),
    ('req/s', 'requests per second (median)'),
    ('us/req', 'microseconds per request'),
    ('+us', 'microseconds per request over floor'),
    ('x anchor', 'rate / anchor rate (median of the per-repetition ratios)'),
    ('x floor', 'rate / floor rate (median of the per-repetition ratios)'),
    ('iqr', 'interquartile range of the batch rates / median'),
    ('rt/req', 'Redis round trips per request'),
    ('cmd/req', 'Redis commands per request'),
    ('commands', 'Redis commands, round trips separated by "|"'),
)

#: columns aligned left in the plain table
TEXT_COLUMNS = {'scenario', 'stack', 'commands'}


def format_sequences(sequences):
    """``GET | EXPIRE``: round trips separated by ``|``; several distinct
    sequences separated by ``or``."""
    shown = []
    for sequence in sequences:
        if not sequence:
            shown.append('-')
        else:
            shown.append(' | '.join(' '.join(trip) for trip in sequence))
    return ' or '.join(shown) or '-'


def rows(results):
    """The table rows, as strings, one per scenario and stack."""
    table = []
    for scenario in SCENARIOS:
        floor = results.cell(scenario.name, 'floor')
        for stack in STACKS:
            cell = results.cell(scenario.name, stack)
            micros = 1e6 / cell.rate
            table.append(
                [
                    scenario.name,
                    stack,
                    f'{cell.rate:,.0f}',
                    f'{micros:.1f}',
                    f'{round(micros - 1e6 / floor.rate, 1) + 0.0:+.1f}',
                    f'{results.ratio(scenario.name, stack, "anchor"):.2f}',
                    f'{results.ratio(scenario.name, stack, "floor"):.2f}',
                    f'{cell.spread:.0%}',
                    f'{cell.round_trips:g}',
                    f'{cell.commands:g}',
                    format_sequences(cell.sequences),
                ]
            )
    return table


def text_table(results):
    """The results as a plain text table."""
    headers = [name for name, _ in COLUMNS]
    body = rows(results)
    widths = [
        max(len(row[i]) for row in [headers, *body])
        for i in range(len(headers))
    ]

    def line(row):
        cells = []
        for name, value, width in zip(headers, row, widths, strict=True):
            if name in TEXT_COLUMNS:
                cells.append(value.ljust(width))
            else:
                cells.append(value.rjust(width))
        return '  '.join(cells).rstrip()

    lines = [line(headers), '  '.join('-' * width for width in widths)]
    previous = None
    for row in body:
        if previous is not None and row[0] != previous:
            lines.append('')
        previous = row[0]
        lines.append(line(row))
    return '\n'.join(lines)


def settings_lines(results, command):
    done = results.started.strftime('%Y-%m-%d %H:%M:%S %z')
    lines = [
        ('command', command),
        ('date', done),
        ('duration', f'{results.seconds:.0f} s'),
        (
            'measure',
            f'median of {results.repeat} interleaved batches of '
            f'{results.iterations} requests per cell'
            + (' (smoke run: timings mean nothing)' if results.smoke else ''),
        ),
    ]
    lines.extend(results.environment.items())
    return lines


def text_report(results, command):
    head = '\n'.join(
        f'{name}: {value}' for name, value in settings_lines(results, command)
    )
    return f'{head}\n\n{text_table(results)}\n'


def rst_report(results, command):
    """The results as a reStructuredText document with a ``list-table``."""
    title = 'Benchmark: session namespaces'
    out = [title, '=' * len(title), '']
    for name, value in settings_lines(results, command):
        if name == 'command':
            value = f'``{value}``'
        out.append(f':{name}: {value}')
    out += ['', 'Scenarios:', '']
    for scenario in SCENARIOS:
        out.append(f'- ``{scenario.name}``: {scenario.description}')
    out += ['', 'Columns:', '']
    for name, meaning in COLUMNS[2:]:
        out.append(f'- ``{name}``: {meaning}')
    out += [
        '',
        '.. list-table::',
        '   :header-rows: 1',
        '',
    ]
    for row in [[name for name, _ in COLUMNS], *rows(results)]:
        first, *rest = row
        out.append(f'   * - {_rst_cell(first)}')
        for value in rest:
            out.append(f'     - {_rst_cell(value)}')
    return '\n'.join(out) + '\n'


def _rst_cell(value):
    """A cell that reStructuredText reads as plain text: not a bullet or an
    option list (``-``, ``+0.0``, ``-2.5``) nor a substitution (``|``)."""
    if value == '-':
        return '\\-'
    if value[:1] in ('+', '-') or '|' in value:
        return f'``{value}``'
    return value
