"""Logging in and out: call these where you call ``remember()`` and
``forget()``.

::

    from pyramid_session_suite import login, logout

    headers = login(request, user.id)      # instead of remember()
    return HTTPSeeOther(next_url, headers=headers)

    headers = logout(request)              # instead of forget()

``login`` rotates the session id and the CSRF token (no session fixation,
and no token obtained before the login passes after it), records the
session in the user index and applies the unique-session policy when they
are included; a refusal raises :class:`LoginRefusedError` (409) and changes
nothing. ``logout`` ends the session everywhere it is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from pyramid.csrf import (
    LegacySessionCSRFStoragePolicy,
    SessionCSRFStoragePolicy,
)
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPConflict
from pyramid.interfaces import ICSRFStoragePolicy, ISessionFactory
from pyramid.security import forget, remember as remember_headers

from . import _activity as activity
from .events import LoginRefused, SessionRevoked
from .interfaces import IUserIndex
from .redis.login_records import remembered
from .user_index import marker_of, same_user
from .watch import notify

if TYPE_CHECKING:
    from pyramid.request import Request

    from .user_index import SessionTracker


class LoginRefusedError(HTTPConflict):
    """409 Conflict: the account has its maximum of sessions, one of them
    active within the lock period. ``Retry-After`` says when to retry."""

    explanation = (
        'This account is already signed in elsewhere and was active '
        'recently; you can sign in here once that session has been idle '
        'for a while, or sign out there.'
    )

    def __init__(self, retry_after: int, **kw: Any) -> None:
        super().__init__(headers={'Retry-After': str(retry_after)}, **kw)
        #: seconds until a login may succeed (``retry_after`` is WebOb's
        #: header property, a ``datetime``)
        self.retry_seconds = retry_after


def login(
    request: Request, userid: Any, remember: bool = False, **kw: Any
) -> list[tuple[str, str]]:
    """Log ``userid`` in on this request's session with a new session id
    and a new CSRF token; return the headers of
    :func:`pyramid.security.remember` (``kw`` is passed to it).

    With ``remember``, the login is remembered ("remember me"): its
    session lasts its namespace's ``remember_max_age`` unused, and its
    cookie has that ``Max-Age`` (it outlives the browser); without, the
    cookie lasts for the browser session (or the namespace's
    ``cookie_max_age``). Only a Redis session can be remembered."""
    tracker: SessionTracker | None = request.registry.queryUtility(IUserIndex)
    if tracker is None:
        session = request.session
        _rotate(session)
        if remember:
            if not hasattr(session, 'remember'):
                raise ValueError('remember=True needs a Redis session')
            session.remember()
    else:
        _register(request, tracker, userid, remember)
    headers: list[tuple[str, str]] = remember_headers(request, userid, **kw)
    _renew_csrf_token(request)
    return headers


def _register(
    request: Request,
    tracker: SessionTracker,
    userid: Any,
    remember: bool = False,
) -> None:
    """Record the login in the user index, or raise
    :class:`LoginRefusedError`."""
    session = tracker.session(request)
    previous = marker_of(session)
    again = previous is not None and same_user(previous['u'], userid)
    if previous is not None and not again:
        # someone else's session: none of their data comes along
        session.clear()
    admitted, detail = tracker.register(
        request,
        session,
        userid,
        replaces=previous['h'] if previous is not None and again else None,
        remember=remember,
    )
    if not admitted:
        activity.record(request.environ, 'policy', 'login refused',
                        retry_after=detail)  # fmt: skip
        notify(request, LoginRefused(request, userid, detail))
        raise LoginRefusedError(detail)
    if previous is not None and not again:
        # the session was someone else's before: that entry goes
        tracker.index.forget(previous['u'], previous['h'])


def logout(request: Request, **kw: Any) -> list[tuple[str, str]]:
    """End this request's session (and its index entry); return the
    headers of :func:`pyramid.security.forget`."""
    headers: list[tuple[str, str]]
    tracker: SessionTracker | None = request.registry.queryUtility(IUserIndex)
    if tracker is None:
        request.session.invalidate()
        headers = forget(request, **kw)
        return headers
    session = tracker.session(request)
    marker = marker_of(session)
    if marker is not None:
        tracker.revoke(request, marker['u'], [marker['h']], reason='logout')
        session.discard()
    else:
        session.invalidate()
    headers = forget(request, **kw)
    return headers


def credentials_changed(request: Request, reason: str = 'credentials') -> int:
    """Call after the logged-in user's password, e-mail or second factor
    changed: every other session of the user ends at once (on every site
    of a cross-domain group, in every worker: they are ended in Redis),
    each browser told ``reason`` on its next request, with a
    :class:`.events.SessionRevoked` per session; this session keeps the
    user logged in with a new id (a remembered login stays remembered) and
    a new CSRF token. It is not a login: its
    :class:`.events.SessionRegistered` has ``login`` false. Return how
    many sessions ended. Needs ``pyramid_session_suite.user_index``."""
    tracker: SessionTracker | None = request.registry.queryUtility(IUserIndex)
    if tracker is None:
        raise ConfigurationError(
            'credentials_changed() needs '
            "config.include('pyramid_session_suite.user_index')"
        )
    userid = request.authenticated_userid
    if userid is None:
        raise ValueError('credentials_changed() needs a logged-in user')
    session = tracker.session(request)
    marker = marker_of(session)
    current = (
        marker['h'] if marker and same_user(marker['u'], userid) else None
    )
    ended = tracker.index.end_all(userid, current, reason=reason)
    state = session._session_state
    tracker.register(
        request,
        session,
        userid,
        limits=False,
        replaces=current,
        remember=remembered(state.session_id),
        login=False,
    )
    _renew_csrf_token(request)
    activity.record(request.environ, 'user_index', reason,
                    count=len(ended))  # fmt: skip
    for handle in ended:
        notify(request, SessionRevoked(request, userid, (handle,), reason, 1))
    return len(ended)


def _renew_csrf_token(request: Request) -> None:
    """A new CSRF token, wherever the CSRF storage policy keeps it, even if
    the session had none (as Django does): a token obtained, or planted,
    before the login no longer passes."""
    policy = request.registry.queryUtility(ICSRFStoragePolicy)
    if policy is None:
        return
    session_policies = LegacySessionCSRFStoragePolicy, SessionCSRFStoragePolicy
    if isinstance(policy, session_policies):
        if request.registry.queryUtility(ISessionFactory) is None:
            return  # no request.session: no token to renew
    policy.new_csrf_token(request)


def _rotate(session: Any) -> None:
    """A new session id for ``session``, keeping its data."""
    rotate = getattr(session, 'rotate', None)
    if rotate is not None:
        rotate()
        return
    data = dict(session)
    session.invalidate()
    session.update(data)
