"""The Redis session: a ``pyramid_session_redis`` session whose reads and
writes are guarded.

Loading is one ``GETEX`` (read and refresh the TTL together). A new session
is written with one ``SET ... NX`` at the end of the request (a user's
session, made by :meth:`RedisSession.rotate`, with a script that also
checks it was not ended meanwhile); an existing one with ``SET ... XX``,
so a session deleted while a request was in flight is never resurrected.
"""

import json
import logging
from pyramid_session_redis.exceptions import (
    InvalidSession_DeserializationError,
    InvalidSession_Lazycreate,
    InvalidSession_NotInBackend,
    RawDeserializationError,
)
from pyramid_session_redis.session import (
    RedisSession as _BaseRedisSession,
    hashed_value,
)
from pyramid_session_redis.util import LazyCreateSession
import redis

from .activity import record
from .persist import Command

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


def json_dumps(payload):
    return json.dumps(payload, separators=(',', ':')).encode('utf-8')


def json_loads(data):
    return json.loads(data)


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def _flat(data):
    """Whether no value of ``data`` can change in place (so, unless a
    mutator said so, the session did not change)."""
    return all(type(value) in _SCALARS for value in data.values())


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
                    state.ended_before_created = True
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
            return Command.eval(
                CREATE_UNLESS_ENDED,
                (sid, sid + ENDED_SUFFIX),
                (serialized_session, ttl or 0),
                written,
            )
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
        elif state.new or not _flat(state.managed_dict):
            # a value that can change in place may have: compare payloads
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
