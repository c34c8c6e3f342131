"""What the soak (:mod:`bench.soak`) watches and audits: memory samples
taken while it runs (:class:`Sampler`), their trends between the two
halves of the run (:func:`trends`), and the census of every Redis key it
left (:func:`take_census`)."""

import collections
from dataclasses import dataclass, field
import http.client
import json
import statistics
import threading
import time
import redis

from pyramid_session_suite.crossdomain.tokens import TokenCodec
from pyramid_session_suite.redis.login_records import LOGIN, own_records
from pyramid_session_suite.redis.stored import is_ended, unpack
from pyramid_session_suite.user_index.store import user_tag

from .soakapp import HUB, MEMORY_PATH, SITE, XD_SECRET
from .soakclient import SHARED_USER

SESSION_PREFIX = 'session_suite:main:'
INDEX_PREFIX = 'session_suite:users:'
JTI_PREFIX = 'session_suite:xd:jti:'
#: the sessions of the shared account, and their ended-session markers
SHARED_PREFIX = f'{SESSION_PREFIX}{{{user_tag(SHARED_USER)}}}:'
#: how long a token claim is kept (the cross-domain defaults)
CLAIM_TTL = TokenCodec([XD_SECRET], [HUB, SITE]).claim_ttl

#: memory: the first part of the run (warm-up) is left out; the rest is cut
#: in two halves whose medians are compared. The growth allowed is a share
#: of the first half's median or a fixed slack, whichever is larger.
WARM_UP = 0.25
LIMITS = {
    # name: (share, slack)
    'rss': (0.05, 8 * 2**20),
    'blocks': (0.02, 5_000),
    'per_key': (0.25, 64),
}


def mb(value):
    return f'{value / 2**20:,.1f} MB'


@dataclass
class Sample:
    #: seconds since the clients started
    t: float
    requests: int
    #: the server process: resident bytes, allocated Python blocks, objects
    #: tracked by the garbage collector
    rss: int
    blocks: int
    objects: int
    #: Redis: ``used_memory``, its part that holds the keys (without
    #: client buffers and other overhead) and ``DBSIZE``
    used_memory: int
    dataset: int
    keys: int


class Sampler(threading.Thread):
    """Samples memory every ``interval`` seconds until stopped."""

    def __init__(self, port, client, clients, interval, say=None):
        super().__init__(name='soak-sampler', daemon=True)
        self.port = port
        self.client = client
        self.clients = clients
        self.interval = interval
        self.say = say
        self.samples = []
        self.stopped = threading.Event()
        self.start_time = time.monotonic()
        self.connection = http.client.HTTPConnection(
            '127.0.0.1', port, timeout=30
        )

    def sample(self):
        self.connection.request('GET', MEMORY_PATH)
        memory = json.loads(self.connection.getresponse().read())
        pipe = self.client.pipeline(transaction=False)
        pipe.info('memory')
        pipe.dbsize()
        info, keys = pipe.execute()
        sample = Sample(
            t=time.monotonic() - self.start_time,
            requests=sum(c.tally.requests for c in self.clients),
            rss=memory['rss'],
            blocks=memory['blocks'],
            objects=memory['objects'],
            used_memory=int(info['used_memory']),
            dataset=int(info['used_memory_dataset']),
            keys=keys,
        )
        self.samples.append(sample)
        return sample

    def run(self):
        said = 0.0
        while not self.stopped.wait(self.interval):
            try:
                sample = self.sample()
            except (OSError, http.client.HTTPException, redis.RedisError):
                self.connection.close()
                continue
            if self.say is not None and sample.t - said >= 10:
                said = sample.t
                errors = sum(c.tally.errors for c in self.clients)
                fives = sum(
                    n
                    for c in self.clients
                    for status, n in c.tally.statuses.items()
                    if status >= 500
                )
                self.say(
                    f'{sample.t:5.0f} s  {sample.requests:>9,} requests  '
                    f'5xx {fives}  no answer {errors}  '
                    f'keys {sample.keys:,}  server {mb(sample.rss)}  '
                    f'Redis {mb(sample.used_memory)}'
                )

    def stop(self):
        self.stopped.set()
        self.join()
        self.connection.close()


@dataclass
class Census:
    """The keys in Redis after the run."""

    keys: int = 0
    kinds: collections.Counter = field(default_factory=collections.Counter)
    #: keys without a TTL
    no_ttl: list = field(default_factory=list)
    #: the longest TTL of a token claim
    claim_ttl_max: int = 0
    #: logged-in sessions the index finds (a user's first slot, and the
    #: members of the index key of users with more than one session)
    entries: int = 0
    #: users with an index key
    users: int = 0
    #: index members naming no live logged-in session
    dangling: int = 0
    #: logged-in sessions the index cannot find
    orphans: int = 0


def kind_of(key, value=None):
    """The kind of ``key``; ``value`` is what a session key holds."""
    if key.startswith(JTI_PREFIX):
        return 'token claim'
    if key.startswith(INDEX_PREFIX):
        return 'index'
    ended = value is not None and is_ended(value)
    if key.startswith(SHARED_PREFIX):
        return 'shared marker' if ended else 'shared'
    if key.startswith(SESSION_PREFIX):
        if ended:
            return 'ended marker'
        return 'user session' if '{' in key else 'anonymous session'
    return 'unknown'


def is_login(value):
    """Whether a stored session holds a login of the user index."""
    return LOGIN in own_records(unpack(value)[1])


def take_census(client, chunk=1000):
    """Read every key of the database back, with its TTL, and check the
    user index against the session keys."""
    census = Census()
    names = [key.decode() for key in client.scan_iter(count=chunk)]
    ttls, values = {}, {}
    for start in range(0, len(names), chunk):
        part = names[start : start + chunk]
        pipe = client.pipeline(transaction=False)
        for name in part:
            pipe.ttl(name)
            if name.startswith(SESSION_PREFIX):
                pipe.get(name)
        replies = iter(pipe.execute())
        for name in part:
            ttls[name] = next(replies)
            if name.startswith(SESSION_PREFIX):
                values[name] = next(replies)
    ttls = {name: ttl for name, ttl in ttls.items() if ttl != -2}  # gone
    census.keys = len(ttls)
    logins = set()
    for name, ttl in ttls.items():
        value = values.get(name)
        if value is None and name.startswith(SESSION_PREFIX):
            continue  # expired between the two reads
        kind = kind_of(name, value)
        census.kinds[kind] += 1
        if ttl == -1:
            census.no_ttl.append(name)
        if kind == 'token claim':
            census.claim_ttl_max = max(census.claim_ttl_max, ttl)
        if kind in ('user session', 'shared') and is_login(value):
            logins.add(name)
    indexes = sorted(name for name in ttls if kind_of(name) == 'index')
    census.users = len(indexes)
    pipe = client.pipeline(transaction=False)
    for name in indexes:
        pipe.zrange(name, 0, -1)
    found = {name for name in logins if name.endswith(':0')}
    for name, slots in zip(indexes, pipe.execute(), strict=True):
        tag = name[name.index('{') : name.index('}') + 1]
        for slot in slots:
            key = f'{SESSION_PREFIX}{tag}:{slot.decode()}'
            if key in logins:
                found.add(key)
            else:
                census.dangling += 1
    census.entries = len(found)
    census.orphans = len(logins - found)
    return census


@dataclass
class Trend:
    """A memory figure: the medians of the two halves of the run after the
    warm-up, and the growth allowed (``None``: reported, not judged)."""

    name: str
    first: float
    second: float
    limit: float | None
    unit: str = 'bytes'

    @property
    def growth(self):
        return self.second - self.first

    @property
    def ok(self):
        return self.limit is None or self.growth <= self.limit


def trends(samples, duration):
    """The memory trends of ``samples``; empty when the run was too short
    to have two samples in each half after the warm-up."""
    kept = [s for s in samples if s.t >= WARM_UP * duration]
    half = len(kept) // 2
    if half < 2:
        return []
    first, second = kept[:half], kept[-half:]

    def trend(name, value, limits=None, unit='bytes'):
        a = statistics.median(value(s) for s in first)
        b = statistics.median(value(s) for s in second)
        limit = None
        if limits is not None:
            share, slack = LIMITS[limits]
            limit = max(share * a, slack)
        return Trend(name, a, b, limit, unit)

    def per_key(sample):
        return sample.dataset / max(sample.keys, 1)

    return [
        trend('server RSS', lambda s: s.rss, 'rss'),
        trend('server Python blocks', lambda s: s.blocks, 'blocks', 'count'),
        trend('server GC objects', lambda s: s.objects, unit='count'),
        trend('Redis used_memory', lambda s: s.used_memory),
        trend('Redis keys', lambda s: s.keys, unit='count'),
        trend('Redis dataset bytes per key', per_key, 'per_key'),
    ]
