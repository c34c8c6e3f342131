"""A debug toolbar panel that watches ``request.session_multi`` without
changing what it watches.

It never wraps, loads or touches a namespace the application did not touch,
unless the panel is active for the request (the toolbar's per-panel
switch), in which case it reads the untouched namespaces after the view,
with :meth:`peek` where the factory offers it (a plain Redis ``GET``).
"""

import html
import reprlib
from pyramid_debugtoolbar.panels import DebugPanel

from ..activity import recorded
from ..interfaces import ISessionMultiManagerConfig
from ..multi import OBSERVER_KEY, backend_of

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 2000
_repr.maxlevel = 4


def escape(text):
    """Escape for an HTML text node (quotes stay readable)."""
    return html.escape(text, quote=False)


def snapshot(session):
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
    return {key: escape(_repr.repr(value)) for key, value in data.items()}


def sort_keys(keys):
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=str)


def describe(obj):
    return escape(_repr.repr(obj)) if obj is not None else ''


class SessionMultiDebugPanel(DebugPanel):
    """Configuration, access and ingress/egress data of every namespace."""

    name = 'session_multi'
    title = nav_title = 'SessionMulti'
    template = (
        'pyramid_session_suite.debugtoolbar:templates/session_multi.dbtmako'
    )
    has_content = True
    user_activate = True

    def __init__(self, request):
        self.request = request
        self.config = request.registry.queryUtility(ISessionMultiManagerConfig)
        self.records = {}
        if self.config is not None:
            request.environ[OBSERVER_KEY] = self

    # -- observer: called by request.session_multi -------------------------

    def _record(self, namespace):
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

    def loaded(self, namespace, session, discriminated_out):
        record = self._record(namespace)
        record['accessed'] = True
        record['discriminated_out'] = discriminated_out
        record['session'] = session
        record['ingress'] = snapshot(session)

    def invalidated(self, namespace):
        self._record(namespace)['invalidated'] = True

    # -- toolbar hooks -----------------------------------------------------

    def process_response(self, response):
        request = self.request
        if self.config is not None and self.is_active:
            for namespace in self.config.namespaces:
                if namespace not in self.records:
                    self._peek(namespace)
        # sessions persist in finished callbacks registered when they were
        # loaded; this one runs after them, so egress is what was stored
        request.add_finished_callback(self._finish)

    def _peek(self, namespace):
        record = self._record(namespace)
        request = self.request
        discriminator = self.config.get_namespace_discriminator(namespace)
        if discriminator is not None and not discriminator(request):
            record['discriminated_out'] = True
            return
        factory = self.config.get_namespace_config(namespace)
        peek = getattr(factory, 'peek', None)
        if peek is not None:
            data = peek(request)
            record['ingress'] = snapshot(data if data is not None else {})
        else:
            record['ingress'] = snapshot(factory(request))
        record['egress'] = record['ingress']
        record['peeked'] = True

    def _finish(self, request):
        for record in self.records.values():
            session = record['session']
            if session is None:
                continue
            record['egress'] = snapshot(session)
            if getattr(session, 'invalidated', False):
                record['invalidated'] = True
            record['session'] = None  # do not keep the session alive
        self.data.update(self._render_data(request))

    def _render_data(self, request):
        config = self.config
        data = {
            'configuration': None,
            'is_active': self.is_active,
            'namespaces': [],
            'activity': [
                {
                    'feature': escape(entry['feature']),
                    'action': escape(entry['action']),
                    'details': describe(entry['details'] or None),
                }
                for entry in recorded(request.environ)
            ],
        }
        if config is None:
            return data
        data['configuration'] = {'config': describe(config)}
        for namespace in config.namespaces:
            factory = config.get_namespace_config(namespace)
            record = self._record(namespace)
            ingress = record['ingress'] or {}
            egress = record['egress'] or {}
            changed = {
                key
                for key in set(ingress) | set(egress)
                if ingress.get(key) != egress.get(key)
            }
            if record['ingress'] is None or record['egress'] is None:
                changed = set()
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
                    'has_data': bool(ingress or egress),
                    'keys': sort_keys(set(ingress) | set(egress)),
                    'ingress': ingress,
                    'egress': egress,
                    'changed': changed,
                    'removed': set(ingress) - set(egress),
                }
            )
        return data

    def render_vars(self, request):
        if 'namespaces' not in self.data:
            # the request ended before the finished callbacks ran
            self.data.update(self._render_data(self.request))
        return {'missing': object()}
