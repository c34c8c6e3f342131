"""What a request of a logged-in session writes about its client: nothing
while the same browser comes from the same address within the touch
interval; its new address, browser or activity as soon as they change.
Against a real Redis server, through the application."""

import time
import pytest
from webtest import TestApp

from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis import (
    login_records as lr,
    stored as stored_format,
)
from pyramid_session_suite.user_index.store import user_tag

from .test_user_index import _counted
from .usersapp import FIREFOX, IPHONE, add_plain_views, make_config

HOME = '198.51.100.7'
#: what a request that leaves the session as it was costs: its read
READ_ONLY = [['GETEX']]


def user_index_app(redis_url, round_trips=None, **settings):
    """The users app, with ``session_suite.user_index.<name>`` settings
    and views that log in and out through the security policy alone;
    ``round_trips`` counts what its requests send to Redis."""
    config = make_config(
        redis_url,
        **{f'session_suite.user_index.{k}': v for k, v in settings.items()},
    )
    add_plain_views(config)
    if round_trips is not None:
        _counted(config, round_trips, redis_url)
    app = config.make_wsgi_app()
    return app, app.registry.getUtility(IUserIndex)


class Visitor:
    """A browser of the app: each request from ``ip`` with ``ua`` unless
    told otherwise; what Redis holds of its session, read directly."""

    def __init__(self, app, tracker, client, ua=FIREFOX, ip=HOME):
        self.app = TestApp(app)
        self.tracker = tracker
        self.client = client
        self.ua = ua
        self.ip = ip

    def get(self, path='/whoami', *, ua=None, ip=None, **kw):
        environ = {'REMOTE_ADDR': ip or self.ip}
        ua = self.ua if ua is None else ua
        if ua:
            environ['HTTP_USER_AGENT'] = ua
        return self.app.get(path, extra_environ=environ, **kw)

    @property
    def key(self):
        cookie = self.app.cookies['main']
        session_id = self.tracker.factory.session_id_from_cookie(cookie)
        return lr.redis_key(session_id)

    @property
    def value(self):
        """The session, as Redis stores it."""
        return self.client.get(self.key)

    @property
    def records(self):
        """The session's records, by name (its own records one by one,
        those its login record holds included)."""
        records = stored_format.unpack(self.value)[1]
        return {
            name: value
            for name, value in records.items()
            if name[:1] != b'\xff'
        } | lr.own_records(records)

    def get_writing_nothing(self, round_trips, path='/whoami', **kw):
        """``get()``, checked to read its session alone (one ``GETEX``)
        and to leave it byte for byte as it was."""
        stored = self.value
        round_trips.reset()
        res = self.get(path, **kw)
        assert round_trips.trips == READ_ONLY
        assert self.value == stored
        return res

    def rewrite(self, name, value, *, separately=False):
        """Store the own record ``name`` as ``value`` (``None``: remove
        it), the rest as it is; with ``separately``, each own record on
        its own (as earlier releases stored a login)."""
        created, records = stored_format.unpack(self.value)
        own = lr.own_records(records)
        if value is None:
            del own[name]
        else:
            own[name] = value
        data = [
            (key, value)
            for key, value in records.items()
            if key[:1] != b'\xff' or key == stored_format.TIMEOUT_NAME
        ]
        data += own.items() if separately else lr.stored_own(own)
        packed = stored_format.pack(created, data)
        self.client.set(self.key, packed, keepttl=True)


def now_ms():
    return int(time.time() * 1000)


def own_records(records):
    return {k: v for k, v in records.items() if k[:1] == b'\xff'}


# --- 1. the steady state ----------------------------------------------------


@pytest.mark.parametrize(
    'store_ip, recorded',
    [('full', b'198.51.100.7'), ('truncated', b'198.51.100.0'), ('none', b'')],
)
def test_the_same_browser_from_the_same_address_writes_nothing(
    redis_url, redis_client, round_trips, store_ip, recorded
):
    app, tracker = user_index_app(redis_url, round_trips, store_ip=store_ip)
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    assert firefox.records[lr.IP] == recorded
    assert firefox.records[lr.USER_AGENT] == FIREFOX.encode()
    for _ in range(5):
        assert firefox.get_writing_nothing(round_trips).json['user'] == 'alice'
    # a change of the session's data is written, its records are not
    stored = firefox.value
    records = own_records(firefox.records)
    round_trips.reset()
    assert firefox.get('/whoami?write=1').json['n'] == 1
    assert round_trips.trips == [['GETEX'], ['EVALSHA']]
    assert firefox.value != stored
    assert own_records(firefox.records) == records
    [entry] = tracker.index.list('alice')
    assert entry['last_seen'] == int(records[lr.ACTIVE]) / 1000
    assert entry['ip'] == (recorded.decode() or None)


@pytest.mark.parametrize(
    'address', ['::ffff:198.51.100.7', '198.51.100.7:50123']
)
def test_the_same_address_written_another_way_writes_nothing(
    redis_url, redis_client, round_trips, address
):
    app, tracker = user_index_app(redis_url, round_trips)
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    firefox.get_writing_nothing(round_trips, ip=address)


def test_a_browser_without_a_user_agent_writes_nothing(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips)
    anonymous = Visitor(app, tracker, redis_client, ua='')
    anonymous.get('/login?user=alice')
    assert anonymous.records[lr.USER_AGENT] == b''
    assert anonymous.get_writing_nothing(round_trips).json['user'] == 'alice'
    # a browser that starts to send one is recorded
    anonymous.get(ua=FIREFOX)
    assert anonymous.records[lr.USER_AGENT] == FIREFOX.encode()
    [entry] = tracker.index.list('alice')
    assert entry['label'] == 'Firefox on Linux'


# --- 2. a new address -------------------------------------------------------


def test_a_new_address_is_recorded_on_the_next_request(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips)
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    active = int(firefox.records[lr.ACTIVE])
    time.sleep(0.005)  # the activity is recorded in milliseconds
    round_trips.reset()
    firefox.get(ip='203.0.113.5')
    assert round_trips.trips == [['GETEX'], ['EVAL', 'ZADD', 'PEXPIRE']]
    records = firefox.records
    assert records[lr.IP] == b'203.0.113.5'
    assert records[lr.USER_AGENT] == FIREFOX.encode()
    assert int(records[lr.ACTIVE]) > active
    [entry] = tracker.index.list('alice')
    assert entry['ip'] == '203.0.113.5'
    # from there on, that address is the steady state
    firefox.get_writing_nothing(round_trips, ip='203.0.113.5')
    # and coming back is a change again
    firefox.get(ip=HOME)
    assert firefox.records[lr.IP] == HOME.encode()
    listing = firefox.get('/mine').json['sessions']
    assert [e['ip'] for e in listing] == [HOME]


def test_behind_a_trusted_proxy_the_forwarded_address_is_compared(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips, trusted_proxies='1')
    firefox = Visitor(app, tracker, redis_client, ip='10.0.0.2')
    forwarded = {'X-Forwarded-For': HOME}
    firefox.get('/login?user=alice', headers=forwarded)
    assert firefox.records[lr.IP] == HOME.encode()
    # another proxy, the same client: nothing to write
    firefox.get_writing_nothing(round_trips, ip='10.0.0.3', headers=forwarded)
    # the same proxy, another client: recorded on that request
    firefox.get(headers={'X-Forwarded-For': '203.0.113.5'})
    assert firefox.records[lr.IP] == b'203.0.113.5'


def test_a_truncated_address_changes_only_with_its_network(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips, store_ip='truncated')
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    assert firefox.records[lr.IP] == b'198.51.100.0'
    # another address of the same /24
    firefox.get_writing_nothing(round_trips, ip='198.51.100.200')
    # an address of another network
    round_trips.reset()
    firefox.get(ip='198.51.101.7')
    assert round_trips.trips == [['GETEX'], ['EVAL', 'ZADD', 'PEXPIRE']]
    assert firefox.records[lr.IP] == b'198.51.101.0'
    [entry] = tracker.index.list('alice')
    assert entry['ip'] == '198.51.101.0'
    # IPv6: the /48
    firefox.get(ip='2001:db8:1:2::7')
    assert firefox.records[lr.IP] == b'2001:db8:1::'
    firefox.get_writing_nothing(round_trips, ip='2001:db8:1:ffff::1')


def test_no_address_is_stored_nor_written_with_store_ip_none(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips, store_ip='none')
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    assert firefox.records[lr.IP] == b''
    for address in ('203.0.113.5', '2001:db8::1', HOME):
        assert (
            firefox.get_writing_nothing(round_trips, ip=address).json['user']
            == 'alice'
        )
    [entry] = tracker.index.list('alice')
    assert entry['ip'] is None


@pytest.mark.parametrize(
    'store_ip, recorded', [('none', b''), ('truncated', b'198.51.100.0')]
)
def test_a_new_store_ip_setting_applies_on_the_next_request(
    redis_url, redis_client, round_trips, store_ip, recorded
):
    """A session logged in while full addresses were stored keeps only
    what the new setting allows, as soon as it is used again."""
    before, tracker = user_index_app(redis_url)
    firefox = Visitor(before, tracker, redis_client)
    firefox.get('/login?user=alice')
    assert firefox.records[lr.IP] == HOME.encode()
    after, tracker = user_index_app(redis_url, round_trips, store_ip=store_ip)
    restarted = Visitor(after, tracker, redis_client)
    restarted.app.set_cookie('main', firefox.app.cookies['main'])
    assert restarted.get().json['user'] == 'alice'
    assert restarted.records[lr.IP] == recorded
    [entry] = tracker.index.list('alice')
    assert entry['ip'] == (recorded.decode() or None)
    restarted.get_writing_nothing(round_trips)


def test_an_unreadable_address_is_recorded_as_none(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips)
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    firefox.get(ip='unknown')
    assert firefox.records[lr.IP] == b''
    [entry] = tracker.index.list('alice')
    assert entry['ip'] is None
    firefox.get_writing_nothing(round_trips, ip='not an address')
    firefox.get(ip='203.0.113.5')
    assert firefox.records[lr.IP] == b'203.0.113.5'


# --- 3. a new browser -------------------------------------------------------


def test_a_new_user_agent_is_recorded_on_the_next_request(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips)
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    round_trips.reset()
    firefox.get(ua=IPHONE)
    assert round_trips.trips == [['GETEX'], ['EVAL', 'ZADD', 'PEXPIRE']]
    assert firefox.records[lr.USER_AGENT] == IPHONE.encode()
    assert firefox.records[lr.IP] == HOME.encode()
    [entry] = tracker.index.list('alice')
    assert (entry['label'], entry['mobile']) == ('Safari on iPhone', True)
    firefox.get_writing_nothing(round_trips, ua=IPHONE)


@pytest.mark.parametrize('filler', ['x', '\xe9'], ids=['ascii', 'latin-1'])
def test_a_long_user_agent_is_compared_on_its_first_512_characters(
    redis_url, redis_client, round_trips, filler
):
    app, tracker = user_index_app(redis_url, round_trips)
    long_ua = FIREFOX + ' ' + filler * 600
    firefox = Visitor(app, tracker, redis_client, ua=long_ua)
    firefox.get('/login?user=alice')
    kept = long_ua[:512].encode('utf-8')
    assert firefox.records[lr.USER_AGENT] == kept
    # the same long User-Agent, and one that differs after 512 characters
    for ua in (long_ua, long_ua[:512] + 'something else'):
        assert (
            firefox.get_writing_nothing(round_trips, ua=ua).json['user']
            == 'alice'
        )
    # one that differs within them is recorded
    changed = 'Y' + long_ua[1:]
    firefox.get(ua=changed)
    assert firefox.records[lr.USER_AGENT] == changed[:512].encode('utf-8')
    [entry] = tracker.index.list('alice')
    assert entry['ua'] == changed[:512]


@pytest.mark.parametrize('length', [70, 700])
def test_a_login_writes_its_records_once_whatever_the_user_agent(
    redis_url, redis_client, round_trips, length
):
    app, tracker = user_index_app(redis_url, round_trips)
    ua = (FIREFOX + ' ' + 'x' * length)[:length]
    firefox = Visitor(app, tracker, redis_client, ua=ua)
    firefox.get('/login?user=alice')
    assert round_trips.trips == [['EVALSHA'], ['EVALSHA']]
    records = firefox.records
    assert records[lr.USER_AGENT] == ua[:512].encode()
    assert records[lr.ACTIVE] == records[lr.LOGIN]


# --- 4. the activity --------------------------------------------------------


def test_the_activity_is_recorded_once_per_touch_interval(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips, touch_interval='1')
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    active = int(firefox.records[lr.ACTIVE])
    firefox.get_writing_nothing(round_trips)
    time.sleep(1.05)
    before = now_ms()
    round_trips.reset()
    firefox.get()
    assert round_trips.trips == [['GETEX'], ['EVAL', 'ZADD', 'PEXPIRE']]
    touched = int(firefox.records[lr.ACTIVE])
    assert touched >= before >= active + 1000
    [entry] = tracker.index.list('alice')
    assert entry['last_seen'] == touched / 1000
    # and not again within the interval
    firefox.get_writing_nothing(round_trips)


@pytest.mark.parametrize(
    'age, touched', [(61_000, True), (58_000, False)], ids=['old', 'recent']
)
def test_the_activity_is_recorded_when_it_is_older_than_the_interval(
    redis_url, redis_client, round_trips, age, touched
):
    app, tracker = user_index_app(redis_url, round_trips)  # 60 s
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    recorded = b'%d' % (now_ms() - age)
    # (as an earlier release stored it: each fact a record of its own)
    firefox.rewrite(lr.ACTIVE, recorded, separately=True)
    stored = firefox.value
    before = now_ms()
    round_trips.reset()
    firefox.get()
    if touched:
        assert round_trips.trips == [['GETEX'], ['EVAL', 'ZADD', 'PEXPIRE']]
        assert before <= int(firefox.records[lr.ACTIVE]) <= now_ms()
    else:
        assert round_trips.trips == READ_ONLY
        assert firefox.value == stored
        assert firefox.records[lr.ACTIVE] == recorded


def test_a_touch_moves_the_deadline_in_the_users_index(
    redis_url, redis_client
):
    app, tracker = user_index_app(redis_url)
    firefox = Visitor(app, tracker, redis_client)
    iphone = Visitor(app, tracker, redis_client, IPHONE, '198.51.100.9')
    firefox.get('/login?user=alice')
    iphone.get('/login?user=alice')  # two sessions: an index key
    z = tracker.index.index_key('alice')
    slot = firefox.key.rpartition(':')[2]
    deadline = redis_client.zscore(z, slot)
    firefox.rewrite(lr.ACTIVE, b'%d' % (now_ms() - 120_000))
    time.sleep(0.01)
    firefox.get()
    assert redis_client.zscore(z, slot) >= deadline + 10
    listing = tracker.index.list('alice')
    assert [e['label'] for e in listing] == [
        'Firefox on Linux',
        'Safari on iPhone',
    ]


# --- 5. a damaged activity record -------------------------------------------


@pytest.mark.parametrize(
    'active',
    [None, b'', b'soon', b'1.7e12', b'\xff\xfe'],
    ids=['missing', 'empty', 'word', 'float', 'bytes'],
)
@pytest.mark.parametrize(
    'separately', [False, True], ids=['login record', 'one by one']
)
def test_a_session_whose_activity_is_unreadable_is_touched(
    redis_url, redis_client, round_trips, active, separately
):
    app, tracker = user_index_app(redis_url, round_trips)
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    firefox.get('/whoami?write=1')
    firefox.rewrite(lr.ACTIVE, active, separately=separately)
    before = now_ms()
    round_trips.reset()
    res = firefox.get()
    assert res.json == {'user': 'alice', 'n': 1, 'ended': None}
    assert round_trips.trips == [['GETEX'], ['EVAL', 'ZADD', 'PEXPIRE']]
    repaired = int(firefox.records[lr.ACTIVE])
    assert before <= repaired <= now_ms()
    [entry] = tracker.index.list('alice')
    assert entry['last_seen'] == repaired / 1000
    # repaired: the next request is the steady state
    firefox.get_writing_nothing(round_trips)


# --- 6. who is logged in now ------------------------------------------------


# (user 'None' has the tag of no user, None: it is logged out all the same)
@pytest.mark.parametrize('user', ['alice', 'None'])
def test_forget_alone_drops_the_login_on_that_request(
    redis_url, redis_client, round_trips, user
):
    app, tracker = user_index_app(redis_url, round_trips)
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login', params={'user': user})
    firefox.get('/whoami?write=1')
    key = firefox.key
    assert '{' + user_tag(user) + '}' in key
    assert len(tracker.index.list(user)) == 1
    firefox.get('/plain-logout')
    # the session stays, with its data, and without the records of a login
    assert firefox.key == key
    records = firefox.records
    assert [name for name in lr.INDEX_RECORDS if name in records] == []
    assert b'auth.userid' not in records
    assert records[b'n'] == b'1'
    assert tracker.index.list(user) == []
    # an anonymous session from there on: nothing more to write
    assert firefox.get_writing_nothing(round_trips).json == {
        'user': None,
        'n': 1,
        'ended': None,
    }


def test_another_user_in_the_session_takes_the_login_on_that_request(
    redis_url, redis_client, round_trips
):
    app, tracker = user_index_app(redis_url, round_trips)
    firefox = Visitor(app, tracker, redis_client)
    firefox.get('/login?user=alice')
    alice_key = firefox.key
    # no logout: the security policy names another user
    firefox.get('/plain-login?user=bob')
    assert tracker.index.list('alice') == []
    [entry] = tracker.index.list('bob')
    assert (entry['label'], entry['ip']) == ('Firefox on Linux', HOME)
    assert '{' + user_tag('bob') + '}' in firefox.key
    assert redis_client.get(alice_key) is None
    assert firefox.records[lr.USER_AGENT] == FIREFOX.encode()
    # bob's session is then in the steady state
    assert firefox.get_writing_nothing(round_trips).json['user'] == 'bob'
    mine = firefox.get('/mine').json
    assert [e['handle'] for e in mine['sessions']] == [mine['current']]
