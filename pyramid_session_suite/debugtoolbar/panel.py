"""A debug toolbar panel that watches ``request.session_multi`` without
changing what it watches.

It never wraps, loads or touches a namespace the application did not touch,
unless the panel is active for the request (the toolbar's per-panel
switch), in which case it reads the untouched namespaces after the view,
with :meth:`peek` where the factory offers it (a plain Redis ``GET``).

Every value it shows is escaped here, once: the template marks them safe.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
import html
import re
import reprlib
from typing import TYPE_CHECKING, Any, cast
from pyramid_debugtoolbar.panels import DebugPanel

from .._activity import recorded
from ..interfaces import ISessionMultiManagerConfig
from ..multi import OBSERVER_KEY, backend_of

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

    from ..multi import SessionMultiManagerConfig

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 2000
_repr.maxlevel = 4

#: a value's repr is shown up to this many characters, wrapped
SHOWN_CHARACTERS = 400

#: ``<Foo object at 0x7f...>``: a repr that names nothing but a type
_DEFAULT_REPR = re.compile(r' (object )?at 0x[0-9a-fA-F]+>?$')

#: how a key changed in the request, in the order they are listed
STATUSES = ('added', 'changed', 'removed')


def escape(text: str) -> str:
    """Escape for an HTML text node (quotes stay readable)."""
    return html.escape(text, quote=False)


def safe_repr(value: object) -> str:
    try:
        return _repr.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the panel
        return f'<unprintable {type(value).__name__}: {type(exc).__name__}>'


def snapshot(session: Any) -> dict[Any, str] | None:
    """Return ``{key: repr}`` of a session's data, read without side effects
    (no access marker, no TTL refresh, no lazy re-creation)."""
    if session is None:
        return None
    state = getattr(session, '__dict__', {}).get('_session_state', False)
    if state is not False:  # a pyramid_session_redis session
        data = state.managed_dict if state is not None else {}
    elif isinstance(session, dict):
        data = dict(dict.items(session))
    else:
        try:
            data = dict(session.items())
        except Exception:
            return {}
    return {key: safe_repr(value) for key, value in data.items()}


def sort_keys(keys: Collection[Any]) -> list[Any]:
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=str)


def shown(text: str) -> str:
    """A value's repr as HTML: escaped, cut after ``SHOWN_CHARACTERS``
    (saying how long it was)."""
    if len(text) <= SHOWN_CHARACTERS:
        return escape(text)
    return (
        escape(text[:SHOWN_CHARACTERS])
        + f'<span class="ssm-more">… {len(text):,} characters in all</span>'
    )


def readable_name(qualname: str) -> str:
    """``'Factory.<locals>.Session'`` -> ``'Session from Factory()'``,
    ``'make_app.<locals>.<lambda>'`` -> ``'a lambda in make_app()'``."""
    *outer, inner = qualname.split('.<locals>.')
    if inner == '<lambda>':
        inner = 'a lambda'
        link = ' in '
    elif inner.endswith('<lambda>'):
        inner = 'a lambda in ' + inner[: -len('.<lambda>')]
        link = ', in '
    else:
        link = ' from '
    if outer:
        return f'{inner}{link}{outer[-1]}()'
    return inner


def describe(obj: object) -> dict[str, str] | None:
    """``{'name': ..., 'module': ...}`` naming ``obj`` for people: a
    function or class by its name (``<locals>`` spelled out), an object by
    its own repr when it says more than its type and address, else by its
    type; ``None`` for ``None``."""
    if obj is None:
        return None
    target = obj
    if not hasattr(obj, '__qualname__'):
        text = safe_repr(obj)
        if '<locals>' not in text and not _DEFAULT_REPR.search(text):
            return {'name': escape(text), 'module': ''}
        target = type(obj)
    name = readable_name(getattr(target, '__qualname__', repr(target)))
    module = getattr(target, '__module__', '') or ''
    return {'name': escape(name), 'module': escape(module)}


def key_rows(
    ingress: Mapping[Any, str] | None, egress: Mapping[Any, str] | None
) -> list[dict[str, Any]]:
    """The rows of a namespace's data table: each key with its status
    (``added``, ``changed``, ``removed`` or ``''``) and its values as HTML
    (``None`` where it had none). Without both snapshots nothing is
    compared: the one there is is shown as it was."""
    compare = ingress is not None and egress is not None
    ingress, egress = ingress or {}, egress or {}
    rows = []
    for key in sort_keys(set(ingress) | set(egress)):
        before, after = ingress.get(key), egress.get(key)
        if not compare:
            status = ''
        elif before is None:
            status = 'added'
        elif after is None:
            status = 'removed'
        elif before != after:
            status = 'changed'
        else:
            status = ''
        rows.append(
            {
                'key': key,
                'status': status,
                'before': None if before is None else shown(before),
                'after': None if after is None else shown(after),
            }
        )
    return rows


def count_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """``{'added': n, 'changed': n, 'removed': n}`` of some rows."""
    return {
        status: sum(1 for row in rows if row['status'] == status)
        for status in STATUSES
    }


def summary(counts: Mapping[str, int]) -> str:
    """``'1 added, 2 changed'``; ``''`` when nothing changed."""
    return ', '.join(
        f'{counts[status]} {status}' for status in STATUSES if counts[status]
    )


class SessionMultiDebugPanel(DebugPanel):  # type: ignore[misc]
    """Configuration, access and ingress/egress data of every namespace."""

    name = 'session_multi'
    title = nav_title = 'SessionMulti'
    template = (
        'pyramid_session_suite.debugtoolbar:templates/session_multi.dbtmako'
    )
    has_content = True
    user_activate = True

    def __init__(self, request: Request) -> None:
        self.request = request
        self.config: SessionMultiManagerConfig | None = (
            request.registry.queryUtility(ISessionMultiManagerConfig)
        )
        self.records: dict[str, dict[str, Any]] = {}
        if self.config is not None:
            request.environ[OBSERVER_KEY] = self

    @property
    def nav_subtitle(self) -> str:
        """The tab's badge: ``'2 changed'`` (keys added, changed or
        removed), else how many namespaces the request read."""
        changes = self.data.get('changes', 0)
        if changes:
            return f'{changes} changed'
        accessed = self.data.get('accessed', 0)
        return f'{accessed} read' if accessed else ''

    @property
    def nav_subtitle_style(self) -> str:
        return 'progress-bar-info' if self.data.get('changes') else ''

    # -- observer: called by request.session_multi -------------------------

    def _record(self, namespace: str) -> dict[str, Any]:
        record = self.records.get(namespace)
        if record is None:
            record = self.records[namespace] = {
                'accessed': False,
                'discriminated_out': False,
                'invalidated': False,
                'peeked': False,
                'session': None,
                'ingress': None,
                'egress': None,
            }
        return record

    def loaded(
        self, namespace: str, session: Any, discriminated_out: bool
    ) -> None:
        record = self._record(namespace)
        record['accessed'] = True
        record['discriminated_out'] = discriminated_out
        record['session'] = session
        record['ingress'] = snapshot(session)

    def invalidated(self, namespace: str) -> None:
        self._record(namespace)['invalidated'] = True

    # -- toolbar hooks -----------------------------------------------------

    def process_response(self, response: Response) -> None:
        request = self.request
        if self.config is not None and self.is_active:
            for namespace in self.config.namespaces:
                if namespace not in self.records:
                    self._peek(namespace)
        # sessions persist in finished callbacks registered when they were
        # loaded; this one runs after them, so egress is what was stored
        request.add_finished_callback(self._finish)

    def _peek(self, namespace: str) -> None:
        record = self._record(namespace)
        request = self.request
        # not None: only called by process_response, which checked it
        config = cast('SessionMultiManagerConfig', self.config)
        discriminator = config.get_namespace_discriminator(namespace)
        if discriminator is not None and not discriminator(request):
            record['discriminated_out'] = True
            return
        factory = config.get_namespace_config(namespace)
        peek = getattr(factory, 'peek', None)
        if peek is not None:
            data = peek(request)
            record['ingress'] = snapshot(data if data is not None else {})
        else:
            record['ingress'] = snapshot(factory(request))
        record['egress'] = record['ingress']
        record['peeked'] = True

    def _finish(self, request: Request) -> None:
        for record in self.records.values():
            session = record['session']
            if session is None:
                continue
            record['egress'] = snapshot(session)
            if getattr(session, 'invalidated', False):
                record['invalidated'] = True
            record['session'] = None  # do not keep the session alive
        self.data.update(self._render_data(request))

    def _render_data(self, request: Request) -> dict[str, Any]:
        config = self.config
        data: dict[str, Any] = {
            'configuration': None,
            'is_active': self.is_active,
            'namespaces': [],
            'has_data': False,
            'changes': 0,
            'accessed': 0,
            'activity': [
                {
                    'feature': escape(entry['feature']),
                    'action': escape(entry['action']),
                    'details': escape(safe_repr(entry['details']))
                    if entry['details']
                    else '',
                }
                for entry in recorded(request.environ)
            ],
        }
        if config is None:
            return data
        data['configuration'] = describe(config)
        for namespace in config.namespaces:
            factory = config.get_namespace_config(namespace)
            record = self._record(namespace)
            rows = key_rows(record['ingress'], record['egress'])
            counts = count_of(rows)
            data['changes'] += sum(counts.values())
            data['accessed'] += record['accessed']
            data['has_data'] = data['has_data'] or bool(rows)
            read = record['accessed'] or record['peeked']
            data['namespaces'].append(
                {
                    'namespace': namespace,
                    'cookie_name': config.get_namespace_cookiename(namespace),
                    'factory': describe(factory),
                    'backend': backend_of(factory),
                    'discriminator': describe(
                        config.get_namespace_discriminator(namespace)
                    ),
                    'accessed': record['accessed'],
                    'discriminated_out': record['discriminated_out'],
                    'invalidated': record['invalidated'],
                    'peeked': record['peeked'],
                    'empty': read
                    and not record['discriminated_out']
                    and not rows,
                    'rows': rows,
                    'counts': counts,
                    'summary': summary(counts),
                }
            )
        return data

    def render_vars(self, request: Request) -> dict[str, Any]:
        if 'namespaces' not in self.data:
            # the request ended before the finished callbacks ran
            self.data.update(self._render_data(self.request))
        return {'statuses': STATUSES}
