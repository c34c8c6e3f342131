"""Per-user session management: ``config.include(
'pyramid_session_suite.user_index')``.

Every session of a logged-in user on the indexed Redis namespace is known
(created, last activity, IP, user agent, location) and can be listed and
revoked: by its user through ``request.user_sessions``, by anyone with the
:class:`SessionTracker` utility (``request.registry.getUtility(IUserIndex)``).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
import functools
import time
from typing import TYPE_CHECKING, Any
import zlib

from .. import _activity as activity, watch
from .._namespaces import feature_namespace, redis_factory
from .._settings import (
    PREFIX,
    REQUIRED,
    Setting,
    as_bool,
    as_list,
    as_seconds,
    as_str,
    one_of,
    parse_settings,
)
from ..config import add_request_attribute
from ..events import SessionRegistered, SessionRevoked
from ..interfaces import ISessionMultiManagerConfig, IUserIndex
from ..redis import login_records as lr
from ..redis._persist import (
    LOADED_SESSIONS_KEY,
    add_before_flush,
    queue_command,
)
from ..watch import WATCHERS_KEY, notify, watchers_of
from .store import UserIndex, UserRef, tag_of_key, user_ref, user_tag

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request

    from ..multi import SessionMultiManagerConfig
    from ..policy import SessionPolicy
    from ..redis import RedisSession, RedisSessionFactory
    from .client_info import ClientInfo
    from .store import SessionEntry

SETTINGS_PREFIX = PREFIX + 'user_index.'

#: the key of the index's bookkeeping in the session data of earlier
#: releases (it is now kept in the session's own records)
MARKER = '_session_suite'

#: environ key: a session was registered (logged in) during this request
REGISTERED_KEY = 'session_suite.registered'

#: how long an index lives without activity, when the namespace has no
#: timeout (seconds)
DEFAULT_INDEX_TTL = 30 * 86400


def as_proxies(value: Any) -> int | list[str] | None:
    """``''``: none; a number: that many trusted hops; else CIDR blocks."""
    text = as_str(value)
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    return text.split()


USER_INDEX_SETTINGS: tuple[Setting, ...] = (
    ('namespace', as_str, None),
    ('secret', as_list, REQUIRED),
    ('key_prefix', as_str, 'session_suite:users:'),
    ('touch_interval', as_seconds, 60),
    ('trusted_proxies', as_proxies, None),
    ('store_ip', one_of('full', 'truncated', 'none'), 'full'),
    ('geoip_db', as_str, None),
    ('geo', one_of('city', 'country', 'off'), 'city'),
    ('auto_register', as_bool, True),
    ('end_ttl', as_seconds, 86400),
    ('views', as_bool, False),
    ('route_prefix', as_str, '/sessions'),
    ('admin_permission', as_str, 'session_suite.admin'),
    ('page_title', as_str, 'Your sessions'),
    ('app_name', as_str, None),
    ('back_url', as_str, None),
    ('login_url', as_str, None),
    ('layout', as_str, 'pyramid_session_suite:templates/layout.pt'),
)


def includeme(config: Configurator) -> None:
    config.include('pyramid_session_suite')
    registry = config.registry
    settings = parse_settings(
        registry.settings, USER_INDEX_SETTINGS, SETTINGS_PREFIX, strict=True
    )
    namespace = feature_namespace(
        registry.settings, settings['namespace'], SETTINGS_PREFIX
    )
    from .client_info import ClientInfo

    client_info = ClientInfo(
        trusted_proxies=settings['trusted_proxies'],
        store_ip=settings['store_ip'],
        geoip_db=settings['geoip_db'],
        geo=settings['geo'],
    )

    def register() -> None:
        manager_config = registry.getUtility(ISessionMultiManagerConfig)
        tracker = SessionTracker.from_namespace(
            manager_config, namespace, settings, client_info
        )
        # the registry's list of watchers itself: watchers added later
        # (the metrics and the tracing, at any order) are in it
        tracker.index.watchers = registry.setdefault(WATCHERS_KEY, [])
        registry.registerUtility(tracker, IUserIndex)
        add_before_flush(config, functools.partial(bookkeeping, tracker))

    config.action(('session_suite', 'user_index'), register, order=1)
    add_request_attribute(config, 'user_sessions', UserSessions)
    if settings['views']:
        config.include('pyramid_session_suite.user_index.views')


class SessionTracker:
    """The user index of one Redis namespace, with what the requests of
    that namespace need: client description, limits, events."""

    #: set by ``pyramid_session_suite.policy``: the rules, login limits and
    #: deadlines
    policy: SessionPolicy | None = None
    max_sessions: int = 0
    lock_seconds: int = 0
    absolute_timeout: int | None = None

    def __init__(
        self,
        factory: RedisSessionFactory,
        namespace: str,
        index: UserIndex,
        client_info: ClientInfo,
        settings: Mapping[str, Any],
    ) -> None:
        self.factory = factory
        self.namespace = namespace
        self.cookie_name = factory.cookie_name
        self.index = index
        self.client_info = client_info
        self.touch_interval: int = settings['touch_interval'] or 0
        self.auto_register: bool = settings['auto_register']

    @classmethod
    def from_namespace(
        cls,
        manager_config: SessionMultiManagerConfig,
        namespace: str,
        settings: Mapping[str, Any],
        client_info: ClientInfo,
    ) -> SessionTracker:
        key = SETTINGS_PREFIX + 'namespace'
        factory = redis_factory(manager_config, namespace, key)
        timeout = factory.timeout or DEFAULT_INDEX_TTL
        index = UserIndex(
            factory.redis,
            settings['secret'],
            key_prefix=settings['key_prefix'],
            session_prefix=factory.key_prefix,
            ttl=timeout + (settings['touch_interval'] or 0) + 60,
            end_ttl=max(settings['end_ttl'] or 0, timeout),
            summary=client_info.summary,
            namespace=namespace,
        )
        return cls(factory, namespace, index, client_info, settings)

    # -- the tracked session of a request -----------------------------------

    def session(self, request: Request) -> RedisSession:
        """The request's session of the indexed namespace (loaded)."""
        session: RedisSession = request.session_multi[self.namespace]
        return session

    def loaded_session(self, request: Request) -> RedisSession | None:
        """The request's session of the indexed namespace if the request
        loaded it, else ``None``."""
        session: RedisSession
        for session in request.environ.get(LOADED_SESSIONS_KEY, ()):
            if session.cookie_name == self.cookie_name:
                return session
        return None

    def origin(self, request: Request) -> bytes | None:
        """The digest of the session id the request's cookie names (its
        session may be gone), or ``None``."""
        cookie = request.cookies.get(self.cookie_name)
        session_id = cookie and self.factory.session_id_from_cookie(cookie)
        return lr.origin_digest(session_id) if session_id else None

    def score(self, ttl: float | None) -> int:
        """The index score of a session used now whose key lives ``ttl``
        seconds: its deadline, with the touch interval as margin."""
        return self.index.deadline(ttl, (self.touch_interval + 60) * 1000)

    # -- transitions ---------------------------------------------------------

    def register(
        self,
        request: Request,
        session: RedisSession,
        userid: Any,
        limits: bool = True,
        replaces: str | None = None,
        remember: bool = False,
        login: bool = True,
    ) -> tuple[bool, Any]:
        """Store ``session`` under a new id in a slot of ``userid``, with
        the records of the login (enforcing the login limits when
        ``limits``), in place of the session ``replaces`` (a handle: this
        browser's, for a repeated login); ``remember`` makes it a
        remembered login; ``login`` is false when the user was already
        logged in on it (see :class:`.events.SessionRegistered`). Return
        ``(True, evicted_handles)`` or ``(False, retry_after)``; a refusal
        changes nothing."""
        secret, digest = lr.new_secret()
        describe = self.client_info.describe(request)
        now = int(time.time() * 1000)
        origin = self.origin(request)
        records = lr.login_records(describe, now, origin)
        records[lr.SECRET] = digest
        factory = self.factory
        timeout = None  # its own
        if remember:
            timeout = factory.remember_max_age
            if not timeout:
                raise ValueError('this namespace has no remember_max_age')
        elif lr.remembered(session.session_id):
            timeout = factory.timeout  # no longer remembered
        payload = session.payload_with(
            records, without=(MARKER,), timeout=timeout
        )
        ttl = timeout or session.timeout
        admitted, detail = self.index.register(
            userid,
            payload,
            ttl=ttl,
            score=self.score(ttl),
            max_sessions=self.max_sessions if limits else 0,
            lock_seconds=self.lock_seconds if limits else 0,
            replaces=replaces,
            origin=origin,
        )
        if not admitted:
            return admitted, detail
        slot, evicted = detail
        tag = user_tag(userid)
        key = f'{self.factory.key_prefix}{{{tag}}}:{slot}'
        suffix = lr.REMEMBERED if remember else ''
        session.adopt(f'{key}.{secret}{suffix}', payload)
        state = session._session_state
        state.timeout = ttl
        state.managed_dict.pop(MARKER, None)
        request.environ[REGISTERED_KEY] = True
        watchers = watchers_of(request.registry)
        if watchers:
            watch.created(watchers, self.namespace)
        handle = lr.handle(slot, digest)
        activity.record(request.environ, 'user_index', 'registered',
                        handle=handle, evicted=len(evicted))  # fmt: skip
        notify(
            request,
            SessionRegistered(request, userid, handle, evicted, login=login),
        )
        if evicted:
            self.notify_revoked(
                request, userid, evicted, 'displaced', len(evicted)
            )
        return admitted, evicted

    def revoke(
        self,
        request: Request | None,
        userid: Any,
        handles: Sequence[str],
        reason: str = 'revoked',
    ) -> int:
        """End sessions of ``userid`` by handle; return how many ended."""
        count = self.index.revoke(userid, *handles, reason=reason)
        self.notify_revoked(request, userid, handles, reason, count)
        return count

    def revoke_all(
        self,
        request: Request | None,
        userid: Any,
        except_handle: str | None = None,
        reason: str = 'revoked',
    ) -> int:
        """End every session of ``userid`` (but ``except_handle``)."""
        count = self.index.revoke_all(
            userid, except_handle=except_handle, reason=reason
        )
        self.notify_revoked(request, userid, (), reason, count)
        return count

    def notify_revoked(
        self,
        request: Request | None,
        userid: Any,
        handles: Iterable[str],
        reason: str,
        count: int,
    ) -> None:
        if request is None or not count:
            return
        activity.record(request.environ, 'user_index', reason,
                        handles=list(handles), count=count)  # fmt: skip
        notify(
            request, SessionRevoked(request, userid, handles, reason, count)
        )


def same_user(recorded: Any, userid: Any) -> bool:
    """Whether the user recorded in a session is ``userid``."""
    if userid is None:
        return False
    if isinstance(recorded, UserRef):
        return recorded.tag == _tag_of(userid)
    return str(recorded) == str(userid)


def _tag_of(userid: Any) -> str:
    """:func:`.store.user_tag` of ``userid``, remembered for the most
    recent users (it is asked on every request of a logged-in session)."""
    try:
        return _cached_tag(userid)
    except TypeError:  # not hashable
        return user_tag(userid)


#: (typed: 1 and 1.0 are equal keys, not the same tag)
_cached_tag = functools.lru_cache(maxsize=4096, typed=True)(user_tag)


def ua_digest(user_agent: str) -> str:
    """A short digest of a User-Agent, to notice when it changes (in the
    bookkeeping of earlier releases)."""
    return format(zlib.crc32(user_agent.encode('utf-8')), '08x')


class Login(dict[str, Any]):
    """The index bookkeeping of a logged-in session, read from its own
    records: ``u`` (the user, a :class:`.index.UserRef`), ``h`` (its
    handle), ``l`` (login time), ``t`` (last activity), ``ip``, ``ua``,
    ``location`` and ``slot``."""

    legacy: bool = False


def marker_of(session: RedisSession) -> dict[str, Any] | None:
    """The index bookkeeping of a loaded session (a :class:`Login`, or the
    dict an earlier release kept in the session data), or ``None``."""
    state = session.__dict__.get('_session_state')
    if state is None:
        return None
    internal = session.__dict__.get('_internal')
    if internal and lr.LOGIN in internal and lr.SECRET in internal:
        login = session.__dict__.get('_login')
        if login is None:
            login = session.__dict__['_login'] = _login(session, internal)
        return login
    marker: dict[str, Any] | None = state.managed_dict.get(MARKER)
    return marker


def _login(
    session: RedisSession, internal: Mapping[bytes, bytes]
) -> Login | None:
    """The :class:`Login` of a session's own records (``None`` if its key
    is not a user's)."""
    key = session.key
    session_id = session.session_id
    tag = tag_of_key(key)
    if tag is None:
        return None
    slot = key.rpartition(':')[2]
    return Login(
        u=user_ref(tag),
        h=lr.handle(slot, internal[lr.SECRET]),
        l=lr.number(internal, lr.LOGIN) / 1000,
        t=lr.number(internal, lr.ACTIVE) / 1000,
        ip=lr.text(internal, lr.IP) or None,
        ua=lr.text(internal, lr.USER_AGENT) or '',
        location=lr.text(internal, lr.LOCATION),
        slot=slot,
        remember=lr.remembered(session_id),
    )


def forget_login(
    tracker: SessionTracker, session: RedisSession, marker: dict[str, Any]
) -> None:
    """The session is no longer the indexed login of ``marker``'s user:
    drop its entry and its records (the session itself stays)."""
    tracker.index.forget(marker['u'], marker['h'])
    if isinstance(marker, Login):
        for name in lr.INDEX_RECORDS:
            session.set_record(name, None)
    else:
        del session._session_state.managed_dict[MARKER]
        session.changed()


#: not asked yet
_UNKNOWN = object()


def bookkeeping(
    tracker: SessionTracker, request: Request, create: bool
) -> None:
    """Before the request's sessions are written: note the activity, IP and
    user agent of the session of ``tracker``'s namespace, at most once per
    ``touch_interval`` unless they changed, in the same round trip as the
    session writes (the hook the include registers, bound to its
    tracker)."""
    if not create:
        return
    session = tracker.loaded_session(request)
    if session is None:
        return
    state = session.__dict__.get('_session_state')
    if state is None:
        return
    registered = REGISTERED_KEY in request.environ
    internal = session.__dict__.get('_internal')
    userid: Any = _UNKNOWN
    if not registered and internal and lr.LOGIN in internal:
        userid = request.authenticated_userid
        if _up_to_date(request, tracker, session, internal, userid):
            return
    marker = marker_of(session)
    if marker is None and not state.managed_dict:
        return
    if not registered:
        # the session's record must name who is logged in now: a login or
        # logout through remember()/forget() alone does not update it
        if userid is _UNKNOWN:
            userid = request.authenticated_userid
        if marker is not None and not same_user(marker['u'], userid):
            forget_login(tracker, session, marker)
            marker = None
        if marker is None:
            if tracker.auto_register and userid is not None:
                tracker.register(request, session, userid, limits=False)
            return
    if marker is None:
        return
    if isinstance(marker, Login):
        _touch(request, tracker, session, marker)
    else:
        _touch_legacy(request, tracker, session, marker)


def _up_to_date(
    request: Request,
    tracker: SessionTracker,
    session: RedisSession,
    internal: Mapping[bytes, bytes],
    userid: Any,
) -> bool:
    """Whether the records of a logged-in session need nothing from this
    request: they name ``userid``, were touched within ``touch_interval``,
    from the request's address and browser. (The question of most requests
    of a logged-in session, answered on the stored bytes.)"""
    if userid is None or lr.SECRET not in internal:
        return False
    key = session.key
    start = key.find('{')
    # the tag between the key's first ``{`` and ``}:`` (see tag_of_key)
    if start < 0 or not key.startswith(f'{{{_tag_of(userid)}}}:', start):
        return False
    try:
        active = int(internal[lr.ACTIVE])
    except (KeyError, ValueError):
        return False
    if time.time() * 1000 - active >= tracker.touch_interval * 1000:
        return False
    ip = tracker.client_info.ip(request)
    if ip is None:
        if internal.get(lr.IP):
            return False
    elif not ip or internal.get(lr.IP) != ip.encode('utf-8'):
        return False
    ua = lr.clean((request.environ.get('HTTP_USER_AGENT') or '')[:512])
    return internal.get(lr.USER_AGENT, b'') == ua.encode('utf-8')


def _touch(
    request: Request,
    tracker: SessionTracker,
    session: RedisSession,
    login: Login,
) -> None:
    now = time.time()
    info = tracker.client_info
    ip = info.ip(request)
    ua = lr.clean((request.user_agent or '')[:512])
    changed = ip != login['ip'] or ua != login['ua']
    if changed:
        describe = info.describe(request)
        session.set_record(lr.IP, lr.encode(describe['ip'] or ''))
        session.set_record(lr.USER_AGENT, lr.encode(describe['ua']))
        location = describe.get('location')
        session.set_record(
            lr.LOCATION, lr.encode(location) if location else None
        )
    elif now - login['t'] < tracker.touch_interval:
        return
    session.set_record(lr.ACTIVE, lr.encode(int(now * 1000)))
    for command in tracker.index.touch_commands(
        login['u'], login['slot'], tracker.score(session.timeout)
    ):
        queue_command(request, tracker.index.client, command)
    activity.record(request.environ, 'user_index', 'touched',
                    changed=['ip', 'ua'] if changed else [])  # fmt: skip


def _touch_legacy(
    request: Request,
    tracker: SessionTracker,
    session: RedisSession,
    marker: dict[str, Any],
) -> None:
    now = int(time.time())
    info = tracker.client_info
    ip = info.ip(request)
    ua = request.user_agent or ''
    changes = None
    if ip != marker.get('ip') or ua_digest(ua[:512]) != marker.get('ua'):
        changes = info.describe(request)
        marker['ip'] = changes['ip']
        marker['ua'] = ua_digest(changes['ua'])
    if changes is None and now - marker.get('t', 0) < tracker.touch_interval:
        return
    marker['t'] = now
    session.changed()
    queue_command(
        request,
        tracker.index.client,
        tracker.index.legacy_touch_command(marker['u'], marker['h'], changes),
    )
    activity.record(request.environ, 'user_index', 'touched',
                    changed=sorted(changes or ()))  # fmt: skip


class UserSessions:
    """``request.user_sessions``: the sessions of the current user.

    ``userid`` and ``current`` (the handle of this request's session) are
    ``None`` when the session is not a logged-in one.
    """

    userid: Any
    #: the handle of this request's session
    current: str | None

    def __init__(self, request: Request) -> None:
        self.request = request
        self.tracker: SessionTracker = request.registry.getUtility(IUserIndex)
        session = self.tracker.session(request)
        marker = marker_of(session) if session is not None else None
        userid = request.authenticated_userid
        if marker is not None and (
            same_user(marker['u'], userid) or REGISTERED_KEY in request.environ
        ):
            self.userid, self.current = marker['u'], marker['h']
        else:  # signed in, but not indexed yet (or not by a session)
            self.userid = userid
            self.current = None

    def list(self) -> builtins.list[SessionEntry]:
        """This user's sessions, most recently active first."""
        if self.userid is None:
            return []
        return self.tracker.index.list(self.userid, current=self.current)

    def revoke(self, handle: str) -> int:
        """End one of this user's sessions (this one logs the user out)."""
        if self.userid is None:
            return 0
        count = self.tracker.revoke(self.request, self.userid, [handle])
        if handle == self.current:
            self._end_current()
        return count

    def revoke_others(self) -> int:
        """End every other session of this user."""
        if self.userid is None:
            return 0
        return self.tracker.revoke_all(
            self.request, self.userid, except_handle=self.current
        )

    def revoke_all(self) -> int:
        """End every session of this user, this one included."""
        if self.userid is None:
            return 0
        count = self.tracker.revoke_all(self.request, self.userid)
        self._end_current()
        return count

    def _end_current(self) -> None:
        session = self.tracker.session(self.request)
        session.discard()
        self.userid = self.current = None
