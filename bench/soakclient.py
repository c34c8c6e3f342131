"""The browsers of the soak (:mod:`bench.soak`): each client is one person
with an account, :data:`DEVICES` browsers (a cookie jar per browser and
site) and one keep-alive connection, looping over a weighted mix of
operations (:data:`MIX`) until a deadline. Each client keeps the model of
what its browsers should see, and counts what did not match
(:class:`Tally`)."""

import collections
from dataclasses import dataclass, field
import http.client
import json
import random
import threading
import time
from urllib.parse import quote, urlencode, urlsplit

from .driver import USER_AGENT
from .soakapp import HUB, HUB_HOST, MAX_SESSIONS, SITE_HOST

#: browsers per client: one more than the policy's sessions per account
DEVICES = MAX_SESSIONS + 1
#: the counters a client increments in its sessions
KEYS = ('k0', 'k1', 'k2')
#: the account every client logs in to now and then
SHARED_USER = 'shared'
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

#: how many examples of each kind of surprise are kept for the report
EXAMPLES = 5


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
