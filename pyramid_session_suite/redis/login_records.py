"""What a logged-in session of the user index stores about itself.

A user's session lives at ``<key prefix>{<tag>}:<slot>``: slot ``0`` for
the first session of a user (a user with one session has no other key),
eight random characters for the others. Its id, in the cookie, is the key
followed by ``.`` and a secret of 128 bits; the session stores the digest
of that secret (:data:`.stored.SECRET_NAME`), so a slot used again never
answers an older cookie, and Redis holds no id a browser could present.

The index facts are the session's own records (names starting ``0xff``,
never shown in the session's data), by name:

``l`` login time and ``a`` last activity (epoch milliseconds, decimal), ``i``
the IP address as stored, ``u`` the User-Agent, ``g`` the location, ``o``
a digest of the id the browser logged in from (to recognize its retry of
a login whose answer was lost), ``s`` the secret's digest.

A login is stored as one record, :data:`LOGIN_RECORD` (a record costs
its read on every request)::

    s (16 bytes)  length of o (1 byte)  o  l NUL a NUL i NUL u NUL g

A NUL in a text is stored as U+FFFD. Sessions stored by earlier releases
hold each fact as a record of its own: they are read the same, and get a
login record at their next write of a fact. A session whose login was
forgotten keeps ``s`` alone, as its own record.

The *handle* of such a session, what pages, URLs and logs show, is its
slot, ``.`` and the first 8 hex digits of the digest: stable, opaque, and
never valid as a cookie.
"""

from collections.abc import Mapping
import functools
import hashlib
import hmac
import re
import secrets
from typing import Any

from . import stored

SECRET = stored.SECRET_NAME
LOGIN = b'\xffl'
ACTIVE = b'\xffa'
IP = b'\xffi'
USER_AGENT = b'\xffu'
LOCATION = b'\xffg'
ORIGIN = b'\xffo'

#: every record of a login, the secret's digest aside
INDEX_RECORDS = (LOGIN, ACTIVE, IP, USER_AGENT, LOCATION, ORIGIN)

#: the stored record of a login: every record of the login together
LOGIN_RECORD = stored.LOGIN_NAME

#: the texts of :data:`LOGIN_RECORD`, in their order
_TEXTS = (LOGIN, ACTIVE, IP, USER_AGENT, LOCATION)

#: the records :data:`LOGIN_RECORD` holds
_HELD = frozenset({SECRET, *INDEX_RECORDS})

#: what a NUL of a text is stored as
_REPLACEMENT = '\ufffd'.encode()

#: the slot of a user's first session
FIRST_SLOT = '0'

#: ``{tag}:slot.secret`` after the key prefix (and ``~`` for a
#: remembered login)
ID_RE = re.compile(
    r'^\{[A-Za-z0-9_-]{1,200}\}:(?:0|[A-Za-z0-9_-]{8})\.[A-Za-z0-9_-]{22}'
    r'~?\Z'
)

#: the last character of the id of a remembered login ("remember me"):
#: its key lives ``remember_max_age`` and its cookie has that ``Max-Age``
REMEMBERED = '~'


def remembered(session_id: object) -> bool:
    """Whether ``session_id`` is that of a remembered login."""
    return isinstance(session_id, str) and session_id.endswith(REMEMBERED)


#: the end of the Redis key of a user's session
SLOT_KEY = re.compile(r'\}:(?:0|[A-Za-z0-9_-]{8})$')

_TAIL = re.compile(r'\}:(?:0|[A-Za-z0-9_-]{8})\.[A-Za-z0-9_-]{22}\Z')


def new_secret() -> tuple[str, bytes]:
    """A new secret for a session id, and its digest."""
    secret = secrets.token_urlsafe(16)
    return secret, digest(secret)


def new_slot() -> str:
    """A random slot name (never ``0``: eight characters)."""
    return secrets.token_urlsafe(6)


@functools.lru_cache(maxsize=4096)
def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode('ascii')).digest()[
        : stored.DIGEST_SIZE
    ]


@functools.lru_cache(maxsize=4096)
def split_id(session_id: str) -> tuple[str, str | None]:
    """``(redis key, secret)`` of a session id; the secret is ``None`` for
    ids whose key is the id itself (anonymous sessions, earlier
    releases). (Asked on every read: remembered for the most recent
    ids.)"""
    if session_id.endswith(REMEMBERED):
        session_id = session_id[:-1]
    dot = len(session_id) - 23
    if dot < 0 or session_id[dot] != '.':
        return session_id, None
    start = session_id.rfind('}:', 0, dot)
    if start < 0 or not _TAIL.match(session_id, start):
        return session_id, None
    return session_id[:dot], session_id[dot + 1 :]


def redis_key(session_id: str) -> str:
    """The Redis key of a session id."""
    return split_id(session_id)[0]


def handle(slot: str, secret_digest: bytes) -> str:
    """The handle of the session in ``slot`` whose secret has
    ``secret_digest``."""
    return f'{slot}.{secret_digest[:4].hex()}'


def origin_digest(session_id: str) -> bytes:
    """The short digest of the id a browser logs in from."""
    return hashlib.sha256(session_id.encode('utf-8')).digest()[:8]


def matches(records: Mapping[bytes, bytes], secret: str) -> bool:
    """Whether stored ``records`` belong to the id whose secret is
    ``secret``."""
    recorded = records.get(SECRET)
    return recorded is not None and hmac.compare_digest(
        recorded, digest(secret)
    )


def encode(value: object) -> bytes:
    """A record's value: text as UTF-8, numbers in decimal."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, int):
        return b'%d' % value
    return str(value).encode('utf-8')


def login_records(
    describe: Mapping[str, Any], now: int, origin: bytes | None = None
) -> dict[bytes, bytes]:
    """The records of a new login: ``describe`` is the client's
    description (``ip``, ``ua``, ``location``), ``now`` epoch
    milliseconds."""
    records = {
        LOGIN: encode(now),
        ACTIVE: encode(now),
        IP: encode(describe.get('ip') or ''),
        USER_AGENT: encode(describe.get('ua') or ''),
    }
    if describe.get('location'):
        records[LOCATION] = encode(describe['location'])
    if origin:
        records[ORIGIN] = origin
    return records


def text(records: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = records.get(name)
    return None if value is None else value.decode('utf-8', 'replace')


def number(records: Mapping[bytes, bytes], name: bytes) -> int:
    value = records.get(name)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def clean(text: str) -> str:
    """``text`` as a login record keeps it (a NUL is U+FFFD)."""
    return text.replace('\x00', '\ufffd') if '\x00' in text else text


def pack_login(own: Mapping[bytes, bytes]) -> bytes | None:
    """The :data:`LOGIN_RECORD` of a session's own records, or ``None``
    unless they hold a login (its time and its secret's digest)."""
    secret = own.get(SECRET)
    if secret is None or len(secret) != stored.DIGEST_SIZE or LOGIN not in own:
        return None
    origin = own.get(ORIGIN, b'')[:255]
    texts = [own.get(name, b'') for name in _TEXTS]
    if any(b'\x00' in text for text in texts):
        texts = [text.replace(b'\x00', _REPLACEMENT) for text in texts]
    return secret + bytes((len(origin),)) + origin + b'\x00'.join(texts)


def expand_login(value: bytes, into: dict[bytes, bytes]) -> None:
    """Put the records a :data:`LOGIN_RECORD` holds in ``into``."""
    size = stored.DIGEST_SIZE
    if len(value) <= size:
        return
    into[SECRET] = value[:size]
    start = size + 1
    end = start + value[size]
    if end > start:
        into[ORIGIN] = value[start:end]
    texts = value[end:].split(b'\x00')
    if len(texts) == 5:
        into[LOGIN], into[ACTIVE], into[IP], into[USER_AGENT], location = texts
        if location:
            into[LOCATION] = location
        return
    for name, text in zip(_TEXTS, texts, strict=False):
        if text or name != LOCATION:
            into[name] = text


def own_records(records: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """The session's own records (its timeout aside) among stored
    ``records``, by name, those of its login record included."""
    own: dict[bytes, bytes] = {}
    for name, value in records.items():
        if name[0] == stored.INTERNAL and name != stored.TIMEOUT_NAME:
            if name == LOGIN_RECORD:
                expand_login(value, own)
            else:
                own[name] = value
    return own


def stored_own(own: Mapping[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """The records that store a session's own records ``own``: those of a
    login as one :data:`LOGIN_RECORD`, the others as they are."""
    login = pack_login(own)
    if login is None:
        return list(own.items())
    kept = [(name, value) for name, value in own.items() if name not in _HELD]
    kept.append((LOGIN_RECORD, login))
    return kept
