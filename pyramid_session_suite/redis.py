"""Redis-backed session namespaces, built on ``pyramid_session_redis``.

Compared with ``pyramid_session_redis.RedisSessionFactory``:

- each factory owns one Redis client, created once;
- loading a session is one ``GETEX`` (read and refresh the TTL together), so
  a read-only request costs one round trip;
- a new session is written with one ``SET ... NX`` at the end of the
  request; ids are made locally, never inserted as empty placeholders;
- an existing session is written with ``SET ... XX``, so a session deleted
  while a request was in flight (revoked, expired) is never resurrected;
- a cookie whose session is gone is cleared;
- payloads are JSON by default, not pickle.
"""

import json
import logging
import re
import secrets
from pyramid_session_redis import _cookie_callback, _delete_cookie, _set_cookie
from pyramid_session_redis.exceptions import (
    InvalidSession,
    InvalidSession_DeserializationError,
    InvalidSession_Lazycreate,
    InvalidSession_NoSessionCookie,
    InvalidSession_NotInBackend,
    RawDeserializationError,
)
from pyramid_session_redis.session import (
    RedisSession as _BaseRedisSession,
    hashed_value,
)
from pyramid_session_redis.util import (
    LazyCreateSession,
    _StringSerializer,
    empty_session_payload,
)
import redis
from webob.cookies import SignedSerializer

from .activity import record
from .events import SessionEnded
from .persist import LOADED_SESSIONS_KEY, Command, discard_sessions
from .settings import check_secret

log = logging.getLogger(__name__)

#: environ key: why the session named by the request's cookie ended
#: (``displaced``, ``revoked``, ``expired`` …), when it says so
ENDED_KEY = 'session_suite.ended'

#: suffix of the key that says why a session ended
ENDED_SUFFIX = ':ended'

#: KEYS sid, sid:ended; ARGV payload, ttl -> OK | nil (id taken) | 0 (ended)
CREATE_UNLESS_ENDED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if tonumber(ARGV[2]) > 0 then
  return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX')
"""

#: defaults for the Redis client of a factory, in seconds
DEFAULT_REDIS_OPTIONS = {
    'socket_timeout': 2.0,
    'socket_connect_timeout': 1.0,
}

#: the part of a session id after the key prefix: an optional Redis hash
#: tag (``{tag}:``, the user's, so one user's keys share a slot) and 256
#: random bits
_ID_RE = re.compile(r'^(?:\{[A-Za-z0-9_-]{1,200}\}:)?[A-Za-z0-9_-]{43}$')


def json_dumps(payload):
    return json.dumps(payload, separators=(',', ':')).encode('utf-8')


def json_loads(data):
    return json.loads(data)


class RedisSession(_BaseRedisSession):
    """A ``pyramid_session_redis`` session with guarded reads and writes.

    Everything documented for ``pyramid_session_redis.RedisSession`` holds,
    with these differences: ``ensure_id()`` reserves an id without writing
    to Redis (the key is written at the end of the request, and only if the
    session holds data), and a write never recreates a key that was deleted
    after the session was loaded.
    """

    #: ``True`` when the load already refreshed the key's TTL (GETEX).
    _ttl_refreshed = False

    #: ``True`` once :meth:`invalidate` was called in this request, even if
    #: the session was used again afterwards.
    invalidated = False

    #: the WSGI environ of the request, for :func:`.activity.record`
    environ = None

    #: the namespace's cookie name, for :func:`.activity.record`
    cookie_name = None

    def _record(self, action, **details):
        if self.environ is not None:
            record(self.environ, 'redis', action, cookie=self.cookie_name,
                   **details)  # fmt: skip

    def from_redis(self, session_id=None, persisted_hash=None):
        session_id = session_id or self.session_id
        if session_id is LazyCreateSession:
            raise InvalidSession_Lazycreate(
                '`session_id` is LazyCreateSession'
            )
        if self._timeout and self._set_redis_ttl:
            persisted = self.redis.getex(session_id, ex=self._timeout)
            self._ttl_refreshed = True
        else:
            persisted = self.redis.get(session_id)
        if persisted is None:
            raise InvalidSession_NotInBackend('session not in Redis')
        try:
            deserialized = self.deserialize(persisted)
            # a payload of another shape is as unreadable as a broken one
            deserialized['m'], deserialized['c']  # noqa: B018
        except Exception as exc:
            if self._deserialized_fails_new:
                raise InvalidSession_DeserializationError(
                    'session payload did not deserialize'
                ) from exc
            raise RawDeserializationError(exc) from exc
        if deserialized.get('t', self._timeout) != self._timeout:
            # adjust_session_timeout() gave this session its own timeout:
            # the GETEX used the factory's, so refresh again at the end.
            self._ttl_refreshed = False
        if persisted_hash is True:
            return deserialized, hashed_value(persisted)
        if persisted_hash is False:
            return deserialized, None
        return deserialized

    def ensure_id(self):
        state = self._session_state
        if state.session_id is LazyCreateSession:
            state.session_id = self.new_session()
            state.insert_pending = True
        return state.session_id

    def _ttl(self):
        if self.timeout is not None and self._set_redis_ttl:
            return self.timeout
        return None

    def persist_command(self, serialized_session=None):
        """Return the :class:`Command` that writes this session: ``SET NX``
        for a new key, ``SET XX`` for an existing one."""
        self.ensure_id()
        state = self._session_state
        if serialized_session is None:
            serialized_session = self.to_redis()
        ttl = self._ttl()
        create = getattr(state, 'insert_pending', False)
        state.please_persist = False
        state.dont_refresh = True

        def written(ok):
            if create:
                if ok == 0:  # ended (displaced, revoked) before it began
                    self._record('not created: ended during the request')
                    state.dont_persist = True
                    return
                if not ok:
                    raise RuntimeError('session id collision')
                self._record('created', ttl=ttl)
                state.insert_pending = False
            elif not ok:
                # deleted (revoked, expired) since it was loaded: stays so
                log.info('session was deleted during the request; not saved')
                self._record('not saved: deleted during the request')
                state.dont_persist = True
                return
            else:
                self._record('saved', ttl=ttl)
            state.persisted_hash = hashed_value(serialized_session)

        sid = state.session_id
        if create and '{' in sid:
            # a user's session (see rotate()): not if it ended meanwhile
            args = (CREATE_UNLESS_ENDED, 2, sid, sid + ENDED_SUFFIX,
                    serialized_session, ttl or 0)  # fmt: skip
            return Command('eval', args, None, written)
        options = (
            {'ex': ttl, 'nx': True} if create else {'ex': ttl, 'xx': True}
        )
        return Command('set', (sid, serialized_session), options, written)

    def do_persist(self, serialized_session=None):
        """Write the session to Redis now."""
        self.persist_command(serialized_session).run(self.redis)

    def do_refresh(self, force_redis_ttl=None):
        if force_redis_ttl is None and self._ttl_refreshed:
            self._session_state.please_refresh = False
            return
        super().do_refresh(force_redis_ttl=force_redis_ttl)

    def invalidate(self):
        state = self.__dict__.get('_session_state')
        if (
            state is not None
            and state.session_id is not LazyCreateSession
            and not getattr(state, 'insert_pending', False)
        ):
            self.redis.delete(state.session_id)
            self._record('deleted')
        self.__dict__.pop('_session_state', None)
        self._ttl_refreshed = False
        self.invalidated = True

    def discard(self):
        """Forget the session in this request without touching Redis (its
        key was deleted elsewhere, e.g. revoked): its cookie is deleted and
        nothing is written."""
        self.__dict__.pop('pending_deletes', None)
        self.__dict__.pop('_session_state', None)
        self._ttl_refreshed = False
        self.invalidated = True

    def rotate(self, tag=None, session_id=None):
        """Give the session a new id (``session_id``, or a new one under
        hash tag ``tag``), keeping its data: the new key is written and the
        old one deleted at the end of the request, in one round trip. Call
        it at login, against session fixation."""
        state = self._session_state
        old = state.session_id
        if old is not LazyCreateSession and not getattr(
            state, 'insert_pending', False
        ):
            self.__dict__.setdefault('pending_deletes', []).append(old)
        state.session_id = session_id or self.new_session(tag)
        state.insert_pending = True
        state.new = True
        state.please_persist = True
        state.persisted_hash = None
        self._ttl_refreshed = False
        return state.session_id

    def flush_commands(self, create=True):
        """Return the commands that write the pending changes; used by the
        persist tween, which sends them in one round trip per client.

        With ``create`` false (an error response), a new session is not
        created: no key, no cookie. Sessions that end the request empty are
        left to the cookie callback, which deletes them instead.
        """
        commands = [
            Command('delete', (key,), {}, None)
            for key in self.__dict__.pop('pending_deletes', ())
        ]
        state = self.__dict__.get('_session_state')
        if state is None or state.dont_persist or not state.managed_dict:
            return commands
        if state.new and not create:
            state.dont_persist = state.dont_refresh = True
            self._record('not created: error response')
            return commands
        state.flushed = True
        if state.please_persist:
            commands.append(self.persist_command())
        else:
            serialized = state.should_persist(self)
            if serialized:
                commands.append(self.persist_command(serialized))
        return commands

    def _deferred_callback(self, request):
        state = self.__dict__.get('_session_state')
        try:
            for key in self.__dict__.pop('pending_deletes', ()):
                self.redis.delete(key)
            if (
                state is not None
                and getattr(state, 'flushed', False)
                and not state.please_persist
            ):
                # the tween already compared and wrote; only a refresh may
                # be left (changes after it must call session.changed())
                if state.please_refresh and not state.dont_refresh:
                    self.do_refresh()
                return
            super()._deferred_callback(request)
        except redis.RedisError:
            log.exception('could not save a session at the end of a request')


class RedisSessionFactory:
    """A Pyramid session factory that stores sessions in Redis.

    The result is an :class:`pyramid.interfaces.ISessionFactory` usable with
    ``config.set_session_factory`` or as a ``request.session_multi``
    namespace. Options follow ``pyramid_session_redis.RedisSessionFactory``;
    the Redis connection is given as ``redis_url`` (with ``redis_options``
    passed to :meth:`redis.Redis.from_url`) or as a ready ``redis_client``.
    """

    backend = 'redis'

    def __init__(
        self,
        secret=None,
        *,
        cookie_signer=None,
        timeout=1200,
        cookie_name='session',
        cookie_max_age=None,
        cookie_path='/',
        cookie_domain=None,
        cookie_secure=False,
        cookie_httponly=True,
        cookie_samesite='Lax',
        cookie_on_exception=True,
        redis_url=None,
        redis_client=None,
        redis_options=None,
        key_prefix='session:',
        serialize=json_dumps,
        deserialize=json_loads,
        set_redis_ttl=True,
        detect_changes=True,
        deserialized_fails_new=True,
        invalidate_empty_session=True,
        func_check_response_allow_cookies=None,
        func_invalid_logger=None,
    ):
        if (secret is None) == (cookie_signer is None):
            raise ValueError('give one of `secret` and `cookie_signer`')
        if secret is not None:
            check_secret(secret)
            cookie_signer = SignedSerializer(
                secret,
                'pyramid_session_suite.redis.' + cookie_name,
                'sha512',
                serializer=_StringSerializer(),
            )
        if (redis_url is None) == (redis_client is None):
            raise ValueError('give one of `redis_url` and `redis_client`')
        if redis_client is None:
            options = dict(DEFAULT_REDIS_OPTIONS, **(redis_options or {}))
            redis_client = redis.Redis.from_url(redis_url, **options)
        self.redis = redis_client
        self.redis_url = redis_url
        self.timeout = timeout or None
        self.key_prefix = key_prefix
        self.cookie_name = self._cookie_name = cookie_name
        self.cookie_signer = cookie_signer
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
        self.cookie_options = {
            'max_age': cookie_max_age,
            'path': cookie_path,
            'domain': cookie_domain,
            'secure': cookie_secure,
            'httponly': cookie_httponly,
        }
        if cookie_samesite is not None:
            self.cookie_options['samesite'] = cookie_samesite

    def __repr__(self):
        return (
            f'<{type(self).__name__} cookie={self.cookie_name!r} '
            f'prefix={self.key_prefix!r}>'
        )

    def new_session_id(self, tag=None):
        """Return a new session id: the key prefix, ``{tag}:`` when a hash
        tag is given, and 256 random bits."""
        if tag:
            return f'{self.key_prefix}{{{tag}}}:{secrets.token_urlsafe(32)}'
        return self.key_prefix + secrets.token_urlsafe(32)

    def peek(self, request):
        """Return a copy of the data of ``request``'s session, or ``None``.

        A plain ``GET``: no TTL refresh, no callback, no cookie; for
        observers such as the debug toolbar panel.
        """
        cookie = request.cookies.get(self.cookie_name)
        session_id = cookie and self.session_id_from_cookie(cookie)
        if not session_id:
            return None
        data = self.redis.get(session_id)
        if data is None:
            return None
        try:
            return dict(self.deserialize(data)['m'])
        except Exception:
            return None

    def set_cookie(self, response, session_id, **overrides):
        """Set this namespace's cookie for ``session_id`` on ``response``,
        with the factory's cookie attributes (``overrides`` win)."""
        value = self.cookie_signer.dumps(session_id).decode('utf-8')
        options = dict(self.cookie_options, **overrides)
        response.set_cookie(self.cookie_name, value, **options)
        vary = set(response.vary or ())
        vary.add('Cookie')
        response.vary = sorted(vary)

    def new_payload(self):
        return empty_session_payload(timeout=self.timeout or 0)

    def session_id_from_cookie(self, value):
        """Return the session id in a cookie value, or ``None``."""
        try:
            session_id = self.cookie_signer.loads(value.encode('utf-8'))
        except (ValueError, TypeError, UnicodeError):
            return None
        prefix = self.key_prefix
        if not (
            isinstance(session_id, str)
            and session_id.startswith(prefix)
            and _ID_RE.match(session_id[len(prefix) :])
        ):
            return None
        return session_id

    def _session(self, session_id, new):
        return RedisSession(
            redis=self.redis,
            session_id=session_id,
            new=new,
            new_session=self.new_session_id,
            new_payload_func=self.new_payload,
            serialize=self.serialize,
            deserialize=self.deserialize,
            set_redis_ttl=self.set_redis_ttl,
            detect_changes=self.detect_changes,
            deserialized_fails_new=self.deserialized_fails_new,
            timeout=self.timeout,
            python_expires=False,
        )

    def __call__(self, request):
        session_id = None
        cookie = request.cookies.get(self.cookie_name)
        if cookie is not None:
            session_id = self.session_id_from_cookie(cookie)
        stale = False
        try:
            if session_id is None:
                raise InvalidSession_NoSessionCookie('no session cookie')
            session = self._session(session_id, new=False)
            cookie_was_valid = True
        except InvalidSession as exc:
            if self.func_invalid_logger is not None:
                self.func_invalid_logger(request, exc)
            stale = session_id is not None
            cookie_was_valid = False
            session = self._session(LazyCreateSession, new=True)
            if stale and '{' in session_id:
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

    def _why_ended(self, request, session_id):
        """A user's session is gone: find out why, once, for the app."""
        reason = self.redis.get(session_id + ENDED_SUFFIX)
        if reason is not None:
            reason = reason.decode('utf-8', 'replace')
            request.environ[ENDED_KEY] = reason
            record(request.environ, 'redis', 'ended session came back',
                   cookie=self.cookie_name, reason=reason)  # fmt: skip
            request.registry.notify(SessionEnded(request, self, reason))


#: the spelling used by function-style factories
redis_session_factory = RedisSessionFactory


class _CookieCallback:
    """The response callback of one session: sets or deletes its cookie."""

    __slots__ = ('factory', 'session', 'cookie_was_valid', 'stale')

    def __init__(self, factory, session, cookie_was_valid, stale):
        self.factory = factory
        self.session = session
        self.cookie_was_valid = cookie_was_valid
        self.stale = stale

    def __call__(self, request, response):
        factory = self.factory
        session = self.session
        if isinstance(request.exception, redis.RedisError):
            # the store failed: change nothing, neither cookie nor data
            discard_sessions(request)
            return
        state = session.__dict__.get('_session_state')
        if state is not None and state.new and state.dont_persist:
            if state.managed_dict:
                # a new session that was not created: no cookie for it
                if self.stale:
                    self._delete_cookie(response=response)
                return
        check = factory.func_check_response_allow_cookies
        if check is not None and not check(response):
            return
        _cookie_callback(
            session,
            request,
            response,
            session_cookie_was_valid=self.cookie_was_valid,
            cookie_on_exception=factory.cookie_on_exception,
            set_cookie_func=self._set_cookie,
            delete_cookie_func=self._delete_cookie,
            func_check_response_allow_cookies=None,
            invalidate_empty_session=factory.invalidate_empty_session,
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

    def _set_cookie(self, request, response, **overrides):
        options = dict(self.factory.cookie_options, **overrides)
        _set_cookie(
            self.session,
            request,
            response,
            cookie_signer=self.factory.cookie_signer,
            cookie_name=self.factory.cookie_name,
            **options,
        )

    def _delete_cookie(self, response):
        options = self.factory.cookie_options
        _delete_cookie(
            response,
            cookie_name=self.factory.cookie_name,
            cookie_path=options['path'],
            cookie_domain=options['domain'],
        )
