"""Unique and timed sessions:
``config.include('pyramid_session_suite.policy')``.

- **Unique / limited sessions**: at most ``max_sessions`` per account. A
  login over the limit ends the least recently active session, unless one
  of those sessions was active within ``lock_seconds``: then the login is
  refused (409 with ``Retry-After``), atomically across processes (one Lua
  script in Redis, see :mod:`.index`).
- **Timed sessions**: ``absolute_timeout`` (from login) and
  ``idle_timeout`` (from the last recorded activity). An expired session is
  ended on its next request: 401, or a redirect to ``login_route``.
- A browser whose session was ended by a newer login or a timeout is told
  so on its next request, the same way.

The deadlines live in the session itself, so checking them costs no Redis
round trip; the tween reads settings once, when the application is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
import time
from typing import TYPE_CHECKING, Any
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPSeeOther, HTTPUnauthorized
from pyramid.tweens import EXCVIEW

from . import _activity as activity
from ._request_cookies import readable_cookies
from ._settings import (
    PREFIX,
    Setting,
    as_list,
    as_seconds,
    one_of,
    parse_settings,
)
from .events import SessionExpired
from .interfaces import IUserIndex
from .redis import ENDED_KEY
from .user_index import MARKER, marker_of
from .watch import notify

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response

    from .user_index import SessionTracker

SETTINGS_PREFIX = PREFIX + 'policy.'


def as_count(value: Any) -> int:
    count = int(value)
    if count < 0:
        raise ValueError(f'must be 0 or more, not {value!r}')
    return count


POLICY_SETTINGS: tuple[Setting, ...] = (
    ('max_sessions', as_count, 1),
    ('lock_seconds', as_seconds, 300),
    ('absolute_timeout', as_seconds, None),
    ('idle_timeout', as_seconds, None),
    ('on_end', one_of('unauthorized', 'redirect'), 'unauthorized'),
    ('login_route', lambda value: str(value).strip() or None, None),
    ('clock_skew', as_seconds, 5),
    ('skip_paths', as_list, []),
)

#: what the browser of an ended session is told, by reason
MESSAGES = {
    'displaced': (
        'You were signed out because your account signed in somewhere else.'
    ),
    'absolute': 'Your session has reached its time limit; please sign in.',
    'idle': 'Your session ended after a period of inactivity; please sign in.',
    'expired': 'Your session has expired; please sign in again.',
}

#: reasons for which the policy answers instead of going on anonymously
ANSWERED = ('displaced', 'expired')


class SessionPolicy:
    """The rules, read once from the settings. ``clock`` returns epoch
    seconds (``time.time``); replace it to simulate the passing of time."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_sessions: int = settings['max_sessions']
        self.lock_seconds: int = settings['lock_seconds'] or 0
        self.absolute_timeout: int | None = settings['absolute_timeout']
        self.idle_timeout: int | None = settings['idle_timeout']
        self.on_end: str = settings['on_end']
        self.login_route: str | None = settings['login_route']
        self.clock_skew: int = settings['clock_skew'] or 0
        self.skip_paths = [
            '/' + path.strip('/') for path in settings['skip_paths']
        ]
        self.clock = clock

    def expired(self, marker: Mapping[str, Any]) -> str | None:
        """``'absolute'``, ``'idle'`` or ``None`` for a session's
        bookkeeping, allowing ``clock_skew`` between workers."""
        now = self.clock() - self.clock_skew
        deadline = marker.get('a')
        if deadline is None and self.absolute_timeout:
            deadline = marker['l'] + self.absolute_timeout
        if deadline and now > deadline:
            return 'absolute'
        if (
            self.idle_timeout
            and not marker.get('remember')
            and now - marker.get('t', now) > self.idle_timeout
        ):
            return 'idle'
        return None

    def answer(self, request: Request, reason: str) -> Response:
        """The response to a browser whose session ended for ``reason``."""
        message = MESSAGES.get(reason, MESSAGES['expired'])
        headers = {'X-Session-Ended': reason}
        if self.on_end == 'redirect':
            url = request.route_url(
                self.login_route, _query={'session_ended': reason}
            )
            return HTTPSeeOther(url, headers=headers, detail=message)
        return HTTPUnauthorized(detail=message, headers=headers)


def includeme(config: Configurator) -> None:
    config.include('pyramid_session_suite.user_index')
    registry = config.registry
    settings = parse_settings(
        registry.settings, POLICY_SETTINGS, SETTINGS_PREFIX, strict=True
    )
    if settings['on_end'] == 'redirect' and not settings['login_route']:
        raise ConfigurationError(
            f'{SETTINGS_PREFIX}login_route is required with on_end = redirect'
        )
    policy = SessionPolicy(settings)

    def apply() -> None:
        tracker: SessionTracker = registry.getUtility(IUserIndex)
        tracker.policy = policy
        tracker.max_sessions = policy.max_sessions
        tracker.lock_seconds = policy.lock_seconds
        tracker.absolute_timeout = policy.absolute_timeout
        if policy.idle_timeout:
            # record activity often enough to measure idleness
            tracker.touch_interval = min(
                tracker.touch_interval, max(1, policy.idle_timeout // 10)
            )

    config.action(('session_suite', 'policy'), apply, order=2)
    config.add_tween(
        'pyramid_session_suite.policy.policy_tween_factory',
        under=EXCVIEW,
        over='pyramid_session_suite.config.persist_tween_factory',
    )


def policy_tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Before the view: end the request's session if its time is up, and
    answer a browser whose session was ended by a newer login or a
    timeout."""
    tracker: SessionTracker = registry.getUtility(IUserIndex)
    policy = tracker.policy
    assert policy is not None  # set by includeme()
    cookie_name = tracker.cookie_name
    skip = tuple(policy.skip_paths) + tuple(static_paths(registry))
    skip_under = tuple(path.rstrip('/') + '/' for path in skip)

    def policy_tween(request: Request) -> Response:
        if cookie_name not in readable_cookies(request):
            return handler(request)
        if skip:
            path = request.path_info
            if path in skip or path.startswith(skip_under):
                return handler(request)
        session = tracker.session(request)
        reason = request.environ.get(ENDED_KEY)
        if reason in ANSWERED:
            return policy.answer(request, reason)
        # a login's deadlines are the policy's; a session indexed by an
        # earlier release may carry its own
        timed = policy.absolute_timeout or policy.idle_timeout
        marker = None
        if timed or MARKER in session.managed_dict:
            marker = marker_of(session)
        if marker is not None:
            kind = policy.expired(marker)
            if kind is not None:
                tracker.revoke(
                    request, marker['u'], [marker['h']], reason='expired'
                )
                session.discard()
                activity.record(request.environ, 'policy', 'expired',
                                kind=kind)  # fmt: skip
                notify(
                    request,
                    SessionExpired(request, marker['u'], marker['h'], kind),
                )
                return policy.answer(request, kind)
        return handler(request)

    return policy_tween


def static_paths(registry: Registry) -> Iterator[str]:
    """The path prefixes of the application's static views: assets are
    served without a look at the session."""
    for intr in registry.introspector.get_category('static views') or ():
        name = intr['introspectable']['name']
        if '://' not in name:
            yield '/' + name.strip('/')
