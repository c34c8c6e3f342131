"""The per-user session index in Redis.

A user's sessions are keys in one hash slot (``{tag}`` is the user's)::

    <session prefix>{tag}:0       the first session (slot 0)
    <session prefix>{tag}:<slot>  the others (8 random characters)
    <index prefix>{tag}:i         ZSET slot -> deadline (ms), only while
                                  the user has more than one session

Each session stores its own index facts (login time, last activity, IP,
User-Agent, location: :mod:`.login_records`), so a user with one session
costs one key, and every fact is stored once. The ZSET orders the sessions
by the time they expire unless used again (their deadline), so that a
login finds the sessions to end first, and prunes the dead ones, in
``O(log n)``. Every operation is one Lua script on those keys: atomic
across processes, valid on Redis Cluster, one round trip. Every key has a
TTL. A session that ends keeps its key for ``end_ttl``, holding the digest
of its secret and the reason (:func:`.stored.ended`), so that its browser
can be told why.

Entries written by earlier releases (:mod:`.legacy_index`) are read,
counted and revoked beside these until their sessions end.
"""

from __future__ import annotations

import base64
import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
import functools
import hashlib
import time
from typing import TYPE_CHECKING, Any

from ..redis import login_records as lr, stored
from ..redis._persist import Command, watched
from ..signing import secret_list
from . import _legacy as legacy_index

if TYPE_CHECKING:
    from ..redis.clients import RedisClient
    from ..watch import Watcher

#: kept for the code that imported it from here
GRACE_MS = legacy_index.GRACE_MS

#: how many of the most recent sessions a login looks at for a session
#: this browser made earlier (see ``origin``)
RECENT = 4

_LUA = (
    legacy_index.LUA
    + stored.OWN_RECORDS
    + """
-- the records of the login in key, or nil (gone, ended, not a login)
local function login_of(key)
  local t = internals(redis.call('GET', key))
  if t and t['\\255l'] and t['\\255s'] then return t end
  return nil
end
local function handle_of(slot, t)
  local d = t['\\255s']
  return slot .. '.' .. string.format('%02x%02x%02x%02x', string.byte(d, 1, 4))
end
local function finish(key, t, reason, ttl)
  if reason ~= '' then
    redis.call('SET', key, '\\0' .. t['\\255s'] .. reason, 'PX', ttl)
  else
    redis.call('DEL', key)
  end
end
local function split(handle)
  local dot = string.find(handle, '.', 1, true)
  if not dot then return nil end
  return string.sub(handle, 1, dot - 1)
end
-- an index of the first slot alone is not needed
local function tidy(z)
  if redis.call('ZCARD', z) == 1 and redis.call('ZSCORE', z, '0') then
    redis.call('DEL', z)
  end
end
-- the slots to look at: the ZSET's and 0
local function slots(z)
  local all = redis.call('ZRANGE', z, 0, -1)
  local seen = {}
  for _, s in ipairs(all) do seen[s] = true end
  if not seen['0'] then table.insert(all, '0') end
  return all
end
"""
)

#: KEYS k0 z lz lh; ARGV now payload ttl_ms index_ttl_ms max lock_ms slot
#: replaced end_ttl origin grace score
#: -> {1, slot, evicted handles...} | {0, retry_after_ms} | {-1} (slot taken)
REGISTER = (
    _LUA
    + """
local k0, z, lz, lh = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base = string.sub(k0, 1, -2)
local now, payload, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local ittl, max, lock = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local slot, replaced, end_ttl = ARGV[7], ARGV[8], tonumber(ARGV[9])
local origin, grace, score = ARGV[10], tonumber(ARGV[11]), ARGV[12]
redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
if origin ~= '' then
  -- an earlier login of this browser whose answer never arrived
  local recent = redis.call('ZREVRANGE', z, 0, """
    + str(RECENT - 1)
    + """)
  table.insert(recent, '0')
  for _, s in ipairs(recent) do
    local t = login_of(base .. s)
    if t and t['\\255o'] == origin then
      redis.call('DEL', base .. s)
      redis.call('ZREM', z, s)
    end
  end
end
local t0 = login_of(k0)
if t0 then
  if not redis.call('ZSCORE', z, '0') and redis.call('EXISTS', z) == 1 then
    local pttl = redis.call('PTTL', k0)
    redis.call('ZADD', z, pttl > 0 and now + pttl or now + ittl, '0')
  end
else
  redis.call('ZREM', z, '0')
end
local legacy = legacy_prune(lz, lh, now, grace)
local live = redis.call('ZCARD', z) + #legacy
if t0 and not redis.call('ZSCORE', z, '0') then live = live + 1 end
local skip = {}
if replaced ~= '' then
  local rs = split(replaced)
  if rs then
    skip[rs] = true
    local t = login_of(base .. rs)
    if t and handle_of(rs, t) == replaced then live = live - 1 end
  else
    for i, e in ipairs(legacy) do
      if e[1] == replaced then
        table.remove(legacy, i)
        live = live - 1
        break
      end
    end
  end
end
local victims = {}
if max > 0 and live >= max then
  local need = live - max + 1
  -- sessions of earlier releases first: they logged in before
  for _, e in ipairs(legacy) do
    if #victims < need then
      table.insert(victims, {e[3], nil, e[2], e[1], true})
    end
  end
  local candidates = {}
  if t0 and not redis.call('ZSCORE', z, '0') and not skip['0'] then
    table.insert(candidates, '0')
  end
  local dead, offset = {}, 0
  while #victims < need do
    local batch = candidates
    if #batch == 0 then
      batch = redis.call('ZRANGE', z, offset, offset + 15)
      offset = offset + 16
      if #batch == 0 then break end
    end
    candidates = {}
    for _, s in ipairs(batch) do
      if #victims < need and not skip[s] then
        local t = login_of(base .. s)
        if t then
          local act = tonumber(t['\\255a']) or 0
          table.insert(victims, {base .. s, t, act, s, false})
        else
          table.insert(dead, s)
          need = need - 1
        end
      end
    end
  end
  for _, s in ipairs(dead) do redis.call('ZREM', z, s) end
  if lock > 0 then
    local newest = 0
    for _, v in ipairs(victims) do
      if v[3] > newest then newest = v[3] end
    end
    if newest + lock > now then return {0, newest + lock - now} end
  end
end
if redis.call('EXISTS', k0) == 0 then slot = '0' end
local key = base .. slot
local ok
if ttl > 0 then
  ok = redis.call('SET', key, payload, 'PX', ttl, 'NX')
else
  ok = redis.call('SET', key, payload, 'NX')
end
if not ok then return {-1} end
local reply = {1, slot}
for _, v in ipairs(victims) do
  if v[5] then
    redis.call('SET', v[1], '\\0displaced', 'PX', end_ttl)
    legacy_drop(lz, lh, v[4])
    table.insert(reply, v[4])
  else
    finish(v[1], v[2], 'displaced', end_ttl)
    redis.call('ZREM', z, v[4])
    table.insert(reply, handle_of(v[4], v[2]))
  end
end
if replaced ~= '' then
  local rs = split(replaced)
  if rs then
    redis.call('ZREM', z, rs)
  else
    legacy_drop(lz, lh, replaced)
  end
end
if slot ~= '0' then
  if login_of(k0) and not redis.call('ZSCORE', z, '0') then
    local pttl = redis.call('PTTL', k0)
    redis.call('ZADD', z, pttl > 0 and now + pttl or now + ittl, '0')
  end
  redis.call('ZADD', z, score, slot)
end
if redis.call('EXISTS', z) == 1 then redis.call('PEXPIRE', z, ittl) end
return reply
"""
)

#: KEYS k0 z lz lh; ARGV now grace
#: -> {{slot, pttl, name, value, ...}, ...}, {handle, last_seen, meta, pttl,
#: ...} (the second for entries of earlier releases)
LIST = (
    _LUA
    + """
local k0, z = KEYS[1], KEYS[2]
local base = string.sub(k0, 1, -2)
local entries = {}
for _, s in ipairs(slots(z)) do
  local key = base .. s
  local t = login_of(key)
  if t then
    local e = {s, redis.call('PTTL', key)}
    for name, value in pairs(t) do
      table.insert(e, name)
      table.insert(e, value)
    end
    table.insert(entries, e)
  else
    redis.call('ZREM', z, s)
  end
end
tidy(z)
local old = {}
local now, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
for _, e in ipairs(legacy_prune(KEYS[3], KEYS[4], now, grace)) do
  table.insert(old, e[1])
  table.insert(old, tostring(e[2]))
  table.insert(old, cjson.encode(e[4]))
  table.insert(old, redis.call('PTTL', e[3]))
end
return {entries, old}
"""
)

#: KEYS k0 z lz lh; ARGV now grace reason end_ttl except|'' all(0|1)
#: handles... -> the handles of the sessions ended
REVOKE = (
    _LUA
    + """
local k0, z, lz, lh = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base = string.sub(k0, 1, -2)
local now, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local reason, ttl, except = ARGV[3], tonumber(ARGV[4]), ARGV[5]
local ended = {}
local function legacy_end(sid, handle)
  legacy_finish(sid, reason, ttl)
  legacy_drop(lz, lh, handle)
  table.insert(ended, handle)
end
if ARGV[6] == '1' then
  for _, s in ipairs(slots(z)) do
    local t = login_of(base .. s)
    if t and handle_of(s, t) ~= except then
      finish(base .. s, t, reason, ttl)
      table.insert(ended, handle_of(s, t))
    end
    if not t or handle_of(s, t) ~= except then redis.call('ZREM', z, s) end
  end
  for _, e in ipairs(legacy_prune(lz, lh, now, grace)) do
    if e[1] ~= except then legacy_end(e[3], e[1]) end
  end
  tidy(z)
  return ended
end
for i = 7, #ARGV do
  local handle = ARGV[i]
  local s = split(handle)
  if s then
    local t = login_of(base .. s)
    if t and handle_of(s, t) == handle then
      finish(base .. s, t, reason, ttl)
      redis.call('ZREM', z, s)
      table.insert(ended, handle)
    end
  else
    local sid = legacy_entry(lh, handle)
    if sid then legacy_end(sid, handle) end
  end
end
tidy(z)
return ended
"""
)

#: KEYS k0 z lz lh; ARGV now grace -> {live sessions, entries pruned}
COUNT = (
    _LUA
    + """
local k0, z = KEYS[1], KEYS[2]
local base = string.sub(k0, 1, -2)
local live, pruned = 0, 0
for _, s in ipairs(slots(z)) do
  if login_of(base .. s) then
    live = live + 1
  elseif redis.call('ZREM', z, s) == 1 then
    pruned = pruned + 1
  end
end
tidy(z)
local before = redis.call('ZCARD', KEYS[3])
local kept = #legacy_prune(KEYS[3], KEYS[4], tonumber(ARGV[1]),
                           tonumber(ARGV[2]))
return {live + kept, pruned + before - kept}
"""
)


def user_tag(userid: Any) -> str:
    """The Redis hash tag of a user id: its URL-safe base64 (or a digest,
    for ids over 150 bytes)."""
    if isinstance(userid, UserRef) and userid.tag is not None:
        return userid.tag
    raw = str(userid).encode('utf-8')
    if len(raw) > 150:
        return 'H' + hashlib.sha256(raw).hexdigest()
    return base64.urlsafe_b64encode(raw).decode('ascii').rstrip('=')


def userid_of_tag(tag: str) -> str | None:
    """The user id of a hash tag made by :func:`user_tag` (as a string),
    or ``None`` for the digest of a long id."""
    if tag.startswith('H') and len(tag) == 65:
        return None
    try:
        return base64.urlsafe_b64decode(tag + '=' * (-len(tag) % 4)).decode(
            'utf-8'
        )
    except (ValueError, UnicodeError):
        return None


class UserRef(str):
    """A user known by the hash tag of a session id: the user id as a
    string (the tag itself for ids too long to be read back), which the
    index's methods accept wherever they take a user id."""

    #: the hash tag
    tag: str | None = None

    def __new__(cls, tag: str) -> UserRef:
        userid = userid_of_tag(tag)
        ref = super().__new__(cls, tag if userid is None else userid)
        ref.tag = tag
        return ref


#: the :class:`UserRef` of a hash tag, made once per worker (for the most
#: recent users)
user_ref = functools.lru_cache(maxsize=4096)(UserRef)


def tag_of_key(key: str) -> str | None:
    """The hash tag of a user session's Redis key, or ``None``."""
    start = key.find('{')
    end = key.find('}:', start)
    if start < 0 or end < 0:
        return None
    return key[start + 1 : end]


def now_ms() -> int:
    return int(time.time() * 1000)


class SessionEntry(dict[str, Any]):
    """One session of a user, as listed: ``handle``, ``last_seen`` and
    ``created`` (epoch seconds), ``ip``, ``ua``, ``label``, ``mobile``,
    ``location``, ``ns`` (the namespace), ``expires_in`` (seconds, ``None``
    for no expiry) and ``current``; the session id is never included."""

    # the keys, read as attributes (``None`` when missing: an entry of an
    # earlier release may lack some)
    handle: str
    last_seen: float
    created: float
    ip: str | None
    ua: str | None
    label: str | None
    mobile: bool | None
    location: str | None
    ns: str | None
    expires_in: float | None
    current: bool

    __getattr__ = dict.get


def _plain_summary(ua: str) -> tuple[str, bool]:
    return ('Unknown browser' if not ua else ua[:40]), False


class UserIndex:
    """The sessions of every user: register, touch, list, revoke, count.

    ``client`` is the Redis client of the indexed namespace, whose session
    keys start with ``session_prefix``. ``ttl`` (seconds) bounds how long
    an untouched user's index lives; ``end_ttl`` how long an ended
    session's reason is kept. ``summary`` gives the ``(label, mobile)`` of
    a User-Agent for the listing; ``namespace`` names the namespace in it.

    Each round trip is an operation of ``namespace`` for ``watchers``
    (:mod:`pyramid_session_suite.watch`): ``login`` (:meth:`register`),
    ``list``, ``revoke`` (:meth:`end`, :meth:`end_all` and the like),
    ``count`` (:meth:`prune_counts`) and ``forget``.
    """

    #: told of each round trip (the application's, set by the tracker)
    watchers: Sequence[Watcher] = ()

    def __init__(
        self,
        client: RedisClient,
        secret: str | Sequence[str],
        *,
        key_prefix: str = 'session_suite:users:',
        session_prefix: str = 'session:',
        ttl: float = 86400,
        end_ttl: float = 86400,
        clock: Callable[[], int] = now_ms,
        summary: Callable[[str], tuple[str, bool]] = _plain_summary,
        namespace: str | None = None,
    ) -> None:
        secrets = secret_list(secret, 'session_suite.user_index.secret')
        self.client = client
        self.key_prefix = key_prefix
        self.session_prefix = session_prefix
        self.ttl_ms = int(ttl * 1000)
        self.end_ttl_ms = int(end_ttl * 1000)
        self.clock = clock
        self.summary = summary
        self.namespace = namespace
        self._secret = secrets[0].encode('utf-8')
        self.register_script = client.register_script(REGISTER)
        self.list_script = client.register_script(LIST)
        self.revoke_script = client.register_script(REVOKE)
        self.count_script = client.register_script(COUNT)

    def _run(self, name: str, script: Any, size: int = 0, **call: Any) -> Any:
        """Run one of the index's scripts, the operation ``name`` for the
        watchers; a Redis error names the namespace (for the metrics of
        the 503 it becomes)."""
        return watched(
            self.watchers, self.namespace, name, lambda: script(**call), size
        )

    # -- names --------------------------------------------------------------

    def keys(self, userid: Any) -> builtins.list[str]:
        """The keys of ``userid``'s scripts: its first session's key, its
        index, and the two keys of earlier releases' index."""
        if userid is None:
            raise ValueError('no user id')
        tag = user_tag(userid)
        return [
            f'{self.session_prefix}{{{tag}}}:{lr.FIRST_SLOT}',
            f'{self.key_prefix}{{{tag}}}:i',
            *legacy_index.keys(self.key_prefix, tag),
        ]

    def index_key(self, userid: Any) -> str:
        return self.keys(userid)[1]

    def handle(self, session_id: str) -> str:
        """The opaque, stable handle of a session id."""
        key, secret = lr.split_id(session_id)
        if secret is None:
            return legacy_index.handle(self._secret, session_id)
        return lr.handle(key.rpartition(':')[2], lr.digest(secret))

    def deadline(self, ttl_seconds: float | None, margin_ms: int = 0) -> int:
        """The score of a session used now whose key lives ``ttl_seconds``
        (``None``: as long as the index)."""
        if not ttl_seconds:
            return self.clock() + self.ttl_ms
        return self.clock() + int(ttl_seconds * 1000) + margin_ms

    # -- writes -------------------------------------------------------------

    def register(
        self,
        userid: Any,
        payload: bytes,
        *,
        ttl: float | None = None,
        score: int | None = None,
        max_sessions: int = 0,
        lock_seconds: float = 0,
        replaces: str | None = None,
        origin: bytes | None = None,
    ) -> tuple[bool, Any]:
        """Store a new session of ``userid`` (``payload``, the whole stored
        session, its secret's digest and login records included) in a free
        slot, with ``ttl`` (seconds, ``None``: none); enforce
        ``max_sessions`` (0: unlimited): sessions over the limit are ended,
        first those whose deadline comes first, unless one of them was
        active within ``lock_seconds``. The session ``replaces`` (a handle:
        the same browser's previous session, rotated away) neither counts
        nor stays listed.

        ``origin`` is the digest of the session id the browser logs in from
        (:func:`.login_records.origin_digest`). A recent session of
        ``userid`` made from the same origin is a login of this browser
        whose answer never arrived (a timeout, a 503 while Redis stalled):
        it is deleted instead of counted, so a retry is not locked out by
        it.

        Return ``(True, (slot, evicted_handles))`` or ``(False,
        retry_after)`` (whole seconds, never more than ``lock_seconds``).
        """
        ttl_ms = int(ttl * 1000) if ttl else 0
        if score is None:
            score = self.deadline(ttl)
        keys = self.keys(userid)
        for _ in range(3):
            reply = self._run(
                'login',
                self.register_script,
                len(payload),
                keys=keys,
                args=[
                    self.clock(),
                    payload,
                    ttl_ms,
                    self.ttl_ms,
                    max_sessions,
                    int(lock_seconds * 1000),
                    lr.new_slot(),
                    replaces or '',
                    self.end_ttl_ms,
                    origin or b'',
                    GRACE_MS,
                    score,
                ],
            )
            if int(reply[0]) != -1:
                break
        else:  # pragma: no cover - 48 random bits taken three times
            raise RuntimeError('no free session slot')
        if int(reply[0]) == 1:
            return True, (_text(reply[1]), [_text(h) for h in reply[2:]])
        # never longer than the lock, even when the session's last activity
        # was recorded by a process whose clock is ahead of this one's
        seconds = -(-int(reply[1]) // 1000)
        return False, min(seconds, int(lock_seconds))

    def touch_commands(
        self, userid: Any, slot: str, score: int
    ) -> builtins.list[Command]:
        """The commands that move the deadline of the session in ``slot``
        (to be pipelined with the request's session writes); nothing
        happens while the user has no index key."""
        z = self.index_key(userid)
        return [
            Command('zadd', (z, {slot: score}), {'xx': True}, None),
            Command('pexpire', (z, self.ttl_ms), {}, None),
        ]

    def legacy_touch_command(
        self,
        userid: Any,
        handle: str,
        changes: Mapping[str, Any] | None = None,
    ) -> Command:
        """The touch of a session indexed by an earlier release."""
        import json

        args = (
            handle,
            self.clock(),
            self.ttl_ms,
            json.dumps(changes, separators=(',', ':')) if changes else '',
        )
        keys = self.keys(userid)[2:]
        return Command.eval(legacy_index.TOUCH, keys, args)

    def forget(self, userid: Any, handle: str) -> None:
        """Drop the entry ``handle`` of ``userid`` and keep its session
        (logged out of the index, not ended)."""
        _, z, lz, lh = self.keys(userid)
        slot = handle.partition('.')[0] if '.' in handle else None
        pipe = self.client.pipeline(transaction=True)
        if slot is not None:
            pipe.zrem(z, slot)
        else:
            pipe.zrem(lz, handle)
            pipe.hdel(lh, handle)
        watched(self.watchers, self.namespace, 'forget', pipe.execute)

    def revoke(
        self, userid: Any, *handles: str, reason: str = 'revoked'
    ) -> int:
        """End the given sessions of ``userid``; return how many ended."""
        if not handles:
            return 0
        return len(self.end(userid, handles, reason=reason))

    def revoke_all(
        self,
        userid: Any,
        *,
        except_handle: str | None = None,
        reason: str = 'revoked',
    ) -> int:
        """End every session of ``userid`` (but ``except_handle``)."""
        return len(self.end_all(userid, except_handle, reason=reason))

    def end(
        self, userid: Any, handles: Sequence[str], *, reason: str = 'revoked'
    ) -> builtins.list[str]:
        """End the given sessions of ``userid``; return the handles of
        those that ended."""
        return self._revoke(userid, reason, '', False, handles)

    def end_all(
        self,
        userid: Any,
        except_handle: str | None = None,
        *,
        reason: str = 'revoked',
    ) -> builtins.list[str]:
        """End every session of ``userid`` (but ``except_handle``); return
        the handles of those that ended."""
        return self._revoke(userid, reason, except_handle or '', True, ())

    def _revoke(
        self,
        userid: Any,
        reason: str,
        except_handle: str,
        every: bool,
        handles: Sequence[str],
    ) -> builtins.list[str]:
        reply = self._run(
            'revoke',
            self.revoke_script,
            keys=self.keys(userid),
            args=[
                self.clock(),
                GRACE_MS,
                reason,
                self.end_ttl_ms,
                except_handle,
                '1' if every else '0',
                *handles,
            ],
        )
        return [_text(handle) for handle in reply]

    # -- reads --------------------------------------------------------------

    def list(
        self, userid: Any, current: str | None = None
    ) -> builtins.list[SessionEntry]:
        """The live sessions of ``userid``, most recently active first, as
        :class:`SessionEntry` (``current`` is the handle to mark)."""
        import json

        entries, old = self._run(
            'list',
            self.list_script,
            keys=self.keys(userid),
            args=[self.clock(), GRACE_MS],
        )
        listed = []
        for entry in entries:
            slot, pttl = _text(entry[0]), int(entry[1])
            records = dict(zip(entry[2::2], entry[3::2], strict=True))
            ua = lr.text(records, lr.USER_AGENT) or ''
            label, mobile = self.summary(ua)
            handle = lr.handle(slot, records[lr.SECRET])
            listed.append(
                SessionEntry(
                    ip=lr.text(records, lr.IP) or None,
                    ua=ua,
                    label=label,
                    mobile=mobile,
                    location=lr.text(records, lr.LOCATION),
                    ns=self.namespace,
                    handle=handle,
                    created=lr.number(records, lr.LOGIN) / 1000,
                    last_seen=lr.number(records, lr.ACTIVE) / 1000,
                    expires_in=pttl / 1000 if pttl >= 0 else None,
                    current=handle == current,
                )
            )
        for i in range(0, len(old), 4):
            handle = _text(old[i])
            meta = json.loads(old[i + 2])
            pttl = int(old[i + 3])
            meta.pop('sid', None)
            meta.pop('o', None)
            created = meta.pop('created', 0) / 1000
            listed.append(
                SessionEntry(
                    meta,
                    handle=handle,
                    created=created,
                    last_seen=float(old[i + 1]) / 1000,
                    expires_in=pttl / 1000 if pttl >= 0 else None,
                    current=handle == current,
                )
            )
        listed.sort(key=lambda e: e['last_seen'], reverse=True)
        return listed

    def count(self, userid: Any) -> int:
        """How many live sessions ``userid`` has (pruning the dead)."""
        return self.prune_counts(userid)[0]

    def prune(self, userid: Any) -> int:
        """Drop the entries of ``userid`` whose session is gone; return
        how many were dropped."""
        return self.prune_counts(userid)[1]

    def prune_counts(self, userid: Any) -> tuple[int, int]:
        """Prune ``userid``'s entries; return ``(live, dropped)``."""
        live, pruned = self._run(
            'count',
            self.count_script,
            keys=self.keys(userid),
            args=[self.clock(), GRACE_MS],
        )
        return int(live), int(pruned)

    def users(self, count: int = 500) -> Iterator[str | None]:
        """Iterate over the ids (strings) of the users that have a session
        in the index, with ``SCAN``; ``None`` stands for ids too long to be
        read back."""
        seen = set()
        patterns = (
            f'{self.session_prefix}{{*}}:*',
            f'{self.key_prefix}{{*}}:i',
            f'{self.key_prefix}{{*}}:z',
        )
        for pattern in patterns:
            for key in self.client.scan_iter(match=pattern, count=count):
                tag = tag_of_key(_text(key))
                if tag is not None and tag not in seen:
                    seen.add(tag)
                    yield userid_of_tag(tag)


def _text(value: bytes | str) -> str:
    return value.decode('utf-8') if isinstance(value, bytes) else value
