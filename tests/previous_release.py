"""Logged-in sessions written key by key as the previous releases wrote
them, to test that an upgrade keeps them working.

The release before this one stored a login in its session's slot key
(``{tag}:0``, ``{tag}:<slot>``) as it is stored now, but with each fact
of the login a record of its own: :func:`fact_by_fact` turns a login of
this release into that.

Two forms of the session payload: ``records`` (the stored form of
:mod:`pyramid_session_suite.redis.stored`) and ``json`` (the whole ``{"m", "c",
"t"}`` payload written before it). In both, the session
data holds the index bookkeeping under ``_session_suite`` and the user
index is two keys, ``{tag}:z`` and ``{tag}:h``; an ended session left
``<id>:ended``. The shapes were taken from what the previous release wrote
against a real Redis.
"""

import json
import secrets
import time
import zlib
from pyramid_session_redis.util import encode_session_payload

from pyramid_session_suite.redis import stored
from pyramid_session_suite.redis.session import json_dumps
from pyramid_session_suite.user_index._legacy import handle as legacy_handle
from pyramid_session_suite.user_index.store import user_tag

from .conftest import SECRET
from .usersapp import FIREFOX

INDEX_SECRET = SECRET + '-index'
SESSION_PREFIX = 'session_suite:main:'
INDEX_PREFIX = 'session_suite:users:'


def payload(data, created, form='records', timeout=1200):
    """A session payload as the previous releases stored it."""
    if form == 'json':
        return json_dumps(encode_session_payload(data, created, timeout, None))
    return stored.pack(
        created,
        [
            (key.encode('utf-8'), json_dumps(value))
            for key, value in data.items()
        ],
    )


def login(
    client,
    userid,
    *,
    data=None,
    form='records',
    ua=FIREFOX,
    ip='198.51.100.7',
    label='Firefox on Linux',
    timeout=1200,
    absolute=0,
    age=0,
):
    """Store a session of ``userid`` logged in ``age`` seconds ago, and
    its user index entry, as the previous release did; return its id."""
    tag = user_tag(userid)
    sid = f'{SESSION_PREFIX}{{{tag}}}:{secrets.token_urlsafe(32)}'
    handle = legacy_handle(INDEX_SECRET.encode('utf-8'), sid)
    now = time.time() - age
    now_s, now_ms = int(now), int(now * 1000)
    marker = {
        'u': userid,
        'h': handle,
        'l': now_s,
        't': now_s,
        'ip': ip,
        'ua': format(zlib.crc32(ua.encode('utf-8')), '08x'),
        'a': now_s + absolute if absolute else 0,
    }
    session = dict(
        {'_session_suite': marker, 'auth.userid': userid}, **(data or {})
    )
    client.set(sid, payload(session, now_s, form, timeout), ex=timeout)
    meta = {
        'ip': ip,
        'ua': ua,
        'label': label,
        'mobile': False,
        'location': None,
        'ns': 'main',
        'sid': sid,
        'created': now_ms,
    }
    z = f'{INDEX_PREFIX}{{{tag}}}:z'
    h = f'{INDEX_PREFIX}{{{tag}}}:h'
    ttl_ms = (timeout + 60 + 60) * 1000
    pipe = client.pipeline(transaction=True)
    pipe.zadd(z, {handle: now_ms})
    pipe.hset(h, handle, json.dumps(meta, separators=(',', ':')))
    pipe.pexpire(z, ttl_ms)
    pipe.pexpire(h, ttl_ms)
    pipe.execute()
    return sid


def ended(client, sid, reason, ttl=86400):
    """End ``sid`` as the previous release did: its key and its index
    entry deleted, the reason left beside it."""
    base = sid[: sid.index('}:') + 2].replace(SESSION_PREFIX, INDEX_PREFIX)
    handle = handle_of(sid)
    pipe = client.pipeline(transaction=True)
    pipe.delete(sid)
    pipe.set(sid + ':ended', reason, ex=ttl)
    pipe.zrem(base + 'z', handle)
    pipe.hdel(base + 'h', handle)
    pipe.execute()


def handle_of(sid):
    return legacy_handle(INDEX_SECRET.encode('utf-8'), sid)


def fact_by_fact(client, key):
    """Store the session at ``key`` (a login of this release) as the
    release before stored it: the facts of its login (time, activity,
    address, browser, location, origin, the secret's digest) each in a
    record of its own, after the session's keys."""
    from pyramid_session_suite.redis import login_records as lr

    value = client.get(key)
    created, records = stored.unpack(value)
    own = lr.own_records(records)
    kept = [
        (name, value)
        for name, value in records.items()
        if name[:1] != b'\xff' or name == stored.TIMEOUT_NAME
    ]
    order = (lr.LOGIN, lr.ACTIVE, lr.IP, lr.USER_AGENT, lr.LOCATION)
    facts = [(name, own[name]) for name in order if name in own]
    facts += [
        (name, own[name]) for name in (lr.ORIGIN, lr.SECRET) if name in own
    ]
    client.set(key, stored.pack(created, kept + facts), keepttl=True)
    return dict(facts)
