"""A bounded soak on loopback: the whole suite under a realistic mix of
concurrent browsers, for a fixed time, then an audit of what it left.

``python -m bench.soak --seconds 60 --clients 32`` (or :func:`soak`):

- a private Redis server (``REDIS_URL`` instead, whose database must be
  empty) and, in a child process, waitress serving :mod:`bench.soakapp`
  (two sites of a cross-domain group, every feature on) on loopback;
- ``clients`` threads, each one person with its own account and
  :data:`DEVICES` browsers (one more than the policy allows sessions), a
  cookie jar per browser and site and one keep-alive connection, loop for
  ``seconds`` over a mix of: untouched pages, new anonymous visitors,
  reads, writes, listing and revoking sessions, logging in, out and in
  again, handing the session to the other site with a single-use token
  (redirect and push flows) and replaying that token, anonymous page views
  bounced through the hub, and logins to one account that every client
  shares;
- each client keeps the model of what its browsers should see: its own
  counters (a read showing less than it wrote is a lost write), its
  sessions (the index must list exactly them), the sessions it ended (their
  browsers must be told so);
- every few seconds: the server process's resident memory and allocated
  Python blocks, Redis ``used_memory``, ``used_memory_dataset`` and
  ``DBSIZE``;
- at the end, every Redis key is read back: each must have a TTL; each
  index member must name a live session and the index must find each
  logged-in session; sessions, ended sessions and the sessions the index
  finds must be exactly the ones the clients' models account for; token
  claims must all be younger than a token's lifetime.

Memory is judged on the samples after a warm-up (the first quarter of the
run, while pools, caches and allocator arenas fill up), cut in two halves
whose medians are compared: a median ignores the odd sample taken while
many requests were in flight, and a leak of ``L`` per request moves it by
``L`` times the requests between the two medians (about 2,500 in the test
suite's 10-second run, 12,000 in a minute with 32 clients). The server
collects its garbage before each sample, so its allocated Python blocks
(every object, strings included) count live objects only: they must not
grow by more than 2% or 5,000 blocks (a leak of 2 objects per request over
10 seconds, well under one per request over a minute), nor its resident
memory by more than 5% or 8 MB. Redis memory grows with the sessions by
design (they live 20 minutes); the number of keys is audited exactly at
the end, and what is judged is the dataset's bytes per key (at most 25%
more).

Nothing is timed: throughput is reported, never judged.
"""

import argparse
import collections
from dataclasses import dataclass, field
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
from urllib.parse import quote, urlencode, urlsplit
import redis

from pyramid_session_suite.crossdomain.tokens import TokenCodec
from pyramid_session_suite.redis.login_records import LOGIN
from pyramid_session_suite.redis.stored import is_ended, unpack
from pyramid_session_suite.testing import RedisServer
from pyramid_session_suite.user_index.store import user_tag

from .soakapp import (
    APP,
    HUB,
    HUB_HOST,
    MAX_SESSIONS,
    MEMORY_PATH,
    SITE,
    SITE_HOST,
    TIMEOUT,
    XD_SECRET,
    ServerProcess,
)

DEFAULT_SECONDS = 60
DEFAULT_CLIENTS = 32
DEFAULT_THREADS = 8
#: the test suite's soak: ``SESSION_SUITE_SOAK_SECONDS`` or this long
SHORT_SECONDS = 10
SHORT_CLIENTS = 16
ENV_SECONDS = 'SESSION_SUITE_SOAK_SECONDS'

#: browsers per client: one more than the policy's sessions per account
DEVICES = MAX_SESSIONS + 1
#: the counters a client increments in its sessions
KEYS = ('k0', 'k1', 'k2')
#: the account every client logs in to now and then
SHARED_USER = 'shared'
USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0'
JSON = 'application/json'
HTML = 'text/html'

#: the mix: operation -> weight (an operation is one to six requests)
MIX = {
    'untouched': 22,
    'visitor': 5,
    'bounce': 2,
    'read': 25,
    'write': 22,
    'list': 6,
    'login': 5,
    'relogin': 3,
    'revoke': 3,
    'share': 5,
    'shared': 2,
}

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

#: how many examples of each kind of surprise are kept for the report
EXAMPLES = 5


# -- the clients -------------------------------------------------------------


class Answer:
    """One HTTP answer."""

    __slots__ = ('status', 'headers', 'cookies', 'body')

    def __init__(self, status, headers, cookies, body):
        self.status = status
        self.headers = headers
        self.cookies = cookies
        self.body = body

    @property
    def data(self):
        if not self.headers.get('Content-Type', '').startswith(JSON):
            return None
        return json.loads(self.body)

    @property
    def location(self):
        """``(host, path?query)`` of the redirect."""
        parts = urlsplit(self.headers.get('Location', ''))
        query = '?' + parts.query if parts.query else ''
        return parts.hostname, parts.path + query


class Browser:
    """A cookie jar per site (paths and expiry dates are not kept: every
    cookie is sent to every path of its site until deleted)."""

    def __init__(self):
        self.jars = {HUB_HOST: {}, SITE_HOST: {}}

    def header(self, host, extra=None):
        jar = dict(self.jars[host], **(extra or {}))
        return '; '.join(f'{name}={value}' for name, value in jar.items())

    def store(self, host, set_cookies):
        jar = self.jars[host]
        for header in set_cookies:
            first, _, attributes = header.partition(';')
            name, _, value = first.strip().partition('=')
            if 'max-age=0' in attributes.lower().replace(' ', ''):
                jar.pop(name, None)
            else:
                jar[name] = value

    def has_session(self, host):
        return 'main' in self.jars[host]


class Device:
    """A browser of one client, and what the client expects of it."""

    def __init__(self):
        self.browser = Browser()
        self.user = None
        self.handle = None
        #: counters of its session on the hub (shared with the site)
        self.counters = {}
        #: counter of the cookie namespace, per site
        self.prefs = {HUB_HOST: 0, SITE_HOST: 0}
        #: a session key exists for it
        self.live = False
        #: the site holds the hub's session too
        self.shared = False
        #: host -> why the session its cookie names ended ('': no reason)
        self.pending = {}
        #: a request failed in flight: take the next answer as the truth
        self.unsure = False

    def end(self, reason):
        """Its session was ended by a request of its client."""
        self.pending[HUB_HOST] = reason
        self.forget_site(reason)
        self.user = self.handle = None
        self.counters = {}
        self.live = False

    def forget_site(self, reason):
        if self.shared:
            self.pending[SITE_HOST] = reason
            self.shared = False


@dataclass
class Tally:
    """What the clients counted."""

    requests: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    operations: collections.Counter = field(
        default_factory=collections.Counter
    )
    errors: int = 0
    surprises: collections.Counter = field(default_factory=collections.Counter)
    examples: dict = field(default_factory=dict)
    lost_writes: int = 0
    phantom_writes: int = 0
    lost_sessions: int = 0
    index_mismatches: int = 0
    stale_cookies_kept: int = 0
    ended_told: collections.Counter = field(
        default_factory=collections.Counter
    )
    minted: int = 0
    redeemed: int = 0
    #: wall-clock times of the redemptions
    redeemed_at: list = field(default_factory=list)
    replays_refused: int = 0
    replays_accepted: int = 0
    #: sessions of anonymous visitors left behind
    abandoned: int = 0
    #: ended-session markers the client's requests made
    ends: int = 0
    #: shared-account logins; those displaced before their first write,
    #: and later (told so by a 401)
    shared_logins: int = 0
    shared_unborn: int = 0
    shared_displaced: int = 0

    def surprise(self, kind, detail=''):
        self.surprises[kind] += 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < EXAMPLES:
            examples.append(detail)

    def merge(self, other):
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == 'examples':
                for kind, items in theirs.items():
                    bucket = mine.setdefault(kind, [])
                    bucket.extend(items[: EXAMPLES - len(bucket)])
            elif isinstance(mine, collections.Counter):
                mine.update(theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, name, mine + theirs)


class Client(threading.Thread):
    """One person: an account, :data:`DEVICES` browsers, one keep-alive
    connection, until ``deadline`` (``time.monotonic()``)."""

    def __init__(self, number, port, deadline, seed):
        super().__init__(name=f'soak-client-{number}', daemon=True)
        self.user = f'user{number:03d}'
        self.port = port
        self.deadline = deadline
        self.rng = random.Random(seed)
        self.devices = [Device() for _ in range(DEVICES)]
        self.tally = Tally()
        self.connection = None
        self.operations = list(MIX)
        self.weights = list(MIX.values())

    def run(self):
        self.connection = http.client.HTTPConnection(
            '127.0.0.1', self.port, timeout=30
        )
        try:
            while time.monotonic() < self.deadline:
                operation = self.rng.choices(self.operations, self.weights)[0]
                try:
                    getattr(self, 'op_' + operation)()
                except Exception as exc:  # a bug of the driver: say so
                    self.tally.surprise('driver error', repr(exc))
                    self.connection.close()
        finally:
            self.connection.close()

    # -- HTTP ---------------------------------------------------------------

    def call(
        self,
        operation,
        method,
        host,
        path,
        browser=None,
        *,
        form=None,
        accept=JSON,
        expect=(200,),
        extra=None,
    ):
        """Send a request; count it; return its :class:`Answer`, or
        ``None`` if no answer came."""
        tally = self.tally
        tally.operations[operation] += 1
        headers = {'Host': host, 'Accept': accept, 'User-Agent': USER_AGENT}
        cookie = browser.header(host, extra) if browser else ''
        if cookie:
            headers['Cookie'] = cookie
        body = None
        if form is not None:
            body = urlencode(form)
            headers['Content-Type'] = 'application/x-www-form-urlencoded'
        try:
            self.connection.request(method, path, body, headers)
            response = self.connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.connection.close()
            tally.errors += 1
            tally.statuses[0] += 1
            tally.surprise('no answer', f'{method} {host}{path}: {exc!r}')
            return None
        tally.requests += 1
        tally.statuses[response.status] += 1
        cookies = response.headers.get_all('Set-Cookie') or []
        if browser is not None:
            browser.store(host, cookies)
        answer = Answer(response.status, response.headers, cookies, payload)
        if response.status not in expect:
            tally.surprise(
                f'{operation}: {response.status}',
                f'{method} {host}{path}: {payload[:160]!r}',
            )
        return answer

    def get(self, operation, host, path, browser=None, **options):
        return self.call(operation, 'GET', host, path, browser, **options)

    def post(self, operation, host, path, browser, form=None, **options):
        return self.call(
            operation, 'POST', host, path, browser, form=form or {}, **options
        )

    def follow(self, operation, browser, answer, accept=HTML, expect=(303,)):
        host, path = answer.location
        return self.get(
            operation, host, path, browser, accept=accept, expect=expect
        )

    # -- the model ------------------------------------------------------------

    def logged_in(self, shared=None):
        return [
            d
            for d in self.devices
            if d.user and (shared is None or d.shared == shared)
        ]

    def host_of(self, device):
        return (
            SITE_HOST
            if device.shared and self.rng.random() < 0.5
            else HUB_HOST
        )

    def settle(self, device, host):
        """A browser whose session was ended comes back: it must be told
        (401 for a displaced session), lose its cookie, and be anonymous."""
        if host not in device.pending:
            return
        reason = device.pending.pop(host)
        told = 401 if reason == 'displaced' else 200
        answer = self.call(
            'ended', 'GET', host, '/state', device.browser, expect=(told,)
        )
        if answer is None:
            device.unsure = True
        elif answer.status == 401:
            if answer.headers.get('X-Session-Ended') != reason:
                self.tally.surprise('ended: reason', answer.headers)
            self.tally.ended_told[reason] += 1
        elif answer.status == 200:
            data = answer.data
            if data['user'] is not None or data['counters']:
                self.tally.surprise('ended: came back', data)
            elif (data['ended'] or '') != reason:
                self.tally.surprise('ended: reason', (reason, data))
            self.tally.ended_told[reason or 'rotated'] += 1
        if device.browser.has_session(host):
            self.tally.stale_cookies_kept += 1
            self.tally.surprise('ended: cookie kept', host)
            device.browser.jars[host].pop('main')

    def check(self, device, host, answer):
        """Compare a state answer with what ``device`` should see: a
        counter below what the client wrote is a lost write."""
        if not ok(answer):
            device.unsure = True
            return
        data = answer.data
        tally = self.tally
        read = dict(data['counters'], prefs=data['prefs'])
        wrote = dict(device.counters, prefs=device.prefs[host])
        device.counters = data['counters']
        device.prefs[host] = data['prefs']
        if device.unsure:  # the answer is the truth
            device.unsure = False
            read = wrote
        if data['user'] != device.user:
            if device.user is not None and data['user'] is None:
                tally.lost_sessions += 1
                tally.surprise('session lost', (device.user, host, data))
                device.user = device.handle = None
                device.live = False
                device.forget_site('')
            else:
                tally.surprise('wrong user', (device.user, data))
        for key in wrote.keys() | read.keys():
            before, after = wrote.get(key, 0), read.get(key, 0)
            if after < before:
                tally.lost_writes += before - after
                tally.surprise('lost write', (host, key, before, after))
            elif after > before:
                tally.phantom_writes += after - before
                tally.surprise('phantom write', (host, key, before, after))

    def reconcile(self, device, answer, after_login=False):
        """Compare a listing of the account's sessions with the client's
        browsers; after a login, the missing ones were displaced."""
        if answer is None or answer.status != 200:
            return
        data = answer.data
        tally = self.tally
        if data['current'] != device.handle:
            tally.index_mismatches += 1
            tally.surprise('index: current', (device.handle, data))
        listed = set(data['handles'])
        mine = {d.handle: d for d in self.logged_in()}
        for handle, other in mine.items():
            if handle in listed:
                continue
            if after_login and other is not device:
                other.end('displaced')
                tally.ends += 1
            else:
                tally.index_mismatches += 1
                tally.surprise('index: missing', handle)
        for handle in listed - set(mine):
            tally.index_mismatches += 1
            tally.surprise('index: unknown', handle)

    # -- operations -----------------------------------------------------------

    def op_untouched(self):
        host = self.rng.choice((HUB_HOST, SITE_HOST))
        # a page view on the hub; an API call on the site (a page view
        # there would be bounced to the hub: see op_bounce)
        accept = HTML if host == HUB_HOST else JSON
        answer = self.get(
            'untouched', host, '/about', Browser(), accept=accept
        )
        if answer is not None and answer.cookies:
            self.tally.surprise('untouched: cookie', answer.cookies)

    def op_visitor(self):
        """A new visitor's first write, then a read; never seen again."""
        visitor = Device()
        key = self.rng.choice(KEYS)
        answer = self.post('visitor', HUB_HOST, '/write', visitor.browser,
                           {'key': key})  # fmt: skip
        if not ok(answer):
            return
        if not visitor.browser.has_session(HUB_HOST):
            self.tally.surprise('visitor: no cookie', answer.cookies)
            return
        self.tally.abandoned += 1
        visitor.counters = {key: 1}
        visitor.prefs[HUB_HOST] = 1
        self.check(visitor, HUB_HOST, answer)
        answer = self.get('visitor', HUB_HOST, '/state', visitor.browser)
        self.check(visitor, HUB_HOST, answer)

    def op_bounce(self):
        """An anonymous page view on the site: to the hub and back, once."""
        browser = Browser()
        answer = self.get('bounce', SITE_HOST, '/page', browser, accept=HTML,
                          expect=(303,))  # fmt: skip
        for expect in ((303,), (303,), (200,)):
            if not ok(answer, 303):
                return
            answer = self.follow('bounce', browser, answer, expect=expect)
        if ok(answer) and answer.data['user'] is not None:
            self.tally.surprise('bounce: user', answer.data)

    def op_read(self):
        device = self.rng.choice(self.devices)
        host = self.host_of(device)
        self.settle(device, host)
        answer = self.get('read', host, '/state', device.browser)
        self.check(device, host, answer)

    def op_write(self):
        device = self.rng.choice(self.devices)
        host = self.host_of(device)
        self.settle(device, host)
        key = self.rng.choice(KEYS)
        answer = self.post('write', host, '/write', device.browser,
                           {'key': key})  # fmt: skip
        if ok(answer):
            device.counters[key] = device.counters.get(key, 0) + 1
            device.prefs[host] += 1
            if host == HUB_HOST and not device.live:
                device.live = device.browser.has_session(HUB_HOST)
        self.check(device, host, answer)

    def op_list(self):
        devices = self.logged_in()
        if not devices:
            return self.op_login()
        device = self.rng.choice(devices)
        self.settle(device, HUB_HOST)
        if device.user:
            answer = self.get('list', HUB_HOST, '/mine', device.browser)
            self.reconcile(device, answer)

    def op_login(self):
        devices = [d for d in self.devices if not d.user]
        if not devices:
            return self.op_relogin()
        self.login(self.rng.choice(devices))

    def login(self, device):
        self.settle(device, HUB_HOST)
        answer = self.post('login', HUB_HOST, '/login', device.browser,
                           {'user': self.user})  # fmt: skip
        if not ok(answer):
            device.unsure = True
            return
        device.forget_site('')  # a new id: the site's copy is gone
        device.user = self.user
        device.handle = answer.data['handle']
        device.live = True
        self.check(device, HUB_HOST, answer)
        answer = self.get('login', HUB_HOST, '/mine', device.browser)
        self.reconcile(device, answer, after_login=True)

    def op_relogin(self):
        """Log out and in again, or log in again over the session."""
        devices = self.logged_in()
        if not devices:
            return self.op_login()
        device = self.rng.choice(devices)
        self.settle(device, HUB_HOST)
        if device.user and self.rng.random() < 0.5:
            answer = self.post('logout', HUB_HOST, '/logout', device.browser)
            if not ok(answer):
                device.unsure = True
                return
            self.tally.ends += 1
            device.forget_site('logout')
            device.user = device.handle = None
            device.counters = {}
            device.live = False
            self.check(device, HUB_HOST, answer)
        self.login(device)

    def op_revoke(self):
        """Sign one of the account's other browsers out."""
        devices = self.logged_in()
        if len(devices) < 2:
            return self.op_login()
        device, other = self.rng.sample(devices, 2)
        self.settle(device, HUB_HOST)
        if not device.user:
            return
        answer = self.post('revoke', HUB_HOST, '/mine', device.browser,
                           {'handle': other.handle})  # fmt: skip
        if not ok(answer):
            return
        if answer.data['count'] != 1:
            self.tally.index_mismatches += 1
            self.tally.surprise('revoke: count', answer.data)
        other.end('revoked')
        self.tally.ends += 1

    def op_share(self):
        """Hand the hub's session to the site (redirect or push flow), then
        replay the token."""
        devices = self.logged_in(shared=False)
        if not devices:
            return self.op_login()
        device = self.rng.choice(devices)
        self.settle(device, HUB_HOST)
        self.settle(device, SITE_HOST)
        browser = device.browser
        if not device.user:
            return
        if self.rng.random() < 0.5:
            path = '/_session_suite/xd/begin?next=' + quote(HUB + '/page')
        else:
            path = '/page'  # a page view without a session: bounced
        answer = self.get('share', SITE_HOST, path, browser, accept=HTML,
                          expect=(303,))  # fmt: skip
        if not ok(answer, 303):
            return
        state = browser.jars[SITE_HOST].get('session_suite_xd_state')
        answer = self.follow('share', browser, answer)  # the hub's export
        if not ok(answer, 303):
            return
        host, token_path = answer.location
        if '&t=' not in token_path:
            self.tally.surprise('share: no token', token_path)
            return
        self.tally.minted += 1
        answer = self.follow('share', browser, answer)  # the site's import
        if not ok(answer, 303):
            return
        if not browser.has_session(SITE_HOST):
            self.tally.surprise('share: no cookie', answer.cookies)
            return
        self.tally.redeemed += 1
        self.tally.redeemed_at.append(time.time())
        device.shared = True
        landing, _ = answer.location
        answer = self.follow('share', browser, answer, JSON, (200,))
        self.check(device, landing, answer)
        replay = self.get('replay', host, token_path, browser, accept=HTML,
                          expect=(400,),
                          extra={'session_suite_xd_state': state})  # fmt: skip
        if replay is None:
            return
        if replay.status < 400:
            self.tally.replays_accepted += 1
        elif replay.headers.get('X-Session-Suite-Reason') == 'replayed':
            self.tally.replays_refused += 1
        else:
            self.tally.surprise('replay: reason', replay.headers)
        if replay.cookies:
            self.tally.surprise('replay: cookie', replay.cookies)

    def op_shared(self):
        """A login to the account every client shares, a few writes, and a
        logout or not: the session ends by that logout, by a later login
        displacing it, or is still there at the end."""
        browser = Browser()
        answer = self.post('shared', HUB_HOST, '/login', browser,
                           {'user': SHARED_USER})  # fmt: skip
        if not ok(answer):
            return
        self.tally.shared_logins += 1
        if not browser.has_session(HUB_HOST):
            # displaced by a concurrent login before it was even written:
            # the login answer sets no cookie
            self.tally.shared_unborn += 1
            return
        for n in range(1, self.rng.randint(2, 5)):
            answer = self.post('shared', HUB_HOST, '/write', browser,
                               {'key': 'k0'}, expect=(200, 401))  # fmt: skip
            if ok(answer, 401):
                self.tally.shared_displaced += 1
                return
            if not ok(answer):
                return
            data = answer.data
            if data['user'] != SHARED_USER or data['counters'] != {'k0': n}:
                self.tally.surprise('shared: state', data)
        if self.rng.random() < 0.5:
            answer = self.post('shared', HUB_HOST, '/logout', browser,
                               expect=(200, 401))  # fmt: skip
            if ok(answer, 401):
                self.tally.shared_displaced += 1

    # -- what the model expects in Redis ------------------------------------

    def expected_keys(self):
        """The keys its browsers should have left in Redis, by kind."""
        anonymous = self.tally.abandoned
        users = 0
        for device in self.devices:
            if device.user:
                users += 1
            elif device.live:
                anonymous += 1
        return {
            'anonymous': anonymous,
            'users': users,
            'ends': self.tally.ends,
        }


def ok(answer, status=200):
    return answer is not None and answer.status == status


# -- the server, the samples, the audit --------------------------------------


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
    return LOGIN in unpack(value)[1]


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


@dataclass
class SoakResult:
    seconds: float
    clients: int
    threads: int
    elapsed: float
    redis_version: str
    tally: Tally
    census: Census
    #: what the clients' models account for
    expected: dict
    #: tokens redeemed within a claim's lifetime before the census
    recent_claims: int
    samples: list
    trends: list
    server_errors: list
    server_warnings: collections.Counter
    checks: list = field(default_factory=list)

    @property
    def ok(self):
        return all(ok for _, ok, _ in self.checks)

    @property
    def failed(self):
        return [name for name, ok, _ in self.checks if not ok]

    @property
    def rate(self):
        return self.tally.requests / self.elapsed

    @property
    def server_5xx(self):
        return sum(n for s, n in self.tally.statuses.items() if s >= 500)


def judge(result):
    """The checks of a run: ``[(name, ok, detail)]``."""
    t, c, e = result.tally, result.census, result.expected
    kinds = c.kinds
    seen = [kinds[k] for k in ('anonymous session', 'user session',
                               'ended marker')]  # fmt: skip
    expected = [e['anonymous'], e['users'], e['ends']]
    exact = result.elapsed < TIMEOUT - 60  # no session can have idled out
    if exact:
        accounted = seen == expected
    else:
        accounted = all(a <= b for a, b in zip(seen, expected, strict=True))
    shared = kinds['shared'], kinds['shared marker']
    logged_in = kinds['user session'] + kinds['shared']
    memory = [trend for trend in result.trends if trend.limit is not None]
    return [
        ('no 5xx', result.server_5xx == 0, f'{result.server_5xx}'),
        ('every request answered', t.errors == 0, f'{t.errors} unanswered'),
        ('answers as expected', not t.surprises,
         f'{sum(t.surprises.values())} surprises'),
        ('no lost writes', t.lost_writes == t.phantom_writes == 0,
         f'{t.lost_writes} lost, {t.phantom_writes} phantom'),
        ('no lost sessions', t.lost_sessions == 0, f'{t.lost_sessions}'),
        ('listings match the sessions', t.index_mismatches == 0,
         f'{t.index_mismatches} mismatches'),
        ('ended sessions told, cookies cleared', t.stale_cookies_kept == 0,
         f'{sum(t.ended_told.values()):,} told, '
         f'{t.stale_cookies_kept} cookies kept'),
        ('replayed tokens refused',
         t.replays_accepted == 0 and t.replays_refused == t.redeemed,
         f'{t.replays_refused:,} of {t.redeemed:,} refused'),
        ('every key has a TTL', not c.no_ttl, f'{len(c.no_ttl)} without'),
        ('no unknown keys', not kinds['unknown'], f'{kinds["unknown"]}'),
        ('the index finds every logged-in session',
         c.entries == logged_in == e['users'] + kinds['shared']
         and not (c.dangling or c.orphans),
         f'{c.entries:,} found, {logged_in:,} sessions; {c.dangling} '
         f'dangling, {c.orphans} orphans'),
        ('sessions and markers accounted for', accounted,
         'anonymous/logged-in/ended {} ({} {})'.format(
             '/'.join(map('{:,}'.format, seen)),
             'expected' if exact else 'at most',
             '/'.join(map('{:,}'.format, expected)))),
        ('shared account: each login live or ended',
         sum(shared) == t.shared_logins and shared[0] <= MAX_SESSIONS,
         f'{shared[0]} live + {shared[1]:,} ended = {sum(shared):,}, '
         f'{t.shared_logins:,} logins'),
        ('token claims within their lifetime',
         kinds['token claim'] <= result.recent_claims
         and c.claim_ttl_max <= CLAIM_TTL,
         f'{kinds["token claim"]:,} claims, {result.recent_claims:,} redeemed '
         f'in the last {CLAIM_TTL} s; TTLs <= {c.claim_ttl_max} s'),
        ('server logged no errors', not result.server_errors,
         f'{len(result.server_errors)} error lines'),
        ('memory stable', all(trend.ok for trend in memory),
         ', '.join(f'{trend.name} {fmt(trend.growth, trend.unit, True)}'
                   for trend in memory) or 'run too short to judge'),
    ]  # fmt: skip


# -- the report --------------------------------------------------------------


def mb(value):
    return f'{value / 2**20:,.1f} MB'


def fmt(value, unit, signed=False):
    sign = '+' if signed and value >= 0 else ''
    if unit == 'bytes' and abs(value) >= 2**20:
        return f'{sign}{value / 2**20:,.1f} MB'
    if unit == 'bytes' and abs(value) >= 2**10:
        return f'{sign}{value / 2**10:,.0f} KB'
    return f'{sign}{value:,.0f}' + (' B' if unit == 'bytes' else '')


def table(header, rows, align=None):
    """A text table; ``align``: one ``l`` or ``r`` per column (default:
    the first left, the others right)."""
    align = align or 'l' + 'r' * (len(header) - 1)
    rows = [
        [f'{cell:,}' if isinstance(cell, int) else str(cell) for cell in row]
        for row in [header, *rows]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row):
        return '  '.join(
            cell.ljust(width) if side == 'l' else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        ).rstrip()

    rule = '  '.join('-' * width for width in widths)
    return '\n'.join([line(rows[0]), rule, *map(line, rows[1:])])


def text_report(result):
    """The report of a run, as text."""
    t, c, e = result.tally, result.census, result.expected
    n = c.kinds
    live_shared = n['shared']
    lines = [
        f'soak: {result.elapsed:.0f} s, {result.clients} clients '
        f'({DEVICES} browsers each), waitress {result.threads} threads, '
        f'Redis {result.redis_version}; loopback',
        '',
        f'requests {t.requests:,} ({result.rate:,.0f}/s); by status: '
        + ', '.join(f'{s} {k:,}' for s, k in sorted(t.statuses.items())),
        f'lost writes {t.lost_writes}, phantom writes {t.phantom_writes}, '
        f'lost sessions {t.lost_sessions}',
        f'tokens minted {t.minted:,}, redeemed {t.redeemed:,}, replays '
        f'refused {t.replays_refused:,}, accepted {t.replays_accepted}',
        'ended sessions told: '
        + ', '.join(f'{r} {k:,}' for r, k in sorted(t.ended_told.items())),
        f'shared account: {t.shared_logins:,} logins; displaced by another '
        f'login {t.shared_unborn:,} times before their session was written '
        f'(no cookie), {t.shared_displaced:,} times later (told: 401)',
        '',
        table(('operation', 'requests'),
              [(name, f'{k:,}') for name, k in t.operations.most_common()]),
        '',
        table(('keys at the end', 'count', 'expected'), [
            ('anonymous sessions', n['anonymous session'], e['anonymous']),
            ('logged-in sessions', n['user session'], e['users']),
            ('ended-session markers', n['ended marker'], e['ends']),
            ('shared account: sessions', live_shared, f'<= {MAX_SESSIONS}'),
            ('shared account: markers', n['shared marker'],
             t.shared_logins - live_shared),
            ('index keys (users with 2+ sessions)', n['index'], ''),
            ('sessions the index finds', c.entries,
             e['users'] + live_shared),
            ('token claims', n['token claim'], f'<= {result.recent_claims:,}'),
            ('unknown', n['unknown'], 0),
            ('all (DBSIZE)', c.keys, ''),
            ('without a TTL', len(c.no_ttl), 0),
        ]),
        '',
    ]  # fmt: skip
    if result.trends:
        lines += [
            table(
                ('memory (median)', 'first half', 'second half', 'growth',
                 'limit', ''),
                [(tr.name, fmt(tr.first, tr.unit), fmt(tr.second, tr.unit),
                  fmt(tr.growth, tr.unit, True),
                  '' if tr.limit is None else fmt(tr.limit, tr.unit),
                  '' if tr.limit is None else verdict(tr.ok))
                 for tr in result.trends],
            ),
            f'(the first {WARM_UP:.0%} of the run left out; limit: the '
            'larger of a share of the first half and a fixed slack)',
            '',
        ]  # fmt: skip
    lines.append(
        table(
            ('check', '', 'detail'),
            [(name, verdict(ok), d) for name, ok, d in result.checks],
            align='lll',
        )
    )
    if result.server_warnings:
        warnings = result.server_warnings.items()
        listed = ', '.join(f'{name} {k:,}' for name, k in warnings)
        lines += ['', f'server warnings (by logger): {listed}']
    for name, examples in sorted(t.examples.items()):
        lines.append(f'surprise: {name} x{t.surprises[name]}')
        lines += [f'    {example}' for example in examples]
    lines += [f'server: {line}' for line in result.server_errors[:10]]
    if c.no_ttl:
        lines.append('without a TTL: ' + ', '.join(c.no_ttl[:5]))
    lines += ['', 'PASS' if result.ok else 'FAIL: ' + ', '.join(result.failed)]
    return '\n'.join(lines)


def verdict(ok):
    return 'PASS' if ok else 'FAIL'


# -- running it --------------------------------------------------------------


def soak(
    seconds=DEFAULT_SECONDS,
    clients=DEFAULT_CLIENTS,
    threads=DEFAULT_THREADS,
    redis_url=None,
    interval=None,
    seed=None,
    app=APP,
    say=None,
):
    """Run the soak; return a :class:`SoakResult` (``result.ok``).

    ``redis_url``: a server whose database is empty (default: a private
    one, or ``REDIS_URL``); ``interval``: seconds between memory samples
    (default: about 30 samples); ``app``: factory of the WSGI application
    served, ``module:name`` taking the Redis URL; ``say``: a callable for
    progress lines.
    """
    interval = interval or min(5.0, max(0.5, seconds / 30))
    seed = random.randrange(2**32) if seed is None else seed
    with RedisServer(redis_url) as server:
        client = redis.Redis.from_url(server.url, decode_responses=False)
        try:
            size = client.dbsize()
            if size:
                raise RuntimeError(
                    f'{server.url} holds {size} keys; the soak needs an '
                    'empty database (it accounts for every key)'
                )
            version = client.info('server')['redis_version']
            with ServerProcess(server.url, threads, app) as process:
                if say is not None:
                    say(
                        f'soak: {seconds:g} s, {clients} clients, waitress '
                        f'{threads} threads (pid {process.pid}, port '
                        f'{process.port}), Redis {server.url}, seed {seed}'
                    )
                elapsed, workers, samples = drive(
                    process.port, client, seconds, clients, interval, seed,
                    say,
                )  # fmt: skip
                census_time = time.time()
                census = take_census(client)
                process.stop()
                errors, warnings = process.log_summary()
        finally:
            client.close()
    tally = Tally()
    expected = collections.Counter()
    for worker in workers:
        tally.merge(worker.tally)
        expected.update(worker.expected_keys())
    result = SoakResult(
        seconds=seconds,
        clients=clients,
        threads=threads,
        elapsed=elapsed,
        redis_version=version,
        tally=tally,
        census=census,
        expected=expected,
        recent_claims=sum(
            1 for at in tally.redeemed_at if at > census_time - CLAIM_TTL
        ),
        samples=samples,
        trends=trends(samples, elapsed),
        server_errors=errors,
        server_warnings=warnings,
    )
    result.checks = judge(result)
    return result


def drive(port, client, seconds, clients, interval, seed, say):
    """Run the clients until the time is up, sampling memory meanwhile;
    return the seconds elapsed, the clients and the samples."""
    rng = random.Random(seed)
    start = time.monotonic()
    workers = [
        Client(n, port, start + seconds, rng.randrange(2**32))
        for n in range(clients)
    ]
    sampler = Sampler(port, client, workers, interval, say)
    sampler.sample()
    for worker in workers:
        worker.start()
    sampler.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    sampler.stop()
    sampler.sample()
    return elapsed, workers, sampler.samples


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m bench.soak',
        description=(
            'Soak the suite on loopback: waitress, a private Redis, many '
            'concurrent browsers for a fixed time; then audit the keys and '
            'the memory. Exits 1 when a check fails.'
        ),
    )
    parser.add_argument(
        '--seconds',
        type=float,
        default=float(os.environ.get(ENV_SECONDS) or DEFAULT_SECONDS),
        help=f'how long the clients run (default {DEFAULT_SECONDS}, or '
        f'${ENV_SECONDS})',
    )
    parser.add_argument('--clients', type=int, default=DEFAULT_CLIENTS)
    parser.add_argument(
        '--threads',
        type=int,
        default=DEFAULT_THREADS,
        help=f'waitress threads (default {DEFAULT_THREADS})',
    )
    parser.add_argument('--redis-url', help='default: a private server')
    parser.add_argument('--seed', type=int)
    parser.add_argument(
        '--interval', type=float, help='seconds between memory samples'
    )
    args = parser.parse_args(argv)
    result = soak(
        seconds=args.seconds,
        clients=args.clients,
        threads=args.threads,
        redis_url=args.redis_url,
        interval=args.interval,
        seed=args.seed,
        say=print,
    )
    print()
    print(text_report(result))
    return 0 if result.ok else 1


if __name__ == '__main__':
    sys.exit(main())
