"""Events for the rare transitions of a session's life, sent with
``registry.notify``. Subscribe with ``config.add_subscriber(f, Event)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from zope.interface import implementer

from .interfaces import (
    ILoginRefused,
    ISessionEnded,
    ISessionExpired,
    ISessionRegistered,
    ISessionReplaced,
    ISessionRevoked,
    ITokenAccepted,
    ITokenRejected,
)

if TYPE_CHECKING:
    from pyramid.request import Request

    from .redis import RedisSessionFactory


@implementer(ISessionEnded)
class SessionEnded:
    """A browser came back with the cookie of a session that was ended
    (``reason``: ``displaced``, ``revoked``, ``expired``, ``logout`` …);
    the request goes on without it."""

    def __init__(
        self, request: Request, factory: RedisSessionFactory, reason: str
    ) -> None:
        self.request = request
        self.factory = factory
        self.reason = reason


@implementer(ISessionRegistered)
class SessionRegistered:
    """A session of ``userid`` entered the user index: at login
    (``login`` true), or under a new id for a user who stays logged in
    (``login`` false: :func:`.auth.credentials_changed`)."""

    def __init__(
        self,
        request: Request,
        userid: Any,
        handle: str,
        evicted: Iterable[str] = (),
        login: bool = True,
    ) -> None:
        self.request = request
        self.userid = userid
        self.handle = handle
        #: handles of the sessions ended to make room for it
        self.evicted = tuple(evicted)
        #: whether it is a login (the metrics count those)
        self.login = login


@implementer(ISessionRevoked)
class SessionRevoked:
    """Sessions of ``userid`` were ended: by their user, an administrator,
    an operator, a newer login (``displaced``) or a timeout."""

    def __init__(
        self,
        request: Request,
        userid: Any,
        handles: Iterable[str],
        reason: str,
        count: int,
    ) -> None:
        self.request = request
        self.userid = userid
        #: the handles asked for; empty for "all"
        self.handles = tuple(handles)
        self.reason = reason
        #: how many sessions actually ended
        self.count = count


@implementer(ILoginRefused)
class LoginRefused:
    """A login was refused: ``userid`` has ``max_sessions`` sessions and
    one was active within ``lock_seconds``; retry after ``retry_after``
    seconds."""

    def __init__(
        self, request: Request, userid: Any, retry_after: int
    ) -> None:
        self.request = request
        self.userid = userid
        self.retry_after = retry_after


@implementer(ISessionExpired)
class SessionExpired:
    """A session reached its ``absolute`` or ``idle`` timeout and was ended
    on its next request."""

    def __init__(
        self, request: Request, userid: Any, handle: str, kind: str
    ) -> None:
        self.request = request
        self.userid = userid
        self.handle = handle
        self.kind = kind


@implementer(ISessionReplaced)
class SessionReplaced:
    """A site adopted the session of another site of its group
    (cross-domain sharing); ``was_empty`` tells whether it had a session
    of its own."""

    def __init__(
        self,
        request: Request,
        namespace: str,
        src: str,
        dst: str,
        was_empty: bool,
    ) -> None:
        self.request = request
        self.namespace = namespace
        self.src = src
        self.dst = dst
        self.was_empty = was_empty


@implementer(ITokenAccepted)
class TokenAccepted:
    """A site accepted a cross-domain token of ``flow`` (``redirect``
    or ``script``) from ``src``; ``outcome`` says what became of the
    site's session: ``adopted`` (the request showed none of the site's
    own), ``replaced`` (it had one: ``always_replace``) or ``kept`` (it
    keeps its own; the token is used up). One per token accepted, after
    :class:`SessionReplaced` when the session was taken."""

    def __init__(
        self,
        request: Request,
        namespace: str,
        src: str,
        dst: str,
        flow: str,
        outcome: str,
    ) -> None:
        self.request = request
        self.namespace = namespace
        self.src = src
        self.dst = dst
        self.flow = flow
        self.outcome = outcome


@implementer(ITokenRejected)
class TokenRejected:
    """A cross-domain token was refused; ``reason`` is a code such as
    ``malformed``, ``bad-tag``, ``expired``, ``from-the-future``,
    ``wrong-destination``, ``state-mismatch``, ``replayed``."""

    def __init__(self, request: Request, reason: str, flow: str) -> None:
        self.request = request
        self.reason = reason
        self.flow = flow


class StoreUnavailable:
    """A request got a 503: the Redis store of ``namespace`` (``None`` when
    it is not known) failed with ``exc``."""

    def __init__(
        self, request: Request, exc: BaseException, namespace: str | None
    ) -> None:
        self.request = request
        self.exc = exc
        self.namespace = namespace
