"""The user index as earlier releases stored it: read, touched, counted
and revoked beside the current one (:mod:`.index`) until its sessions end.
No login writes it any more.

For each user id, two keys in one hash slot (``{tag}`` is the user's)::

    <prefix>{tag}:z    ZSET  handle -> last activity (ms)
    <prefix>{tag}:h    HASH  handle -> JSON: sid, ns, created, ip, ua, ...

and the user's session keys, ``<key prefix>{tag}:<random>`` (the session
id is the key). A handle is an HMAC of the session id. A session that
ended left ``<sid>:ended`` (the reason); sessions of this form now end in
place, like the others.

The Lua below is spliced into the scripts of :mod:`.index`, which pass the
two keys as ``KEYS[3]`` and ``KEYS[4]``.
"""

import base64
import hashlib
import hmac

#: an entry whose session key does not exist yet is a login still in flight
#: for this long (ms), and is not pruned
GRACE_MS = 10_000

#: Lua functions on the two keys of a user (``lz``, ``lh``)
LUA = """
local function legacy_entry(lh, handle)
  local raw = redis.call('HGET', lh, handle)
  if not raw then return nil, nil end
  local meta = cjson.decode(raw)
  return meta['sid'], meta
end
local function legacy_live(sid, meta, now, grace)
  if not sid then return false end
  local cur = redis.call('GET', sid)
  if cur then return string.byte(cur, 1) ~= 0 end
  return (now - (tonumber(meta['created']) or 0)) < grace
end
local function legacy_finish(sid, reason, ttl)
  if reason ~= '' then
    redis.call('SET', sid, '\0' .. reason, 'PX', ttl)
  else
    redis.call('DEL', sid)
  end
end
local function legacy_drop(lz, lh, handle)
  redis.call('ZREM', lz, handle)
  redis.call('HDEL', lh, handle)
end
-- the live entries {handle, last activity ms, sid, meta}, oldest first;
-- the others are dropped
local function legacy_prune(lz, lh, now, grace)
  local kept = {}
  if redis.call('EXISTS', lz) == 0 then return kept end
  local entries = redis.call('ZRANGE', lz, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    local handle = entries[i]
    local sid, meta = legacy_entry(lh, handle)
    if legacy_live(sid, meta, now, grace) then
      table.insert(kept, {handle, tonumber(entries[i + 1]), sid, meta})
    else
      legacy_drop(lz, lh, handle)
    end
  end
  return kept
end
"""

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


def keys(key_prefix: str, tag: str) -> tuple[str, str]:
    """The two keys of the user whose hash tag is ``tag``."""
    base = f'{key_prefix}{{{tag}}}:'
    return base + 'z', base + 'h'


def handle(secret: bytes, session_id: str) -> str:
    """The handle of a session id of this form: an HMAC of it."""
    digest = hmac.new(
        secret, session_id.encode('utf-8'), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode('ascii')[:22]
