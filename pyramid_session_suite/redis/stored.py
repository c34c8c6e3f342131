"""How a Redis session is stored: one Redis string per session, made of
records that Redis can merge one key at a time without decoding a value.

::

    0x01  created (uint32, big-endian)  record*
    record = key length, key, value length, value

A length under 255 is one byte; 255 is followed by the length as a
big-endian ``uint16`` (keys) or ``uint32`` (values). Keys are the session's
keys in UTF-8; names that start with ``0xff`` (never UTF-8) are the
session's own records (its timeout; a user's login, see
:mod:`.login_records`), names that start with ``0xfe`` hold a
key that is not a string (its serialized form). Values are what the
factory's ``serialize`` made of each value: Python is their only encoder;
the scripts below move them as opaque bytes.

A string that starts with ``0x00`` is an ended session: the digest of its
secret (16 bytes, for a session of a user, see :mod:`.login_records`) or
nothing, then the reason. Anything else is a whole payload written by
earlier releases (``{"m": ..., "c": ..., "t": ...}``): it is read as
before, and replaced by a stored session at its next write.
"""

from collections.abc import Iterable

#: the first byte of a stored session
SESSION = 1

#: the first byte of an ended session
ENDED = 0

#: the first byte of the name of a session's own record
INTERNAL = 0xFF

#: the name of the record of a session's own timeout (seconds)
TIMEOUT_NAME = b'\xfft'

#: the first byte of the name of a key that is not a string
OTHER_KEY = 0xFE

#: the name of the record of the digest of a user session's secret (the
#: part of its id after the last ``.``; see :mod:`.login_records`)
SECRET_NAME = b'\xffs'

#: the length of that digest
DIGEST_SIZE = 16

#: the name of the record that holds the facts of a user's login together
#: (its secret's digest included; see :mod:`.login_records`)
LOGIN_NAME = b'\xffL'

_WIDE = 255


def header(created: float) -> bytes:
    """The first bytes of a stored session made at ``created`` (epoch
    seconds)."""
    return bytes((SESSION,)) + int(created).to_bytes(4, 'big')


def _length(size: int, wide: int) -> bytes:
    """A length: one byte under 255, else 255 and ``wide`` bytes."""
    if size < _WIDE:
        return bytes((size,))
    return b'\xff' + size.to_bytes(wide, 'big')


def record(name: bytes, value: bytes) -> bytes:
    """One record: ``name`` and ``value`` (bytes) with their lengths."""
    if len(name) >= 0x10000:
        raise ValueError('a session key is limited to 65,535 bytes')
    return _length(len(name), 2) + name + _length(len(value), 4) + value


def pack(created: float, records: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A stored session: its header and ``(name, value)`` records."""
    return header(created) + b''.join(
        record(name, value) for name, value in records
    )


def unpack(data: bytes) -> tuple[int, dict[bytes, bytes]]:
    """Return ``(created, {name: value})`` of a stored session; raise
    ``ValueError`` if ``data`` is not one (or is cut short)."""
    if len(data) < 5 or data[0] != SESSION:
        raise ValueError('not a stored session')
    records: dict[bytes, bytes] = {}
    pos, end = 5, len(data)
    # the lengths inline, and one check of the end for all records: this
    # runs on every read (a record cut short moves ``pos`` past the end,
    # or its next length past the data)
    try:
        while pos < end:
            size = data[pos]
            if size == 255:
                size = int.from_bytes(data[pos + 1 : pos + 3], 'big')
                pos += 3
            else:
                pos += 1
            name = data[pos : pos + size]
            pos += size
            size = data[pos]
            if size == 255:
                size = int.from_bytes(data[pos + 1 : pos + 5], 'big')
                pos += 5
            else:
                pos += 1
            stop = pos + size
            records[name] = data[pos:stop]
            pos = stop
    except IndexError:
        raise ValueError('stored session cut short') from None
    if pos != end:
        raise ValueError('stored session cut short')
    return int.from_bytes(data[1:5], 'big'), records


def is_stored_session(data: bytes | None) -> bool:
    if not data:
        return False
    return data[0] == SESSION


def is_ended(data: bytes | None) -> bool:
    if not data:
        return False
    return data[0] == ENDED


def ended(digest: bytes, reason: str) -> bytes:
    """What an ended session's key holds: ``digest`` (the session's
    secret's, or ``b''``) and ``reason``."""
    return bytes((ENDED,)) + digest + reason.encode('utf-8')


def ended_reason(data: bytes, digest: bytes) -> str | None:
    """The reason an ended session's key gives, if it is the session whose
    secret's digest is ``digest`` (``b''``: a session without one)."""
    if not is_ended(data) or data[1 : 1 + len(digest)] != digest:
        return None
    return data[1 + len(digest) :].decode('utf-8', 'replace')


_RECORDS = """
local function size(n, wide)
  if n < 255 then return string.char(n) end
  if wide then return '\\255' .. struct.pack('>I4', n) end
  return '\\255' .. struct.pack('>I2', n)
end
local function record(k, v) return size(#k) .. k .. size(#v, true) .. v end
"""

#: Lua: ``internals(value)``, the session's own records (names starting
#: ``0xff``) of a stored session by name, or ``nil`` for anything else; a
#: login record gives the records it holds (see :mod:`.login_records`)
OWN_RECORDS = """
local login_names = {'\\255l', '\\255a', '\\255i', '\\255u', '\\255g'}
local function expand_login(t, v)
  if #v < 17 then return end
  t['\\255s'] = string.sub(v, 1, 16)
  local ol = string.byte(v, 17)
  if ol > 0 then t['\\255o'] = string.sub(v, 18, 17 + ol) end
  local pos = 18 + ol
  for i, name in ipairs(login_names) do
    local stop = string.find(v, '\\0', pos, true)
    local field = string.sub(v, pos, (stop or (#v + 1)) - 1)
    if field ~= '' or i < 5 then t[name] = field end
    if not stop then break end
    pos = stop + 1
  end
end
local function internals(cur)
  if not cur or string.byte(cur, 1) ~= 1 then return nil end
  local t, pos, stop = {}, 6, #cur
  while pos <= stop do
    local kl = string.byte(cur, pos)
    pos = pos + 1
    if kl == 255 then kl, pos = struct.unpack('>I2', cur, pos) end
    local at = pos
    pos = pos + kl
    local vl = string.byte(cur, pos)
    pos = pos + 1
    if vl == 255 then vl, pos = struct.unpack('>I4', cur, pos) end
    if string.byte(cur, at) == 255 then
      local name = string.sub(cur, at, at + kl - 1)
      local value = string.sub(cur, pos, pos + vl - 1)
      if name == '\\255L' then
        expand_login(t, value)
      else
        t[name] = value
      end
    end
    pos = pos + vl
  end
  return t
end
"""

#: KEYS session; ARGV ttl_ms (0: keep), header, whole (0|1), n, b,
#: n (key, value) pairs set, b (key, value) pairs of the keys unchanged
#: (whole: used only if the session is an earlier release's payload),
#: keys deleted...
#: -> 1 written | 2 emptied (deleted) | 0 gone (deleted or ended)
#: | -1 stored by an earlier release and this write is not whole
MERGE = (
    _RECORDS
    + """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local byte, sub = string.byte, string.sub
local kind = byte(cur, 1)
if kind == 0 then return 0 end
local n, b = tonumber(ARGV[4]), tonumber(ARGV[5])
local last = 5 + 2 * n
-- the names set (in their order) and deleted, and the lengths of these
-- names: the other records are kept unread
local sets, order, dels, lens = {}, {}, {}, {}
local function set(i)
  local k = ARGV[i]
  sets[k] = ARGV[i + 1]
  order[#order + 1] = k
  lens[#k] = true
end
for i = 6, last, 2 do set(i) end
if kind ~= 1 then
  if ARGV[3] ~= '1' then return -1 end
  cur = ARGV[2]
  for i = last + 1, last + 2 * b, 2 do set(i) end
end
for i = last + 2 * b + 1, #ARGV do
  local k = ARGV[i]
  dels[k] = true
  lens[#k] = true
end
local out, o = {}, 0
local run, pos, stop = 1, 6, #cur
while pos <= stop do
  local start = pos
  local kl = byte(cur, pos)
  pos = pos + 1
  if kl == 255 then kl, pos = struct.unpack('>I2', cur, pos) end
  local at = pos
  pos = pos + kl
  local vl = byte(cur, pos)
  pos = pos + 1
  if vl == 255 then vl, pos = struct.unpack('>I4', cur, pos) end
  pos = pos + vl
  if lens[kl] then
    local k = sub(cur, at, at + kl - 1)
    local v = sets[k]
    if v or dels[k] then
      -- the unchanged records before this one, as they are
      if start > run then
        o = o + 1
        out[o] = sub(cur, run, start - 1)
      end
      if v then
        o = o + 1
        out[o] = record(k, v)
        sets[k] = nil
      end
      run = pos
    end
  end
end
if run <= stop then
  o = o + 1
  out[o] = sub(cur, run, stop)
end
for _, k in ipairs(order) do
  local v = sets[k]
  if v then
    o = o + 1
    out[o] = record(k, v)
  end
end
local new = table.concat(out)
if #new <= 5 then
  redis.call('DEL', KEYS[1])
  return 2
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], new, 'PX', ttl)
else
  redis.call('SET', KEYS[1], new, 'KEEPTTL')
end
return 1
"""
)

#: KEYS session[, session:ended]; ARGV payload, ttl_ms (0: none)
#: -> 1 created | 0 ended before it began | nil id taken
#: A retried create that finds its own payload counts as created.
CREATE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == ARGV[1] then return 1 end
  if string.byte(cur, 1) == 0 then return 0 end
  return nil
end
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""
