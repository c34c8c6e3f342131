"""Tables of strings: plain text, and reStructuredText ``list-table``."""


def cell_text(value):
    """``1,234`` for an integer, ``str(value)`` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f'{value:,}'
    return str(value)


def text_table(headers, rows, align=None, grouped=False):
    """A plain text table under a rule. ``align``: one ``l`` or ``r`` per
    column (default: the first left, the others right); ``grouped``: a
    blank line between rows of another first cell."""
    align = align or 'l' + 'r' * (len(headers) - 1)
    body = [[cell_text(cell) for cell in row] for row in rows]
    widths = [
        max(len(row[i]) for row in [list(headers), *body])
        for i in range(len(headers))
    ]

    def line(row):
        return '  '.join(
            cell.ljust(width) if side == 'l' else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        ).rstrip()

    lines = [line(headers), '  '.join('-' * width for width in widths)]
    previous = None
    for row in body:
        if grouped and previous not in (None, row[0]):
            lines.append('')
        previous = row[0]
        lines.append(line(row))
    return '\n'.join(lines)


def list_table(headers, rows):
    """The lines of a reStructuredText ``list-table`` with a header row."""
    out = ['.. list-table::', '   :header-rows: 1', '']
    for row in [headers, *rows]:
        first, *rest = map(rst_cell, row)
        out.append(f'   * - {first}')
        out += [f'     - {value}' for value in rest]
    return out


def rst_cell(value):
    """A cell that reStructuredText reads as plain text: not a bullet or an
    option list (``-``, ``+0.0``, ``-2.5``) nor a substitution (``|``)."""
    value = cell_text(value)
    if value == '-':
        return '\\-'
    if value[:1] in ('+', '-') or '|' in value:
        return f'``{value}``'
    return value
