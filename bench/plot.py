"""The results as a PNG: per scenario, each stack's rate relative to the
anchor (log scale), with its Redis round trips per request; a second panel
for the HTTP layer when it ran. Needs matplotlib (``bench`` extra)."""

import pathlib

from .apps import STACKS

COLORS = {'floor': '#9e9e9e', 'anchor': '#e08a2c', 'suite': '#2c6fbb'}


def plot(results, path):
    """Write the chart of ``results`` to ``path``; return ``path``, or
    ``None`` if matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use('Agg')
    from matplotlib import pyplot

    panels = [('in-process WSGI calls', _inprocess(results))]
    http = getattr(results, 'http', None)
    if http:
        panels.append(
            (
                f'HTTP on loopback (waitress, {http.clients} concurrent '
                'clients)',
                _http(http),
            )
        )
    figure, axes = pyplot.subplots(
        len(panels),
        1,
        figsize=(12, 4.6 * len(panels)),
        squeeze=False,
        layout='constrained',
    )
    for ax, (title, groups) in zip(axes[:, 0], panels, strict=True):
        _bars(ax, title, groups)
    kind = 'smoke run, timings mean nothing' if results.smoke else ''
    when = results.started.strftime('%Y-%m-%d %H:%M')
    figure.suptitle(
        'Requests per second relative to the anchor '
        '(pyramid_session_multi 0.4.0 + pyramid_session_redis), '
        f'{when}' + (f' ({kind})' if kind else ''),
        fontsize=11,
    )
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def _inprocess(results):
    """``[(scenario, [(stack, ratio, round trips), ...]), ...]`` for the
    scenarios every stack ran."""
    groups = []
    for scenario in results.scenarios:
        name = scenario.name
        if not results.has(name, 'anchor'):
            continue
        bars = [
            (
                stack,
                results.ratio(name, stack, 'anchor'),
                f'{results.cell(name, stack).round_trips:g} rt',
            )
            for stack in STACKS
            if results.has(name, stack)
        ]
        groups.append((name, bars))
    return groups


def _http(http):
    groups = []
    for name in http.scenarios:
        bars = [
            (stack, http.ratio(name, stack, 'anchor'), f'p50 {cell.p50:.1f}ms')
            for stack in STACKS
            if (cell := http.cells.get((name, stack))) is not None
        ]
        groups.append((name, bars))
    return groups


def _bars(ax, title, groups):
    width = 0.8 / len(STACKS)
    for index, (_name, bars) in enumerate(groups):
        for stack, ratio, label in bars:
            x = index + (STACKS.index(stack) - (len(STACKS) - 1) / 2) * width
            ax.bar(
                x,
                ratio,
                width * 0.92,
                color=COLORS[stack],
                label=stack if index == 0 else None,
            )
            ax.annotate(
                f'{ratio:.2f}x\n{label}',
                (x, ratio),
                xytext=(0, 3),
                textcoords='offset points',
                ha='center',
                va='bottom',
                fontsize=7.5,
            )
    ax.set_yscale('log')
    from matplotlib.ticker import FuncFormatter

    ticks = FuncFormatter(lambda value, _: f'{value:g}x')
    ax.yaxis.set_major_formatter(ticks)
    ax.yaxis.set_minor_formatter(ticks)
    ax.axhline(1.0, color='#444444', linewidth=0.8, linestyle='--')
    ax.set_xticks(range(len(groups)), [name for name, _ in groups])
    ax.set_ylabel('req/s ÷ anchor req/s (log)')
    ax.set_title(title, fontsize=10)
    top = max((ratio for _, bars in groups for _, ratio, _ in bars), default=1)
    low = min((ratio for _, bars in groups for _, ratio, _ in bars), default=1)
    ax.set_ylim(min(0.5, low * 0.7), top * 3)
    ax.legend(loc='upper right', ncols=len(STACKS), fontsize=9)
    ax.grid(axis='y', which='major', alpha=0.3)
