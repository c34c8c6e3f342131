"""The Redis session: a ``pyramid_session_redis`` session whose reads and
writes are guarded.

Loading is one ``GETEX`` (read and refresh the TTL together). A new session
is written once, at the end of the request (``SET NX``; a user's session,
made by :meth:`RedisSession.rotate`, by a script that also checks it was
not ended meanwhile). An existing session is never
written whole: one script applies the keys this request set and deleted
to what Redis holds now (see :mod:`.stored`), so overlapping requests of
one browser keep each other's changes, and a session deleted while a
request was in flight is never resurrected.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
import json
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any
from pyramid_session_redis.exceptions import (
    InvalidSession,
    InvalidSession_DeserializationError,
    InvalidSession_Lazycreate,
    InvalidSession_NotInBackend,
    InvalidSession_PayloadLegacy,
    InvalidSession_PayloadTimeout,
    RawDeserializationError,
)
from pyramid_session_redis.session import (
    RedisSession as _BaseRedisSession,
    _SessionState,
)
from pyramid_session_redis.util import LazyCreateSession

from .. import watch
from .._activity import record
from . import _wire as wire, login_records, stored
from ._persist import REDIS_ERRORS, Command

if TYPE_CHECKING:
    from pyramid.request import Request

    from ..watch import Watcher
    from .clients import RedisClient

#: ``(name, value)`` of a stored record (see :mod:`.stored`)
_Record = tuple[bytes, bytes]

log = logging.getLogger(__name__)

#: environ key: why the session named by the request's cookie ended
#: (``displaced``, ``revoked``, ``expired`` …), when it says so
ENDED_KEY = 'session_suite.ended'

#: suffix of the key that says why a session ended
ENDED_SUFFIX = ':ended'

#: the reply of :data:`.stored.MERGE` when the write emptied the session
EMPTIED = 2


#: made once: ``json.dumps`` with options makes an encoder per call
_json_encode = json.JSONEncoder(separators=(',', ':')).encode
_json_decoder = json.JSONDecoder()
_json_decode = _json_decoder.decode
#: the decoder's scanner: one value at an index (C), without the checks
#: around it
_json_scan: Callable[[str, int], tuple[Any, int]] = _json_decoder.scan_once  # type: ignore[attr-defined]


def json_dumps(payload: Any) -> bytes:
    """Compact JSON, UTF-8 encoded (the default serializer)."""
    return _json_encode(payload).encode('utf-8')


def json_loads(data: bytes | bytearray | str) -> Any:
    """The value of JSON made by :func:`json_dumps` (bytes or text)."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode('utf-8')
    try:
        value, end = _json_scan(data, 0)
    except StopIteration:
        end = -1
    if end != len(data):
        # spaces around the value, or no JSON: the decoder says which
        return _json_decode(data)
    return value


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def _flat(data: Mapping[Any, Any]) -> bool:
    """Whether no value of ``data`` can change in place (so, unless a
    mutator said so, the session did not change)."""
    return all(type(value) in _SCALARS for value in data.values())


def decode(
    persisted: bytes,
    deserialize: Callable[[bytes], Any],
    own: dict[bytes, bytes] | None = None,
) -> tuple[dict[str, Any], dict[bytes, bytes] | None]:
    """Return ``(payload, records)`` of a stored session: ``payload`` as
    ``pyramid_session_redis`` shapes it (``m``: the data, ``c``: created,
    ``t``: its own timeout if it has one), ``records`` the stored values by
    name; ``records`` is ``None`` for a payload of an earlier release.
    The session's own records (its timeout aside) go to ``own`` too, if
    given."""
    if not stored.is_stored_session(persisted):
        payload: dict[str, Any] = deserialize(persisted)
        # a payload of another shape is as unreadable as a broken one
        payload['m'], payload['c']  # noqa: B018
        return payload, None
    created, records = stored.unpack(persisted)
    data: dict[Any, Any] = {}
    payload = {'m': data, 'c': created, 'v': 1}
    names: list[bytes] = []
    values: list[bytes] = []
    for name, value in records.items():
        first = name[0]
        if first == stored.INTERNAL:
            if name == stored.TIMEOUT_NAME:
                payload['t'] = int(value) or None
            elif own is not None:
                if name == stored.LOGIN_NAME:
                    login_records.expand_login(value, own)
                else:
                    own[name] = value
        elif first == stored.OTHER_KEY:
            data[deserialize(name[1:])] = deserialize(value)
        else:
            names.append(name)
            values.append(value)
    if names:
        decoded = _json_values(values) if deserialize is json_loads else None
        if decoded is None:
            decoded = list(map(deserialize, values))
        data.update(zip(map(bytes.decode, names), decoded, strict=True))
    return payload, records


def _json_values(values: Sequence[bytes]) -> list[Any] | None:
    """The values of ``values`` (each made by :func:`json_dumps`), read by
    the JSON scanner in one text, each at its own offset and checked to
    end where its bytes end; ``None`` if one is not such a value (or the
    text is not ASCII), and then each is read alone (the one that is not
    JSON says so)."""
    text = b','.join(values)
    if not text.isascii():
        return None
    string = text.decode('ascii')
    scan = _json_scan
    decoded = []
    pos = 0
    try:
        for value in values:
            item, end = scan(string, pos)
            pos += len(value)
            if end != pos:
                return None
            decoded.append(item)
            pos += 1
    except StopIteration:
        return None
    return decoded


class _Direct(Command):
    """A write of the session's own key (``execute_command``): sent alone,
    it takes the short way to the socket (see :mod:`._wire`)."""

    __slots__ = ()

    def run(self, client: RedisClient) -> None:
        args = self.args
        if args[0] == 'EVAL':
            self.reply(wire.script(client, args))
        else:
            self.reply(wire.command(client, args))


#: what a request knows of the stored session it loaded
_LOADED = ('_stored', '_internal', '_internal_changed', '_login')

#: what a request changed (written at its end)
_CHANGES = ('_set_keys', '_timeout_changed', '_internal_changed', '_login')


class RedisSession(_BaseRedisSession):
    """A ``pyramid_session_redis`` session with guarded reads and writes.

    Everything documented for ``pyramid_session_redis.RedisSession`` holds,
    with these differences: ``ensure_id()`` reserves an id without writing
    to Redis (the key is written at the end of the request, and only if the
    session holds data); a write applies only the keys this request set
    (or changed in place) and deleted to what Redis holds at that moment;
    and a write never recreates a key that was deleted after the session
    was loaded.
    """

    #: ``True`` when the load already refreshed the key's TTL (GETEX).
    _ttl_refreshed = False

    #: the lifetime (seconds) of a remembered login (see :meth:`remember`)
    remember_timeout: int | None = None

    #: ``True`` once :meth:`invalidate` was called in this request, even if
    #: the session was used again afterwards.
    invalidated = False

    #: the WSGI environ of the request, for :func:`.activity.record`
    environ: dict[str, Any] | None = None

    #: the namespace's cookie name, for :func:`.activity.record`
    cookie_name: str | None = None

    #: the stored value of each key as loaded (or last written) by this
    #: request, by name (bytes)
    _stored: dict[bytes, bytes] | None = None

    #: ``True`` when the session was loaded from a payload of an earlier
    #: release: its next write is whole
    _legacy = False

    # the factory's (de)serializer, of any value (not only of dicts)
    serialize: Callable[[Any], bytes]  # type: ignore[assignment]
    deserialize: Callable[[bytes], Any]  # type: ignore[assignment]
    # the factory's ``new_session_id(tag=None)``
    new_session: Callable[..., str]

    def __init__(
        self,
        *args: Any,
        remember_timeout: int | None = None,
        watchers: Sequence[Watcher] = (),
        namespace: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.remember_timeout = remember_timeout
        self.watchers = watchers
        self.namespace = namespace
        super().__init__(*args, **kwargs)

    @classmethod
    def load(
        cls,
        session_id: str,
        options: Mapping[str, Any],
        watchers: Sequence[Watcher] = (),
    ) -> RedisSession:
        """The stored session ``session_id`` (raise ``InvalidSession`` when
        it is not), with the attributes ``options`` (the factory's, by
        attribute name), without the generic constructor's work."""
        session = cls._with(options, watchers, new=False)
        attributes = session.__dict__
        payload = session.from_redis(session_id)
        # pyramid_session_redis's checks: an expiry kept in the payload,
        # a payload older than its first format
        expires = payload.get('x')
        if expires and session.timestamp > expires:
            raise InvalidSession_PayloadTimeout('session timed out')
        if not payload.get('v'):
            raise InvalidSession_PayloadLegacy('session of a legacy format')
        attributes['_session_state'] = _SessionState(
            session_id=session_id,
            managed_dict=payload['m'],
            created=payload['c'],
            timeout=payload.get('t'),
            expires=expires,
            version=payload['v'],
            new=False,
            persisted_hash=None,
        )
        return session

    @classmethod
    def new_with(
        cls, options: Mapping[str, Any], watchers: Sequence[Watcher] = ()
    ) -> RedisSession:
        """A new session (its id made when it is first written), with the
        attributes ``options`` (see :meth:`load`)."""
        session = cls._with(options, watchers, new=True)
        session.__dict__['_session_state'] = session._make_session_state(
            session_id=LazyCreateSession, new=True
        )
        return session

    @classmethod
    def _with(
        cls,
        options: Mapping[str, Any],
        watchers: Sequence[Watcher],
        new: bool,
    ) -> RedisSession:
        session = cls.__new__(cls)
        attributes = session.__dict__
        attributes.update(options)
        attributes['watchers'] = watchers
        attributes['_new'] = new
        return session

    def _record(self, action: str, **details: Any) -> None:
        if self.environ is not None:
            record(self.environ, 'redis', action, cookie=self.cookie_name,
                   **details)  # fmt: skip

    # -- the session's own records ------------------------------------------

    @property
    def key(self) -> str:
        """The Redis key of the session."""
        session_id = self.session_id
        known = self.__dict__.get('_key_of')
        if known is not None and known[0] is session_id:
            key: str = known[1]
            return key
        key = login_records.redis_key(session_id)
        self.__dict__['_key_of'] = (session_id, key)
        return key

    def get_record(self, name: bytes) -> bytes | None:
        """The value (bytes) of the session's own record ``name`` (a name
        starting with ``0xff``, see :mod:`.login_records`), or ``None``."""
        value: bytes | None = self.__dict__.get('_internal', {}).get(name)
        return value

    def records(self) -> dict[bytes, bytes]:
        """The session's own records, by name."""
        return dict(self.__dict__.get('_internal', {}))

    def set_record(self, name: bytes, value: bytes | None) -> None:
        """Set (``None``: delete) the session's own record ``name``; it is
        written with the request's changes."""
        internal = self.__dict__.setdefault('_internal', {})
        self.__dict__.pop('_login', None)
        if value is None:
            if internal.pop(name, None) is None:
                return
        elif internal.get(name) == value:
            return
        else:
            internal[name] = value
        self.__dict__.setdefault('_internal_changed', set()).add(name)
        self.changed()

    # -- what this request changed -------------------------------------------

    # the reads of pyramid_session_redis, without its wrapper's call: a
    # read asks for a refresh of the key's TTL (a no-op once the load's
    # GETEX refreshed it)

    def get(self, key: Any, default: Any = None) -> Any:
        state = self._session_state
        state.please_refresh = True
        return state.managed_dict.get(key, default)

    def __getitem__(self, key: Any) -> Any:
        state = self._session_state
        state.please_refresh = True
        return state.managed_dict[key]

    def __contains__(self, key: Any) -> bool:
        state = self._session_state
        state.please_refresh = True
        return key in state.managed_dict

    def _set(self, key: Any) -> None:
        self.__dict__.setdefault('_set_keys', set()).add(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._set(key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        missing = key not in self.managed_dict
        value = super().setdefault(key, default)
        if missing:
            self._set(key)
        return value

    def update(self, other: Any = (), **more: Any) -> None:
        other = dict(other, **more)
        super().update(other)
        for key in other:
            self._set(key)

    def adjust_session_timeout(self, timeout_seconds: int) -> None:
        super().adjust_session_timeout(timeout_seconds)
        self.__dict__['_timeout_changed'] = True

    adjust_timeout_for_session = adjust_session_timeout

    def _timeout_record(self) -> _Record:
        timeout = self._session_state.timeout or 0
        return stored.TIMEOUT_NAME, b'%d' % timeout

    def _name(self, key: Any) -> bytes:
        if type(key) is str:
            return key.encode('utf-8')
        return bytes((stored.OTHER_KEY,)) + self.serialize(key)

    def changes(
        self,
    ) -> tuple[list[_Record], list[bytes], Sequence[_Record]]:
        """``(sets, deletes, unchanged)``: the ``(name, value)`` records
        this request set or changed in place, the names it deleted, against
        what it loaded, and (for a session loaded from an earlier release's
        payload, which is stored whole at its first write) the records it
        did not change."""
        state = self._session_state
        loaded = self._stored or {}
        forced = self.__dict__.get('_set_keys', ())
        sets: list[_Record] = []
        unchanged: list[_Record] = []
        names = set()
        for key, value in state.managed_dict.items():
            name = self._name(key)
            names.add(name)
            if (
                type(value) in _SCALARS
                and key not in forced
                and name in loaded
                and not self._legacy
            ):
                continue  # cannot have changed in place; not set
            data = self.serialize(value)
            if key in forced or loaded.get(name) != data:
                sets.append((name, data))
            else:
                unchanged.append((name, data))
        if self.__dict__.get('_timeout_changed'):
            sets.append(self._timeout_record())
        deletes = [
            name
            for name in loaded
            if name not in names and name[0] != stored.INTERNAL
        ]
        if self.__dict__.get('_internal_changed'):
            # the own records as they are stored now (a login's together)
            own = dict(
                login_records.stored_own(self.__dict__.get('_internal', {}))
            )
            sets += [
                (name, value)
                for name, value in own.items()
                if loaded.get(name) != value
            ]
            deletes += [
                name
                for name in loaded
                if name[0] == stored.INTERNAL
                and name != stored.TIMEOUT_NAME
                and name not in own
            ]
        if not self._legacy:
            return sets, deletes, ()
        # the first write of an earlier release's payload is whole
        if state.timeout != self._timeout and not self.__dict__.get(
            '_timeout_changed'
        ):
            unchanged.append(self._timeout_record())
        return sets, deletes, unchanged

    def _written(
        self, sets: Iterable[_Record], deletes: Iterable[bytes]
    ) -> None:
        """What is stored now, after a write of ``sets`` and ``deletes``."""
        loaded = self.__dict__.setdefault('_stored', {})
        for name in deletes:
            loaded.pop(name, None)
        loaded.update(sets)
        self.__dict__.pop('_set_keys', None)
        self.__dict__.pop('_internal_changed', None)
        self.__dict__.pop('_timeout_changed', None)
        self._legacy = False

    # -- reading -------------------------------------------------------------

    def from_redis(
        self,
        session_id: str | type[LazyCreateSession] | None = None,
        persisted_hash: bool | None = None,
    ) -> Any:
        session_id = session_id or self.session_id
        if session_id is LazyCreateSession:
            raise InvalidSession_Lazycreate(
                '`session_id` is LazyCreateSession'
            )
        if TYPE_CHECKING:
            assert isinstance(session_id, str)
        key, secret = login_records.split_id(session_id)
        self.__dict__['_key_of'] = (session_id, key)
        ttl = self._timeout
        if self.remember_timeout and login_records.remembered(session_id):
            ttl = self.remember_timeout
        if not (self._timeout and self._set_redis_ttl):
            ttl = None
        watchers = self.watchers
        started = perf_counter() if watchers else 0.0
        try:
            persisted = wire.read(self.redis, key, ttl)
        except REDIS_ERRORS as exc:
            watch.blame(exc, self.namespace)
            if watchers:
                watch.done(watchers, self.namespace, 'load', started, 0, exc)
            raise
        if watchers:
            finished = perf_counter()
            if persisted is None:
                outcome, size = 'miss', 0
            else:
                size = len(persisted)
                outcome = 'ended' if stored.is_ended(persisted) else 'hit'
            for watcher in watchers:
                watcher.loaded(
                    self.namespace, started, finished, outcome, size
                )
        self._ttl_refreshed = ttl is not None
        if persisted is None:
            raise InvalidSession_NotInBackend('session not in Redis')
        if stored.is_ended(persisted):
            ended = InvalidSession_NotInBackend('session ended')
            digest = login_records.digest(secret) if secret else b''
            ended.ended_reason = stored.ended_reason(persisted, digest)  # type: ignore[attr-defined]
            raise ended
        try:
            deserialized = self._decode(persisted)
        except Exception as exc:
            if self._deserialized_fails_new:
                raise InvalidSession_DeserializationError(
                    'session payload did not deserialize'
                ) from exc
            raise RawDeserializationError(exc) from exc
        assert self._stored is not None  # set by _decode()
        if secret is not None and not login_records.matches(
            self.__dict__.get('_internal') or {}, secret
        ):
            # the slot holds another session now
            self._forget_loaded()
            raise InvalidSession_NotInBackend('session not in Redis')
        if deserialized.get('t', self._timeout) != ttl:
            # adjust_session_timeout() gave this session its own timeout:
            # the GETEX used another, so refresh again at the end.
            self._ttl_refreshed = False
        if persisted_hash is None:
            return deserialized
        # no hash of the whole payload: a write compares each value with
        # the bytes it was loaded from (see :meth:`changes`)
        return deserialized, None

    def _decode(self, persisted: bytes) -> dict[str, Any]:
        own: dict[bytes, bytes] = {}
        payload, records = decode(persisted, self.deserialize, own)
        self._stored = records
        self._legacy = records is None
        if records is not None:
            self.__dict__['_internal'] = own
        if self._legacy:
            # what each value would be stored as, to notice a change
            self._stored = {
                self._name(key): self.serialize(value)
                for key, value in payload['m'].items()
            }
        elif 't' not in payload and self._timeout:
            payload['t'] = self._timeout
        return payload

    def to_redis(self) -> bytes:
        """The whole session as it is stored."""
        state = self._session_state
        records = [
            (self._name(key), self.serialize(value))
            for key, value in state.managed_dict.items()
        ]
        if state.timeout != self._timeout:
            records.append(self._timeout_record())
        records += login_records.stored_own(self.__dict__.get('_internal', {}))
        return stored.pack(state.created, records)

    def payload_with(
        self,
        records: Mapping[bytes, bytes],
        without: Container[Any] = (),
        timeout: int | None = None,
    ) -> bytes:
        """The whole session as it would be stored with ``records`` as its
        own records (the timeout aside), without the keys ``without`` and
        with ``timeout`` (default: its own); the session is not
        changed."""
        state = self._session_state
        data = [
            (self._name(key), self.serialize(value))
            for key, value in state.managed_dict.items()
            if key not in without
        ]
        timeout = timeout or state.timeout
        if timeout != self._timeout:
            data.append((stored.TIMEOUT_NAME, b'%d' % (timeout or 0)))
        data += login_records.stored_own(records)
        return stored.pack(state.created, data)

    def ensure_id(self) -> str:
        state = self._session_state
        if state.session_id is LazyCreateSession:
            state.session_id = self.new_session()
            state.insert_pending = True
        session_id: str = state.session_id
        return session_id

    def _ttl(self) -> int | None:
        if self.timeout is not None and self._set_redis_ttl:
            return self.timeout
        return None

    # -- writing -------------------------------------------------------------

    def persist_command(
        self, serialized_session: bytes | None = None
    ) -> Command | None:
        """Return the :class:`Command` that writes this session (``None``
        when there is nothing to write): a new session is created whole,
        an existing one gets only this request's changes."""
        self.ensure_id()
        state = self._session_state
        if getattr(state, 'insert_pending', False):
            return self._create_command(serialized_session)
        sets, deletes, unchanged = self.changes()
        state.please_persist = False
        if not sets and not deletes:
            return None
        return self._merge_command(sets, deletes, unchanged)

    def _create_command(
        self, serialized_session: bytes | None = None
    ) -> Command:
        state = self._session_state
        payload = serialized_session or self.to_redis()
        ttl = self._ttl()
        state.please_persist = False
        state.dont_refresh = True

        def created(ok: Any) -> None:
            if ok == 0:  # ended (displaced, revoked) before it began
                self._record('not created: ended during the request')
                state.dont_persist = True
                state.ended_before_created = True
                return
            if not ok:
                raise RuntimeError('session id collision')
            self._record('created', ttl=ttl)
            if self.watchers:
                watch.created(self.watchers, self.namespace)
            state.insert_pending = False
            self._stored = stored.unpack(payload)[1]
            self._written((), ())

        sid = self.key
        if '{' in sid:
            # a user's session (see rotate()): not if it ended meanwhile
            return _Direct.eval(
                stored.CREATE,
                (sid, sid + ENDED_SUFFIX),
                (payload, (ttl or 0) * 1000),
                created,
            )

        def set_nx(ok: Any) -> None:
            # a SET sent again after a lost reply finds its own payload
            created(ok or self.redis.get(sid) == payload)

        args: tuple[Any, ...] = ('SET', sid, payload, 'NX')
        if ttl:
            args += ('EX', ttl)
        return _Direct('execute_command', args, None, set_nx)

    def _merge_command(
        self,
        sets: Sequence[_Record],
        deletes: Sequence[bytes],
        unchanged: Sequence[_Record] = (),
    ) -> Command:
        state = self._session_state
        ttl = self._ttl()
        state.dont_refresh = True
        # the key keeps the TTL this request's read gave it (Redis sets a
        # kept TTL faster), unless the request changed the timeout
        keep = self._ttl_refreshed and not self.__dict__.get(
            '_timeout_changed'
        )
        args: list[Any] = [
            0 if keep else (ttl or 0) * 1000,
            stored.header(state.created),
            '1' if self._legacy else '0',
            len(sets),
            len(unchanged),
        ]
        for name, value in (*sets, *unchanged):
            args += (name, value)
        args += deletes

        def merged(reply: Any) -> None:
            if reply == 1 or reply == EMPTIED:
                self._record(
                    'emptied' if reply == EMPTIED else 'saved',
                    ttl=ttl,
                    keys=len(sets),
                    deleted=len(deletes),
                )
                state.merged = reply
                self._written((*sets, *unchanged), deletes)
                if login_records.remembered(state.session_id):
                    # its cookie's Max-Age starts again
                    state.please_recookie = True
                return
            if reply == 0:
                # deleted (revoked, expired) since it was loaded: stays so
                log.info('session was deleted during the request; not saved')
                self._record('not saved: deleted during the request')
            else:
                log.warning(
                    'session stored by an earlier release was not merged'
                )
                self._record('not saved: stored by an earlier release')
            state.dont_persist = True

        return _Direct.eval(stored.MERGE, (self.key,), args, merged)

    def do_persist(self, serialized_session: bytes | None = None) -> None:
        """Write the session to Redis now."""
        command = self.persist_command(serialized_session)
        if command is not None:
            command.run(self.redis)

    def do_refresh(self, force_redis_ttl: int | None = None) -> None:
        state = self._session_state
        if force_redis_ttl is None and self._ttl_refreshed:
            state.please_refresh = False
            return
        ttl = force_redis_ttl
        if ttl is None and self.timeout is not None and self._set_redis_ttl:
            ttl = self.timeout
        if ttl is not None:
            self.redis.expire(self.key, ttl)
        state.please_refresh = False

    def invalidate(self) -> None:
        state = self.__dict__.get('_session_state')
        if (
            state is not None
            and state.session_id is not LazyCreateSession
            and not getattr(state, 'insert_pending', False)
        ):
            self.redis.delete(self.key)
            self._record('deleted')
        self._forget()

    def reload(self) -> None:
        """Read the session again from Redis, dropping this request's
        changes: its data as of now (a session ended meanwhile is
        discarded)."""
        state = self.__dict__.get('_session_state')
        if state is None or state.new:
            return
        self._forget()
        self.invalidated = False
        try:
            self._session_state = self._make_session_state(
                session_id=state.session_id, new=False
            )
        except InvalidSession:
            self.discard()

    def discard(self) -> None:
        """Forget the session in this request without touching Redis (its
        key was deleted elsewhere, e.g. revoked): its cookie is deleted and
        nothing is written."""
        self.__dict__.pop('pending_deletes', None)
        self._forget()

    def _drop(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.__dict__.pop(name, None)

    def _own(self, records: dict[bytes, bytes]) -> None:
        """Keep the session's own records of ``records`` (its timeout
        aside)."""
        self.__dict__['_internal'] = login_records.own_records(records)

    def _delete_at_the_end(self, state: Any) -> None:
        """The key of ``state``'s current id (if it was stored) is deleted
        at the end of the request: the session moves to a new id."""
        if state.session_id is not LazyCreateSession and not getattr(
            state, 'insert_pending', False
        ):
            self.__dict__.setdefault('pending_deletes', []).append(
                login_records.redis_key(state.session_id)
            )

    def _forget_loaded(self) -> None:
        self._drop(_LOADED)
        self._legacy = False

    def _forget(self) -> None:
        self._drop(('_session_state', *_LOADED, *_CHANGES))
        self._legacy = False
        self._ttl_refreshed = False
        self.invalidated = True

    def rotate(
        self, tag: str | None = None, session_id: str | None = None
    ) -> str:
        """Give the session a new id (``session_id``, or a new one under
        hash tag ``tag``), keeping its data: the new key is written and the
        old one deleted at the end of the request, in one round trip. Call
        it at login, against session fixation."""
        state = self._session_state
        self._delete_at_the_end(state)
        state.session_id = session_id or self.new_session(tag)
        state.insert_pending = True
        state.new = True
        state.please_persist = True
        state.persisted_hash = None
        self._ttl_refreshed = False
        new_id: str = state.session_id
        return new_id

    def remember(self) -> None:
        """Make this session a remembered login ("remember me"): it lasts
        ``remember_timeout`` unused, and so does its cookie. Call it with a
        new id (at login)."""
        if not self.remember_timeout:
            raise ValueError('this namespace has no remember_max_age')
        state = self._session_state
        if not login_records.remembered(state.session_id):
            state.session_id += login_records.REMEMBERED
        if state.timeout != self.remember_timeout:
            self.adjust_session_timeout(self.remember_timeout)
        state.please_recookie = True

    def adopt(self, session_id: str, payload: bytes) -> None:
        """Become the session ``session_id``, which was just stored whole
        as ``payload`` (by the user index, at a login): the previous key is
        deleted at the end of the request, later changes are merged into
        the new one, and the browser gets its cookie."""
        state = self._session_state
        self._delete_at_the_end(state)
        state.session_id = session_id
        state.insert_pending = False
        state.new = False
        state.please_recookie = True
        state.persisted_hash = None
        state.registered = True
        records = stored.unpack(payload)[1]
        self._stored = records
        self._own(records)
        self._drop(_CHANGES)
        self._legacy = False
        self._ttl_refreshed = True
        self.invalidated = False

    @property
    def logged_in(self) -> bool:
        """Whether the session holds a login of the user index (its own
        records), whatever its data."""
        return login_records.LOGIN in self.__dict__.get('_internal', {})

    def flush_commands(self, create: bool = True) -> list[Command]:
        """Return the commands that write the pending changes; used by the
        persist tween, which sends them in one round trip per client.

        With ``create`` false (an error response), a new session is not
        created: no key, no cookie. A new session that ends the request
        empty is left to the cookie callback (nothing to write); an
        existing one that was emptied is merged like any other change
        (the key is deleted if no other request added to it).
        """
        commands = [
            Command('delete', (key,), {}, None)
            for key in self.__dict__.pop('pending_deletes', ())
        ]
        state = self.__dict__.get('_session_state')
        if state is None or state.dont_persist:
            return commands
        if state.new and not state.managed_dict:
            return commands
        if state.new and not create:
            state.dont_persist = state.dont_refresh = True
            self._record('not created: error response')
            return commands
        if getattr(state, 'registered', False) and not create:
            # logged in by a request that failed: no cookie, no session
            state.dont_persist = state.dont_refresh = True
            commands.append(Command('delete', (self.key,), {}, None))
            self._record('not created: error response')
            return commands
        state.flushed = True
        if state.please_persist or state.new or not _flat(state.managed_dict):
            command = self.persist_command()
            if command is not None:
                commands.append(command)
        return commands

    def _deferred_callback(self, request: Request) -> None:
        state = self.__dict__.get('_session_state')
        try:
            for key in self.__dict__.pop('pending_deletes', ()):
                self.redis.delete(key)
            if state is not None and getattr(state, 'flushed', False):
                # the tween already wrote what changed; what changed after
                # it is written here (call session.changed() for a value
                # changed in place), and a refresh may be left
                if state.please_persist and not state.dont_persist:
                    self.do_persist()
                elif state.please_refresh and not state.dont_refresh:
                    self.do_refresh()
                return
            super()._deferred_callback(request)
        except REDIS_ERRORS:
            log.exception('could not save a session at the end of a request')
