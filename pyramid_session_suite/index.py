"""The per-user session index in Redis.

For each user id, two keys in one hash slot (``{tag}`` is the user's)::

    <prefix>{tag}:z    ZSET  handle -> last activity (ms)
    <prefix>{tag}:h    HASH  handle -> JSON: sid, ns, created, ip, ua, ...

and the user's session keys themselves, ``<key prefix>{tag}:<random>``,
made by :meth:`RedisSession.rotate` at login. Every operation is one Lua
script on those keys: atomic across processes, valid on Redis Cluster, one
round trip. Every key has a TTL; entries whose session key is gone are
pruned by the next script that sees them, so the index never lists a
session that no longer exists and never grows without bound.

A *handle* is an HMAC of the session id: what URLs, pages and logs show
instead of the id. An ended session leaves ``<sid>:ended`` (the reason, for
as long as its cookie may still come back) so that its browser can be told
why.
"""

import base64
import hashlib
import hmac
import json
import time

from .persist import Command
from .settings import check_secret

#: an entry whose session key does not exist yet is a login still in flight
#: for this long (ms), and is not pruned
GRACE_MS = 10_000


_PRUNE = """
local function entry_sid(h, handle)
  local raw = redis.call('HGET', h, handle)
  if not raw then return nil, nil end
  local meta = cjson.decode(raw)
  return meta['sid'], meta
end
local function live(sid, meta, now, grace)
  if not sid then return false end
  if redis.call('EXISTS', sid) == 1 then return true end
  return (now - (tonumber(meta['created']) or 0)) < grace
end
local function prune(z, h, now, grace)
  local kept = {}
  local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    local handle = entries[i]
    local sid, meta = entry_sid(h, handle)
    if live(sid, meta, now, grace) then
      table.insert(kept, {handle, tonumber(entries[i + 1]), sid, meta})
    else
      redis.call('ZREM', z, handle)
      redis.call('HDEL', h, handle)
    end
  end
  return kept
end
local function finish(sid, reason, ttl)
  redis.call('DEL', sid)
  if reason ~= '' then
    redis.call('SET', sid .. ':ended', reason, 'PX', ttl)
  end
end
"""

#: KEYS z h; ARGV handle now meta ttl max lock grace replaced|'' end_ttl
#: origin|'' -> {1, 0, evicted handles...} | {0, retry_after_ms}
REGISTER = (
    _PRUNE
    + """
local z, h = KEYS[1], KEYS[2]
local handle, now, meta = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local ttl, max, lock = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local replaced, end_ttl, origin = ARGV[8], tonumber(ARGV[9]), ARGV[10]
local kept = prune(z, h, now, tonumber(ARGV[7]))
local others = {}
for _, entry in ipairs(kept) do
  if origin ~= '' and entry[4]['o'] == origin then
    -- an earlier login of this same browser whose answer never arrived
    finish(entry[3], '', 0)
    redis.call('ZREM', z, entry[1])
    redis.call('HDEL', h, entry[1])
  elseif entry[1] ~= handle and entry[1] ~= replaced then
    table.insert(others, entry)
  end
end
local evicted = {}
if max > 0 and #others >= max then
  local n = #others - max + 1
  local newest = others[n][2]
  if lock > 0 and newest + lock > now then
    return {0, newest + lock - now}
  end
  for i = 1, n do
    finish(others[i][3], 'displaced', end_ttl)
    redis.call('ZREM', z, others[i][1])
    redis.call('HDEL', h, others[i][1])
    table.insert(evicted, others[i][1])
  end
end
if replaced ~= '' then
  redis.call('ZREM', z, replaced)
  redis.call('HDEL', h, replaced)
end
redis.call('ZADD', z, now, handle)
redis.call('HSET', h, handle, meta)
redis.call('PEXPIRE', z, ttl)
redis.call('PEXPIRE', h, ttl)
local reply = {1, 0}
for _, e in ipairs(evicted) do table.insert(reply, e) end
return reply
"""
)

#: KEYS z h; ARGV handle now ttl changes(JSON or '') -> 1 | 0 (gone)
TOUCH = """
local z, h, handle = KEYS[1], KEYS[2], ARGV[1]
if not redis.call('ZSCORE', z, handle) then return 0 end
redis.call('ZADD', z, ARGV[2], handle)
if ARGV[4] ~= '' then
  local raw = redis.call('HGET', h, handle)
  if raw then
    local meta = cjson.decode(raw)
    for k, v in pairs(cjson.decode(ARGV[4])) do meta[k] = v end
    redis.call('HSET', h, handle, cjson.encode(meta))
  end
end
redis.call('PEXPIRE', z, ARGV[3])
redis.call('PEXPIRE', h, ARGV[3])
return 1
"""

#: KEYS z h; ARGV now grace -> {handle, last_seen, meta, pttl, ...}
LIST = (
    _PRUNE
    + """
local kept = prune(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
local reply = {}
for i = #kept, 1, -1 do
  local e = kept[i]
  table.insert(reply, e[1])
  table.insert(reply, tostring(e[2]))
  table.insert(reply, cjson.encode(e[4]))
  table.insert(reply, redis.call('PTTL', e[3]))
end
return reply
"""
)

#: KEYS z h; ARGV now grace reason ttl except|'' all(0|1) handles...
#: -> number of sessions ended
REVOKE = (
    _PRUNE
    + """
local z, h = KEYS[1], KEYS[2]
local reason, ttl, except = ARGV[3], tonumber(ARGV[4]), ARGV[5]
local targets = {}
if ARGV[6] == '1' then
  for _, e in ipairs(prune(z, h, tonumber(ARGV[1]), tonumber(ARGV[2]))) do
    if e[1] ~= except then table.insert(targets, e[1]) end
  end
else
  for i = 7, #ARGV do table.insert(targets, ARGV[i]) end
end
local n = 0
for _, handle in ipairs(targets) do
  local sid = entry_sid(h, handle)
  if sid then
    finish(sid, reason, ttl)
    redis.call('ZREM', z, handle)
    redis.call('HDEL', h, handle)
    n = n + 1
  end
end
return n
"""
)

#: KEYS z h; ARGV now grace -> {live sessions, entries pruned}
COUNT = (
    _PRUNE
    + """
local before = redis.call('ZCARD', KEYS[1])
local live = #prune(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {live, before - live}
"""
)


def user_tag(userid):
    """The Redis hash tag of a user id: its URL-safe base64 (or a digest,
    for ids over 150 bytes)."""
    raw = str(userid).encode('utf-8')
    if len(raw) > 150:
        return 'H' + hashlib.sha256(raw).hexdigest()
    return base64.urlsafe_b64encode(raw).decode('ascii').rstrip('=')


def userid_of_tag(tag):
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


def now_ms():
    return int(time.time() * 1000)


class SessionEntry(dict):
    """One session of a user, as listed: ``handle``, ``last_seen`` and
    ``created`` (epoch seconds), ``ip``, ``ua``, ``label``, ``mobile``,
    ``location``, ``ns`` (the namespace), ``expires_in`` (seconds, ``None``
    for no expiry) and ``current``; the session id is never included."""

    __getattr__ = dict.get


class UserIndex:
    """The sessions of every user: register, touch, list, revoke, count.

    ``client`` is the Redis client of the indexed namespace (its session
    keys must be reachable from the scripts: same server, or same slot on
    a cluster). ``ttl`` (seconds) bounds how long an untouched user's index
    lives; ``end_ttl`` how long an ended session's reason is kept.
    """

    def __init__(
        self,
        client,
        secret,
        *,
        key_prefix='session_suite:users:',
        ttl=86400,
        end_ttl=86400,
        clock=now_ms,
    ):
        check_secret(secret, 'session_suite.user_index.secret')
        self.client = client
        self.key_prefix = key_prefix
        self.ttl_ms = int(ttl * 1000)
        self.end_ttl_ms = int(end_ttl * 1000)
        self.clock = clock
        self._secret = secret.encode('utf-8')
        self.register_script = client.register_script(REGISTER)
        self.touch_script = client.register_script(TOUCH)
        self.list_script = client.register_script(LIST)
        self.revoke_script = client.register_script(REVOKE)
        self.count_script = client.register_script(COUNT)

    # -- names --------------------------------------------------------------

    def keys(self, userid):
        if userid is None:
            raise ValueError('no user id')
        base = f'{self.key_prefix}{{{user_tag(userid)}}}:'
        return [base + 'z', base + 'h']

    def handle(self, session_id):
        """The opaque, stable handle of a session id."""
        digest = hmac.new(
            self._secret, session_id.encode('utf-8'), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest[:16]).decode('ascii')[:22]

    # -- writes -------------------------------------------------------------

    def register(
        self,
        userid,
        session_id,
        meta,
        *,
        max_sessions=0,
        lock_seconds=0,
        replaces=None,
        origin=None,
    ):
        """Record a new session of ``userid``; enforce ``max_sessions`` (0:
        unlimited): sessions over the limit are ended, oldest activity
        first, unless one of them was active within ``lock_seconds``. The
        entry ``replaces`` (the same browser's previous session, rotated
        away) neither counts nor stays.

        ``origin`` is the handle of the session id the browser logs in
        from (its cookie's, before the login). An entry of ``userid`` made
        from the same origin is a login of this browser whose answer never
        arrived (a timeout, a 503 while Redis stalled): it is ended
        instead of counted, so a retry is not locked out by it.

        Return ``(True, evicted_handles)`` or ``(False, retry_after)``
        (whole seconds, never more than ``lock_seconds``).
        """
        now = self.clock()
        meta = dict(meta, sid=session_id, created=now)
        if origin:
            meta['o'] = origin
        reply = self.register_script(
            keys=self.keys(userid),
            args=[
                self.handle(session_id),
                now,
                json.dumps(meta, separators=(',', ':')),
                self.ttl_ms,
                max_sessions,
                int(lock_seconds * 1000),
                GRACE_MS,
                replaces or '',
                self.end_ttl_ms,
                origin or '',
            ],
        )
        if reply[0] == 1:
            return True, [_text(h) for h in reply[2:]]
        # never longer than the lock, even when the session's last activity
        # was recorded by a process whose clock is ahead of this one's
        seconds = -(-int(reply[1]) // 1000)
        return False, min(seconds, int(lock_seconds))

    def touch_command(self, userid, handle, changes=None):
        """Return the :class:`.persist.Command` that records activity (and
        changed metadata) of a session, to be pipelined with the request's
        session writes."""
        args = (
            handle,
            self.clock(),
            self.ttl_ms,
            json.dumps(changes, separators=(',', ':')) if changes else '',
        )
        return Command.eval(TOUCH, self.keys(userid), args)

    def forget(self, userid, handle):
        """Drop the entry ``handle`` of ``userid`` and keep its session
        (logged out of the index, not ended)."""
        z, h = self.keys(userid)
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(z, handle)
        pipe.hdel(h, handle)
        pipe.execute()

    def revoke(self, userid, *handles, reason='revoked'):
        """End the given sessions of ``userid``; return how many ended."""
        if not handles:
            return 0
        return self._revoke(userid, reason, '', False, handles)

    def revoke_all(self, userid, *, except_handle=None, reason='revoked'):
        """End every session of ``userid`` (but ``except_handle``)."""
        return self._revoke(userid, reason, except_handle or '', True, ())

    def _revoke(self, userid, reason, except_handle, every, handles):
        return int(
            self.revoke_script(
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
        )

    # -- reads --------------------------------------------------------------

    def list(self, userid, current=None):
        """The live sessions of ``userid``, most recently active first, as
        :class:`SessionEntry` (``current`` is the handle to mark)."""
        reply = self.list_script(
            keys=self.keys(userid), args=[self.clock(), GRACE_MS]
        )
        entries = []
        for i in range(0, len(reply), 4):
            handle = _text(reply[i])
            meta = json.loads(reply[i + 2])
            pttl = int(reply[i + 3])
            meta.pop('sid', None)
            meta.pop('o', None)
            created = meta.pop('created', 0) / 1000
            entries.append(
                SessionEntry(
                    meta,
                    handle=handle,
                    created=created,
                    last_seen=float(reply[i + 1]) / 1000,
                    expires_in=pttl / 1000 if pttl >= 0 else None,
                    current=handle == current,
                )
            )
        return entries

    def count(self, userid):
        """How many live sessions ``userid`` has (pruning the dead)."""
        return self.prune_counts(userid)[0]

    def prune(self, userid):
        """Drop the entries of ``userid`` whose session is gone; return
        how many were dropped."""
        return self.prune_counts(userid)[1]

    def prune_counts(self, userid):
        """Prune ``userid``'s entries; return ``(live, dropped)``."""
        live, pruned = self.count_script(
            keys=self.keys(userid), args=[self.clock(), GRACE_MS]
        )
        return int(live), int(pruned)

    def users(self, count=500):
        """Iterate over the ids (strings) of the users that have an index,
        with ``SCAN``; ``None`` stands for ids too long to be read back."""
        pattern = f'{self.key_prefix}{{*}}:z'
        start = len(self.key_prefix) + 1
        for key in self.client.scan_iter(match=pattern, count=count):
            yield userid_of_tag(_text(key)[start:-3])


def _text(value):
    return value.decode('utf-8') if isinstance(value, bytes) else value
