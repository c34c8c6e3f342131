"""Every feature on a real 3-primary Redis Cluster and on a Sentinel-managed
primary, configured from the settings, and a primary failover during
traffic."""

import threading
import time
import pytest
import redis
from redis.crc import key_slot
from redis.sentinel import Sentinel
from webtest import TestApp

from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis.clients import LazyRedisCluster
from pyramid_session_suite.redis.login_records import redis_key
from pyramid_session_suite.redis.stored import is_ended
from pyramid_session_suite.testing import RedisSentinelServers
from pyramid_session_suite.user_index.store import user_tag

from .conftest import ended_reason
from .crossdomainapp import HUB, SITE, by_host, make_site
from .test_policy import policy_app
from .usersapp import make_config


@pytest.fixture(scope='module')
def sentinel():
    with RedisSentinelServers(replicas=1, sentinels=3) as servers:
        yield servers


class Topology:
    """Connection settings for the apps, and a client for the asserts."""

    def __init__(self, name, servers):
        self.name = name
        self.servers = servers
        if name == 'cluster':
            self.settings = {
                'session_suite.redis_cluster_nodes': ' '.join(servers.nodes)
            }
            self.client = redis.RedisCluster.from_url(servers.url)
        else:
            self.settings = {
                'session_suite.redis_sentinels': ' '.join(servers.sentinels),
                'session_suite.redis_sentinel_master': servers.master_name,
            }
            addresses = [
                (host, int(port))
                for host, port in (s.split(':') for s in servers.sentinels)
            ]
            self.client = Sentinel(addresses).master_for(servers.master_name)

    def flush(self):
        if self.name == 'cluster':
            self.client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
        else:
            self.client.flushall()

    def keys(self):
        return sorted(k.decode() for k in self.client.scan_iter('*'))

    def live_sessions(self, prefix):
        """The keys under ``prefix`` that hold a live session (not an ended
        one, nor a lock), from every primary."""
        return [
            key
            for key in self.keys()
            if key.startswith(prefix)
            and not key.endswith(':lock')
            and not is_ended(self.client.get(key) or b'\0')
        ]

    def close(self):
        self.client.close()


@pytest.fixture(params=['cluster', 'sentinel'])
def topology(request):
    servers = request.getfixturevalue(request.param)
    topology = Topology(request.param, servers)
    topology.flush()
    yield topology
    topology.close()


def browser(app):
    return TestApp(app, extra_environ={'REMOTE_ADDR': '198.51.100.7'})


def users_app(connection, **settings):
    config = make_config(connection, **settings)
    app = config.make_wsgi_app()
    return app, config.registry.getUtility(IUserIndex)


def test_the_client_is_the_topologys(topology):
    app, tracker = users_app(topology.settings)
    client = tracker.factory.redis
    if topology.name == 'cluster':
        assert isinstance(client, LazyRedisCluster)
        assert isinstance(client.client, redis.RedisCluster)
    else:
        pool = client.connection_pool
        assert pool.service_name == topology.servers.master_name


def test_sessions_are_created_read_rotated_and_ended(topology):
    app, tracker = users_app(topology.settings)
    alice = browser(app)
    assert alice.get('/whoami?write=1').json['n'] == 1
    assert alice.get('/whoami?write=1').json['n'] == 2
    anonymous_id = alice.cookies['main']
    alice.get('/login?user=alice')
    assert alice.cookies['main'] != anonymous_id
    res = alice.get('/whoami?write=1').json
    assert (res['user'], res['n']) == ('alice', 3)
    session_id = tracker.factory.session_id_from_cookie(alice.cookies['main'])
    [key] = [k for k in topology.keys() if ':main:' in k]
    assert key == redis_key(session_id) != session_id
    assert key.startswith(f'session_suite:main:{{{user_tag("alice")}}}:')
    alice.get('/logout')
    assert alice.get('/whoami').json == {
        'user': None,
        'n': None,
        'ended': None,
    }
    # ended in place: the same key says why, for a while
    assert [k for k in topology.keys() if ':main:' in k] == [key]
    assert ended_reason(topology.client, session_id) == 'logout'
    assert 0 < topology.client.ttl(key)


def test_a_users_keys_share_one_hash_slot(topology):
    app, tracker = users_app(topology.settings)
    for _ in range(3):
        browser(app).get('/login?user=alice')
    browser(app).get('/login?user=bob')
    tag = user_tag('alice')
    alices = [k for k in topology.keys() if tag in k]
    # three sessions and the index's sorted set
    sessions = topology.live_sessions(f'session_suite:main:{{{tag}}}:')
    assert len(sessions) == 3
    assert tracker.index.index_key('alice') in alices
    assert len(alices) == 4
    assert len({key_slot(k.encode()) for k in alices}) == 1
    # one login, one key
    [bobs] = [k for k in topology.keys() if user_tag('bob') in k]
    assert key_slot(bobs.encode()) != key_slot(alices[0].encode())


def test_users_list_and_revoke_their_sessions(topology):
    app, tracker = users_app(topology.settings)
    laptop, phone = browser(app), browser(app)
    laptop.get('/login?user=alice')
    phone.get('/login?user=alice')
    assert len(laptop.get('/mine').json['sessions']) == 2
    assert laptop.get('/mine?do=others').json == {'count': 1}
    assert phone.get('/whoami').json['ended'] == 'revoked'
    assert len(laptop.get('/mine').json['sessions']) == 1
    assert list(tracker.index.users()) == ['alice']


def test_the_policy_holds_on_the_topology(topology):
    app, tracker = policy_app(topology.settings)
    first, second = browser(app), browser(app)
    first.get('/login?user=alice')
    res = second.get('/login?user=alice', status=409)
    assert int(res.headers['Retry-After']) > 0
    app, tracker = policy_app(topology.settings, lock_seconds='0')
    third = browser(app)
    third.get('/login?user=alice')
    assert first.get('/whoami', status=401).headers['X-Session-Ended'] == (
        'displaced'
    )
    assert third.get('/whoami').json['user'] == 'alice'


def test_cross_domain_tokens_are_single_use(topology):
    hub = make_site(topology.settings)
    site = make_site(topology.settings)
    app = by_host({'www.site-a.test': hub, 'www.site-b.test': site})
    alice = TestApp(app, extra_environ={'HTTP_ACCEPT': 'text/html'})
    alice.get(HUB + '/login?user=alice')
    export = alice.get(SITE + '/page').follow()
    token_url = export.location
    res = alice.get(token_url).follow()
    assert '<p id="user">alice</p>' in res.text
    claims = [k for k in topology.keys() if ':xd:' in k]
    assert len(claims) == 1
    thief = TestApp(app, extra_environ={'HTTP_ACCEPT': 'text/html'})
    thief.get(token_url, status=400)


def test_an_unreachable_store_is_a_503_and_the_app_still_starts():
    for settings in (
        {'session_suite.redis_cluster_nodes': '127.0.0.1:1'},
        {
            'session_suite.redis_sentinels': '127.0.0.1:1',
            'session_suite.redis_sentinel_master': 'nobody',
        },
    ):
        settings['session_suite.redis_connect_timeout'] = '0.2'
        app, tracker = users_app(settings)
        res = browser(app).get('/whoami?write=1', status=503)
        assert 'Traceback' not in res.text
        assert 'Set-Cookie' not in res.headers


# --- failover during traffic (last: they change the primaries) ------------


def drive(app, browsers, stop):
    """Each browser increments its counter until ``stop`` is set; return,
    per browser, the last value acknowledged with a 200, the value of the
    last attempt, and the statuses seen."""
    results = [None] * len(browsers)

    def run(i):
        acked, attempted, statuses = 0, 0, []
        while not stop.is_set():
            attempted = acked + 1
            res = browsers[i].get('/whoami?write=1', expect_errors=True)
            statuses.append(res.status_int)
            if res.status_int == 200:
                acked = res.json['n']
                assert acked in (attempted, attempted + 1)
            else:
                # a write that failed may still have been applied
                time.sleep(0.05)
        results[i] = acked, attempted, statuses

    threads = [
        threading.Thread(target=run, args=(i,)) for i in range(len(browsers))
    ]
    for thread in threads:
        thread.start()
    return threads, results


@pytest.mark.parametrize(
    ('topology', 'how'),
    [
        ('cluster', 'coordinated'),
        ('cluster', 'primary stopped'),
        ('sentinel', 'primary stopped'),
    ],
    indirect=['topology'],
)
def test_a_primary_failover_during_traffic_loses_no_session(topology, how):
    app, tracker = users_app(topology.settings)
    browsers = [browser(app) for _ in range(12)]
    for i, b in enumerate(browsers):
        b.get(f'/login?user=user{i}')
    stop = threading.Event()
    threads, results = drive(app, browsers, stop)
    time.sleep(0.5)
    started = time.monotonic()
    if topology.name == 'cluster':
        servers = topology.servers
        primary = servers.primary_of(
            session_key(topology, 'session_suite:main:', user_tag('user0'))
        )
        if how == 'coordinated':
            servers.fail_over(primary)
        else:
            servers.stop_primary(primary)
        servers.wait_healthy()
    else:
        topology.servers.fail_over()
    failover = time.monotonic() - started
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(30)
    statuses = [s for _, _, seen in results for s in seen]
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) > len(browsers)
    for b, (acked, attempted, seen) in zip(browsers, results, strict=True):
        assert seen[-1] == 200  # recovered by itself
        res = b.get('/whoami').json
        assert res['user'] is not None  # the session survived
        assert res['n'] in (acked, attempted)  # no acknowledged write lost
    print(
        f'\n{topology.name} failover ({how}): {failover:.2f} s, '
        f'{len(statuses)} requests, {statuses.count(503)} × 503'
    )


def counted_app(topology, round_trips):
    """The users app on a client of the topology whose round trips are
    counted (from Python, not from the settings)."""
    from pyramid.config import Configurator
    from redis.sentinel import SentinelManagedConnection

    from pyramid_session_suite import RedisSessionFactory, redis_client

    from .usersapp import SECRET, SessionSecurityPolicy, add_views

    servers = topology.servers
    if topology.name == 'cluster':
        client = LazyRedisCluster(
            url=servers.url, connection_class=round_trips.connection_class()
        )
    else:
        client = redis_client(
            sentinels=servers.sentinels,
            sentinel_master=servers.master_name,
            connection_class=round_trips.connection_class(
                SentinelManagedConnection
            ),
        )
    config = Configurator(
        settings={
            'session_suite.request_session': 'main',
            'session_suite.user_index.secret': SECRET + '-index',
        }
    )
    config.set_security_policy(SessionSecurityPolicy())
    config.include('pyramid_session_suite')
    config.register_session_factory(
        'main',
        RedisSessionFactory(SECRET, redis_client=client, cookie_name='main'),
    )
    config.include('pyramid_session_suite.user_index')
    add_views(config)
    return config.make_wsgi_app()


def test_round_trips_per_request(topology, round_trips):
    app = counted_app(topology, round_trips)
    for i in range(12):  # connect to every node, load the scripts
        warm = browser(app)
        warm.get('/whoami?write=1')
        warm.get(f'/login?user=warm{i}')
        warm.get('/logout')
    trips = {}
    for name, path in [
        ('new', '/whoami?write=1'),
        ('read', '/whoami'),
        ('write', '/whoami?write=1'),
        ('login', '/login?user=alice'),
        ('user read', '/whoami'),
        ('user write', '/whoami?write=1'),
    ]:
        if name == 'new':
            alice = browser(app)
        if name == 'login':
            anonymous = session_key(topology)
        round_trips.reset()
        alice.get(path)
        trips[name] = round_trips.trips
    counts = {name: len(t) for name, t in trips.items()}
    print(f'\n{topology.name} round trips: {counts}')
    # the login deletes the anonymous id, on its own node in a cluster
    expected_login = 3
    if topology.name == 'cluster':
        servers = topology.servers
        user = session_key(topology, tag=user_tag('alice'))
        if servers.primary_of(anonymous) is not servers.primary_of(user):
            expected_login = 4
    assert counts == {
        'new': 1,
        'read': 1,
        'write': 2,
        'login': expected_login,
        'user read': 1,
        'user write': 2,
    }


def session_key(topology, prefix='session:', tag=None):
    """The key of the one live session under ``prefix``: the user's whose
    hash tag is ``tag``, else an anonymous one."""
    [key] = [
        k
        for k in topology.live_sessions(prefix)
        if (tag in k if tag else '{' not in k)
    ]
    return key
