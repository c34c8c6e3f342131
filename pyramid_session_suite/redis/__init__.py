"""Redis-backed session namespaces, built on ``pyramid_session_redis``.

Compared with ``pyramid_session_redis.RedisSessionFactory``:

- each factory owns one Redis client, created once;
- loading a session is one ``GETEX`` (read and refresh the TTL together), so
  a read-only request costs one round trip;
- a new session is written once, at the end of the request; ids are made
  locally, never inserted as empty placeholders;
- an existing session gets only the keys its request changed, merged into
  what Redis holds (:mod:`.stored`), so overlapping requests of one browser
  lose nothing, and a session deleted while a request was in flight
  (revoked, expired) is never resurrected;
- a cookie whose session is gone is cleared;
- payloads are JSON by default, not pickle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
import datetime
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any
from pyramid_session_redis import _cookie_callback, _set_cookie
from pyramid_session_redis.exceptions import (
    InvalidSession,
    InvalidSession_NoSessionCookie,
)
from pyramid_session_redis.util import (
    _StringSerializer,
    empty_session_payload,
)
import redis

from .._activity import record
from .._request_cookies import readable_cookies
from ..events import SessionEnded
from ..signing import RotatingSigner
from ..watch import notify, watchers_of
from . import login_records, stored
from ._persist import LOADED_SESSIONS_KEY, REDIS_ERRORS, discard_sessions
from .clients import redis_client as _redis_client
from .session import (
    EMPTIED,
    ENDED_KEY,
    ENDED_SUFFIX,
    RedisSession,
    decode,
    json_dumps,
    json_loads,
)

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

    from ..watch import Watcher
    from .clients import RedisClient

__all__ = [
    'ENDED_KEY',
    'RedisSession',
    'RedisSessionFactory',
    'json_dumps',
    'json_loads',
    'redis_session_factory',
]

log = logging.getLogger(__name__)


#: what an ``id_generator`` may make
_GENERATED_RE = re.compile(r'^[A-Za-z0-9_-]{22,128}~?\Z')

#: options of ``pyramid_session_redis.RedisSessionFactory`` not offered,
#: and why
NOT_OFFERED = {
    'set_redis_ttl_readheavy': "Redis' TTL is the one clock: every read "
    'refreshes it in its one GETEX',
    'timeout_trigger': "Redis' TTL is the one clock: every read refreshes "
    'it in its one GETEX',
    'python_expires': "Redis' TTL is the one clock (no expiry kept in the "
    'payload)',
    'redis_client_callable': 'a factory has one Redis client, made once: '
    'pass it as redis_client',
}

#: how many verified cookie values a factory remembers (a browser's next
#: request is not verified again): about 1 MB
VERIFIED_COOKIES = 4096

#: the part of a session id after the key prefix: an optional Redis hash
#: tag (``{tag}:``, the user's, so one user's keys share a slot) and 256
#: random bits
_ID_RE = re.compile(r'^(?:\{[A-Za-z0-9_-]{1,200}\}:)?[A-Za-z0-9_-]{43}~?\Z')


#: the factory's attributes its sessions' options come from
_SESSION_OPTIONS = frozenset(
    {'redis', 'serialize', 'deserialize', 'new_session_id', 'new_payload',
     'set_redis_ttl', 'detect_changes', 'deserialized_fails_new', 'timeout',
     'remember_max_age', 'namespace'}
)  # fmt: skip


class RedisSessionFactory:
    """A Pyramid session factory that stores sessions in Redis.

    The result is an :class:`pyramid.interfaces.ISessionFactory` usable with
    ``config.set_session_factory`` or as a ``request.session_multi``
    namespace. Options follow ``pyramid_session_redis.RedisSessionFactory``;
    the Redis connection is given as ``redis_url`` (with ``redis_options``
    passed to :meth:`redis.Redis.from_url`) or as a ready ``redis_client``.
    ``lock_timeout`` (seconds) bounds how long a request of a view with
    ``session_lock`` holds its session's lock; ``lock_wait`` how long
    another waits for it. ``remember_max_age`` (seconds) is how long a
    login made with ``remember=True`` lasts unused: its key's TTL and its
    cookie's ``Max-Age``. ``secret`` is one secret or a sequence of them,
    newest first (see :mod:`.signing`).
    """

    backend: str = 'redis'

    #: the namespace it serves (set when it is registered)
    namespace: str | None = None

    def __init__(
        self,
        secret: str | bytes | Iterable[str | bytes] | None = None,
        *,
        cookie_signer: Any = None,
        timeout: int | None = 1200,
        cookie_name: str = 'session',
        cookie_max_age: int | None = None,
        cookie_path: str = '/',
        cookie_domain: str | None = None,
        cookie_secure: bool = False,
        cookie_httponly: bool = True,
        cookie_samesite: str | None = 'Lax',
        cookie_on_exception: bool = True,
        redis_url: str | None = None,
        redis_client: RedisClient | None = None,
        redis_options: Mapping[str, Any] | None = None,
        key_prefix: str = 'session:',
        serialize: Callable[[Any], bytes] = json_dumps,
        deserialize: Callable[[bytes], Any] = json_loads,
        set_redis_ttl: bool = True,
        detect_changes: bool = True,
        deserialized_fails_new: bool = True,
        invalidate_empty_session: bool = True,
        func_check_response_allow_cookies: (
            Callable[[Response], bool] | None
        ) = None,
        func_invalid_logger: (
            Callable[[Request, Exception], object] | None
        ) = None,
        lock_timeout: float = 30,
        lock_wait: float = 10,
        remember_max_age: int | None = 30 * 86400,
        cookie_expires: (
            datetime.datetime | datetime.timedelta | float | None
        ) = None,
        cookie_comment: str | None = None,
        id_generator: Callable[[], str] | None = None,
        redis_host: str | None = None,
        redis_port: int = 6379,
        redis_db: int = 0,
        redis_password: str | None = None,
        redis_socket_timeout: float | None = None,
        redis_unix_socket_path: str | None = None,
        redis_encoding: str | None = None,
        redis_encoding_errors: str | None = None,
        redis_connection_pool: Any = None,
        **unsupported: Any,
    ) -> None:
        for name in unsupported:
            if name in NOT_OFFERED:
                raise TypeError(
                    f'RedisSessionFactory: {name} is not offered: '
                    f'{NOT_OFFERED[name]}'
                )
            raise TypeError(
                f'RedisSessionFactory got an unexpected option {name!r}'
            )
        if (secret is None) == (cookie_signer is None):
            raise ValueError('give one of `secret` and `cookie_signer`')
        if secret is not None:
            cookie_signer = RotatingSigner(
                secret,
                'pyramid_session_suite.redis.' + cookie_name,
                'sha512',
                serializer=_StringSerializer(),
                cache=VERIFIED_COOKIES,
            )
        if redis_connection_pool is not None and redis_client is None:
            redis_client = redis.Redis(connection_pool=redis_connection_pool)
        if redis_client is None and redis_url is None:
            redis_url, redis_options = _url_of(
                redis_options,
                host=redis_host,
                port=redis_port,
                db=redis_db,
                password=redis_password,
                socket_timeout=redis_socket_timeout,
                unix_socket_path=redis_unix_socket_path,
                encoding=redis_encoding,
                encoding_errors=redis_encoding_errors,
            )
        if (redis_url is None) == (redis_client is None):
            raise ValueError(
                'give one of `redis_url`, `redis_client`, '
                '`redis_connection_pool` and `redis_host`'
            )
        if redis_client is None:
            redis_client = _redis_client(redis_url, **(redis_options or {}))
        self.redis = redis_client
        self.redis_url = redis_url
        self.timeout = timeout or None
        self.key_prefix = key_prefix
        self.cookie_name = self._cookie_name = cookie_name
        self.cookie_signer = cookie_signer
        #: cookie value -> session id, for cookies signed with the newest
        #: secret whose id was checked (a browser's next request skips
        #: both); only with the factory's own signer, whose secrets never
        #: change (another may refuse later what it accepted once)
        self._known_cookies: dict[str, str] | None = (
            {} if secret is not None else None
        )
        self.serialize = serialize
        self.deserialize = deserialize
        self.set_redis_ttl = set_redis_ttl
        self.detect_changes = detect_changes
        self.deserialized_fails_new = deserialized_fails_new
        self.invalidate_empty_session = invalidate_empty_session
        self.cookie_on_exception = cookie_on_exception
        self.func_check_response_allow_cookies = (
            func_check_response_allow_cookies
        )
        self.func_invalid_logger = func_invalid_logger
        if not lock_timeout or lock_timeout <= 0:
            raise ValueError('lock_timeout must be more than 0 seconds')
        if lock_wait is None or lock_wait < 0:
            raise ValueError('lock_wait must be 0 seconds or more')
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_wait
        self.remember_max_age = remember_max_age or None
        self.cookie_options: dict[str, Any] = {
            'max_age': cookie_max_age,
            'path': cookie_path,
            'domain': cookie_domain,
            'secure': cookie_secure,
            'httponly': cookie_httponly,
        }
        self.cookie_expires = cookie_expires
        if cookie_comment is not None:
            self.cookie_options['comment'] = cookie_comment
        self.id_generator = id_generator
        if cookie_samesite is not None:
            self.cookie_options['samesite'] = cookie_samesite

    def __repr__(self) -> str:
        return (
            f'<{type(self).__name__} cookie={self.cookie_name!r} '
            f'prefix={self.key_prefix!r}>'
        )

    def new_session_id(self, tag: str | None = None) -> str:
        """Return a new session id: the key prefix, ``{tag}:`` when a hash
        tag is given, and 256 random bits (or what ``id_generator`` made:
        22 to 128 URL-safe characters)."""
        if tag:
            return f'{self.key_prefix}{{{tag}}}:{secrets.token_urlsafe(32)}'
        if self.id_generator is not None:
            made = self.id_generator()
            if not (isinstance(made, str) and _GENERATED_RE.match(made)):
                raise ValueError(
                    'id_generator must return 22 to 128 URL-safe '
                    f'characters (letters, digits, - and _), not {made!r}'
                )
            return self.key_prefix + made
        return self.key_prefix + secrets.token_urlsafe(32)

    def peek(self, request: Request) -> dict[Any, Any] | None:
        """Return a copy of the data of ``request``'s session, or ``None``.

        A plain ``GET``: no TTL refresh, no callback, no cookie; for
        observers such as the debug toolbar panel.
        """
        cookie = readable_cookies(request).get(self.cookie_name)
        session_id = cookie and self.session_id_from_cookie(cookie)
        if not session_id:
            return None
        key, secret = login_records.split_id(session_id)
        data = self.redis.get(key)
        if data is None or stored.is_ended(data):
            return None
        try:
            payload, records = decode(data, self.deserialize)
        except Exception:
            return None
        if secret is not None and not login_records.matches(
            records or {}, secret
        ):
            return None
        return dict(payload['m'])

    def set_cookie(
        self, response: Response, session_id: str, **overrides: Any
    ) -> None:
        """Set this namespace's cookie for ``session_id`` on ``response``,
        with the factory's cookie attributes (``overrides`` win)."""
        value = self.cookie_signer.dumps(session_id).decode('utf-8')
        options = self.cookie_options_for(session_id, overrides)
        response.set_cookie(self.cookie_name, value, **options)
        vary = set(response.vary or ())
        vary.add('Cookie')
        response.vary = sorted(vary)

    def cookie_options_for(
        self, session_id: str, overrides: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The attributes of the cookie of ``session_id``: the factory's,
        a remembered login's ``Max-Age``, ``cookie_expires`` as a
        ``Max-Age`` (``overrides`` win)."""
        options = dict(self.cookie_options)
        if login_records.remembered(session_id) and self.remember_max_age:
            options['max_age'] = self.remember_max_age
        elif self.cookie_expires is not None and options['max_age'] is None:
            expires = self.cookie_expires
            if isinstance(expires, datetime.datetime):
                now = datetime.datetime.now(expires.tzinfo)
                expires = expires - now
            if isinstance(expires, datetime.timedelta):
                expires = expires.total_seconds()
            options['max_age'] = max(0, int(expires))
        if overrides:
            options.update(overrides)
        return options

    def new_payload(self) -> dict[str, Any]:
        return empty_session_payload(timeout=self.timeout or 0)

    def session_id_from_cookie(self, value: str) -> str | None:
        """Return the session id in a cookie value, or ``None``."""
        try:
            session_id = self.cookie_signer.loads(value.encode('utf-8'))
        except (ValueError, TypeError, UnicodeError):
            return None
        return self._checked_id(session_id)

    def _signed_by_older(self, value: str) -> bool:
        """Whether the cookie value just read was signed with an older
        secret (so it is signed again)."""
        older = getattr(self.cookie_signer, 'signed_by_older', None)
        return older is not None and older(value.encode('utf-8'))

    def _checked_id(self, session_id: Any) -> str | None:
        prefix = self.key_prefix
        if not (isinstance(session_id, str) and session_id.startswith(prefix)):
            return None
        rest = session_id[len(prefix) :]
        if not (
            _ID_RE.match(rest)
            or login_records.ID_RE.match(rest)
            or (self.id_generator is not None and _GENERATED_RE.match(rest))
        ):
            return None
        return session_id

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _SESSION_OPTIONS:
            self.__dict__.pop('_options', None)  # made again when needed

    def _session_options(self) -> dict[str, Any]:
        """The attributes a session of this factory starts with, as
        ``RedisSession``'s constructor would set them (see
        :meth:`RedisSession.load`); made once, and again when one of the
        factory's attributes they come from is set."""
        options: dict[str, Any] | None = self.__dict__.get('_options')
        if options is None:
            options = self.__dict__['_options'] = self._make_options()
        return options

    def _make_options(self) -> dict[str, Any]:
        return {
            'redis': self.redis,
            'serialize': self.serialize,
            'deserialize': self.deserialize,
            'new_session': self.new_session_id,
            'new_payload': self.new_payload,
            '_set_redis_ttl': self.set_redis_ttl,
            '_set_redis_ttl_readheavy': None,
            '_detect_changes': self.detect_changes,
            '_deserialized_fails_new': self.deserialized_fails_new,
            '_timeout': self.timeout,
            '_timeout_trigger': None,
            '_python_expires': False,
            'remember_timeout': self.remember_max_age,
            'namespace': self.namespace,
        }

    def _session(
        self, session_id: str | None, watchers: Sequence[Watcher] = ()
    ) -> RedisSession:
        """The stored session ``session_id`` (raise ``InvalidSession`` when
        it is not one), or a new one (``None``)."""
        options = self._session_options()
        if session_id is None:
            return RedisSession.new_with(options, watchers)
        return RedisSession.load(session_id, options, watchers)

    def _session_id_of(self, cookie: str) -> tuple[str | None, bool]:
        """``(session id or None, signed by an older secret)`` of a cookie
        value."""
        known = self._known_cookies
        if known is not None:
            session_id = known.get(cookie)
            if session_id is not None:
                return session_id, False
        session_id = self.session_id_from_cookie(cookie)
        if session_id is None:
            return None, False
        if self._signed_by_older(cookie):
            return session_id, True
        if known is None:
            return session_id, False
        if len(known) >= VERIFIED_COOKIES:
            known.clear()
        known[cookie] = session_id
        return session_id, False

    def __call__(self, request: Request) -> RedisSession:
        session_id = None
        older = False
        cookie = readable_cookies(request).get(self.cookie_name)
        if cookie is not None:
            session_id, older = self._session_id_of(cookie)
        stale = False
        watchers = watchers_of(request.registry)
        try:
            if session_id is None:
                raise InvalidSession_NoSessionCookie('no session cookie')
            session = self._session(session_id, watchers)
            cookie_was_valid = True
            if older:
                session._session_state.please_recookie = True
        except InvalidSession as exc:
            if self.func_invalid_logger is not None:
                self.func_invalid_logger(request, exc)
            stale = session_id is not None
            cookie_was_valid = False
            session = self._session(None, watchers)
            reason = getattr(exc, 'ended_reason', None)
            if reason is not None:
                self._ended(request, reason)
            elif (
                session_id is not None  # stale
                and '{' in session_id
                and '.' not in session_id
            ):
                self._why_ended(request, session_id)
        session.environ = request.environ
        session.cookie_name = self.cookie_name
        request.add_response_callback(
            _CookieCallback(self, session, cookie_was_valid, stale)
        )
        request.add_finished_callback(session._deferred_callback)
        loaded = request.environ.get(LOADED_SESSIONS_KEY)
        if loaded is None:
            request.environ[LOADED_SESSIONS_KEY] = [session]
        else:
            loaded.append(session)
        return session

    def _why_ended(self, request: Request, session_id: str) -> None:
        """A user's session of an earlier release is gone: find out why
        (it said so in a key of its own then)."""
        reason = self.redis.get(session_id + ENDED_SUFFIX)
        if reason is not None:
            self._ended(request, reason.decode('utf-8', 'replace'))

    def _ended(self, request: Request, reason: str) -> None:
        """The session named by the request's cookie ended: say why, once,
        for the app."""
        request.environ[ENDED_KEY] = reason
        record(request.environ, 'redis', 'ended session came back',
               cookie=self.cookie_name, reason=reason)  # fmt: skip
        notify(request, SessionEnded(request, self, reason))


#: the spelling used by function-style factories
redis_session_factory = RedisSessionFactory


class _CookieCallback:
    """The response callback of one session: sets or deletes its cookie."""

    __slots__ = ('factory', 'session', 'cookie_was_valid', 'stale')

    def __init__(
        self,
        factory: RedisSessionFactory,
        session: RedisSession,
        cookie_was_valid: bool,
        stale: bool,
    ) -> None:
        self.factory = factory
        self.session = session
        self.cookie_was_valid = cookie_was_valid
        self.stale = stale

    def __call__(self, request: Request, response: Response) -> None:
        factory = self.factory
        session = self.session
        if isinstance(request.exception, REDIS_ERRORS):
            # the store failed: change nothing, neither cookie nor data
            discard_sessions(request)
            return
        state = session.__dict__.get('_session_state')
        if (
            state is not None
            and not state.new
            and not state.please_recookie
            and state.managed_dict
        ):
            return  # a session that keeps its cookie as it is
        if state is not None and state.new and state.dont_persist:
            if getattr(state, 'ended_before_created', False):
                # ended (displaced by a concurrent login, revoked) before
                # it was written: its cookie leads the browser to the
                # reason, on its next request, like any ended session
                self._set_cookie(request, response)
                return
            if state.managed_dict:
                # a new session that was not created: no cookie for it
                if self.stale:
                    self._delete_cookie(response=response)
                return
        if state is not None and not state.new and not state.managed_dict:
            merged = getattr(state, 'merged', None)
            if merged == EMPTIED:
                # this request emptied it, and its key is gone
                session.discard()
            elif merged is not None:
                # emptied here, but other requests added keys meanwhile
                return
        check = factory.func_check_response_allow_cookies
        if check is not None and not check(response):
            return
        logged_in = getattr(session, 'logged_in', False)
        _cookie_callback(
            session,
            request,
            response,
            session_cookie_was_valid=self.cookie_was_valid,
            cookie_on_exception=factory.cookie_on_exception,
            set_cookie_func=self._set_cookie,
            delete_cookie_func=self._delete_cookie,
            func_check_response_allow_cookies=None,
            invalidate_empty_session=(
                factory.invalidate_empty_session and not logged_in
            ),
        )
        # The request's cookie names a session that no longer exists, and
        # no new session replaces it: delete the cookie. (The callback above
        # covers a valid cookie whose session is still invalidated.)
        state = session.__dict__.get('_session_state')
        if state is None:
            if self.stale:
                self._delete_cookie(response=response)
                session._record('stale cookie cleared')
        elif state.new and not state.managed_dict:
            if self.stale or (self.cookie_was_valid and session.invalidated):
                self._delete_cookie(response=response)
                if self.stale:
                    session._record('stale cookie cleared')

    def _set_cookie(
        self, request: Request, response: Response, **overrides: Any
    ) -> None:
        options = self.factory.cookie_options_for(
            self.session.session_id, overrides
        )
        _set_cookie(
            self.session,
            request,
            response,
            cookie_signer=self.factory.cookie_signer,
            cookie_name=self.factory.cookie_name,
            **options,
        )

    def _delete_cookie(self, response: Response) -> None:
        # with the attributes it was set with: a browser ignores the
        # deletion of a ``__Host-`` or ``__Secure-`` cookie without Secure
        options = self.factory.cookie_options
        response.set_cookie(self.factory.cookie_name, None, **options)


def _url_of(
    options: Mapping[str, Any] | None, **given: Any
) -> tuple[str | None, dict[str, Any]]:
    """A ``redis://`` (or ``unix://``) URL and client options from the
    separate connection options of ``pyramid_session_redis``."""
    options = dict(options or {})
    if given['host'] is None and given['unix_socket_path'] is None:
        return None, options
    from urllib.parse import quote

    password = given['password']
    auth = f':{quote(password, safe="")}@' if password else ''
    if given['unix_socket_path']:
        url = f'unix://{auth}{given["unix_socket_path"]}?db={given["db"]}'
    else:
        url = f'redis://{auth}{given["host"]}:{given["port"]}/{given["db"]}'
    for name in ('socket_timeout', 'encoding', 'encoding_errors'):
        if given[name] is not None:
            options.setdefault(name, given[name])
    return url, options
