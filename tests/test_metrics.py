"""Prometheus metrics: a scripted scenario against real Redis servers (logins,
a refused login, a logout, a revocation, cross-domain tokens, a store
stopped), then a scrape, value by value."""

import json
import pathlib
import re
import sys
import time
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
import pytest
from webtest import TestApp

from pyramid_session_suite import credentials_changed, metrics
from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY
from pyramid_session_suite.events import (
    SessionRegistered,
    SessionReplaced,
    TokenAccepted,
)
from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.testing import RedisServer

from . import crossdomainapp
from .conftest import SECRET
from .crossdomainapp import HUB, SITE
from .usersapp import make_config

POLICY = 'pyramid_session_suite.policy'
METRICS = 'pyramid_session_suite.metrics'
ROOT = pathlib.Path(__file__).resolve().parent.parent

#: the registry of the tests that do not make their own (see the module's
#: settings): named by its dotted name
NAMED = CollectorRegistry()


def scrape(registry):
    """``{(name, labels): value}`` of every sample of ``registry`` but the
    creation times and histogram buckets; the buckets apart."""
    samples, buckets = {}, {}
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith('_created'):
                continue
            labels = tuple(sorted(sample.labels.items()))
            if sample.name.endswith('_bucket'):
                buckets[sample.name, labels] = sample.value
            else:
                samples[sample.name, labels] = sample.value
    return samples, buckets


def counters(samples, name):
    """``{label values: value}`` of the counter ``name``."""
    return {
        tuple(value for _, value in labels): value
        for (sample, labels), value in samples.items()
        if sample == name + '_total'
    }


def logins_app(redis_url, registry, **settings):
    """The logins application of the policy tests (one session per user,
    locked for 5 minutes), with metrics in ``registry``."""
    settings['session_suite.metrics.registry'] = registry
    config = make_config(redis_url, include=POLICY, **settings)
    config.include(METRICS)
    return config.make_wsgi_app()


def site(redis_url, registry, **extra):
    """A site of the cross-domain group of the tests, with metrics
    (``extra``: settings of the cross-domain sharing)."""
    settings = crossdomainapp.site_settings(redis_url, **extra)
    settings['session_suite.metrics.registry'] = registry
    config = Configurator(settings=settings)
    config.include('pyramid_session_suite.crossdomain')
    config.include(METRICS)
    config.add_route('login', '/login')
    config.add_view(crossdomainapp.login, route_name='login')
    config.add_route('page', '/page')
    config.add_view(crossdomainapp.page, route_name='page')
    return config.make_wsgi_app()


def private_app(server, registry):
    """Namespace ``private`` on ``server`` (short timeouts), with
    metrics."""
    prefix = 'session_suite.namespace.private.'
    config = Configurator(
        settings={
            'session_suite.namespaces': 'private',
            'session_suite.request_session': 'private',
            prefix + 'backend': 'redis',
            prefix + 'secret': SECRET,
            prefix + 'redis_url': server.url,
            prefix + 'redis_socket_timeout': '0.5',
            prefix + 'redis_connect_timeout': '0.3',
            'session_suite.metrics.registry': registry,
        }
    )
    config.include('pyramid_session_suite')
    config.include(METRICS)

    def write(request):
        request.session['n'] = request.session.get('n', 0) + 1
        return {'n': request.session['n']}

    config.add_route('write', '/write')
    config.add_view(write, route_name='write', renderer='json')
    return config.make_wsgi_app()


def browser(app, host=None):
    environ = {'REMOTE_ADDR': '198.51.100.7', 'HTTP_ACCEPT': 'text/html'}
    if host:
        environ['HTTP_HOST'] = host
    return TestApp(app, extra_environ=environ)


def test_a_scripted_scenario_scraped_value_by_value(redis_url):
    registry = CollectorRegistry()
    # logins: alice and bob admitted, alice refused on a second browser
    app = logins_app(redis_url, registry)
    alice, bob, carol = browser(app), browser(app), browser(app)
    alice.get('/login?user=alice')
    bob.get('/login?user=bob')
    browser(app).get('/login?user=alice', status=409)
    assert alice.get('/whoami').json['user'] == 'alice'
    # bob logs out; carol logs in, then ends all her sessions
    bob.get('/logout')
    carol.get('/login?user=carol')
    assert carol.get('/mine?do=all').json['count'] == 1
    carol.get('/whoami')  # her cookie is gone: no load

    # a cross-domain token, redeemed, then replayed
    hub, other = site(redis_url, registry), site(redis_url, registry)
    at_hub = browser(hub, 'www.site-a.test')
    at_hub.get(HUB + '/login?user=dave')
    factory = hub.registry[CROSSDOMAIN_KEY].factory
    sid = factory.session_id_from_cookie(at_hub.cookies['main'])
    state = 's' * 32
    token = hub.registry[CROSSDOMAIN_KEY].codec.mint(
        sid, HUB, SITE, state=state
    )
    tab = browser(other, 'www.site-b.test')
    url = SITE + '/_session_suite/xd/import?next=/page&t=' + token
    cookie = {'Cookie': 'session_suite_xd_state=' + state}
    assert tab.get(url, headers=cookie).status_int == 303
    res = tab.get(url, headers=cookie, status=400)
    assert res.headers['X-Session-Suite-Reason'] == 'replayed'

    # a store stopped: erin's next write is a 503
    with RedisServer(url='') as server:
        stopped = private_app(server, registry)
        erin = browser(stopped)
        assert erin.get('/write').json == {'n': 1}
        assert erin.get('/write').json == {'n': 2}
        server.stop()
        erin.get('/write', status=503)

    samples, buckets = scrape(registry)
    assert counters(samples, 'session_suite_logins') == {
        ('admitted',): 3,
        ('refused',): 1,
    }
    assert counters(samples, 'session_suite_sessions_created') == {
        # alice, bob, carol; dave at the hub (the site adopted his)
        ('main',): 4,
        ('private',): 1,  # erin
    }
    assert counters(samples, 'session_suite_sessions_ended') == {
        ('main', 'logout'): 1,
        ('main', 'revoked'): 1,
    }
    assert counters(samples, 'session_suite_crossdomain_tokens') == {
        ('adopted', 'accepted'): 1,
        ('replayed', 'rejected'): 1,
    }
    assert counters(samples, 'session_suite_store_errors') == {
        ('ConnectionError', 'private'): 1,
    }
    assert counters(samples, 'session_suite_unavailable') == {
        ('private',): 1,
    }
    # every load found its session (or failed: erin's third write)
    assert counters(samples, 'session_suite_load_misses') == {}
    # saves: the three admitted logins and dave's first write (a refused
    # login, a logout and a revocation write nothing); erin's two writes;
    # the user index's scripts: four logins (one refused), bob's logout
    # and carol's revocation; the token claimed twice (once replayed)
    assert histogram(samples, buckets, 'session_suite_store_seconds') == {
        ('main', 'load'): 3,
        ('main', 'save'): 4,
        ('main', 'login'): 4,
        ('main', 'revoke'): 2,
        ('main', 'claim'): 2,
        ('private', 'load'): 2,
        ('private', 'save'): 2,
    }
    # the sessions loaded: alice's whoami, bob's logout, carol's do=all;
    # erin's second write (a logged-in session is ~170 bytes)
    sizes = histogram(samples, buckets, 'session_suite_payload_bytes')
    assert sizes == {('main',): 3, ('private',): 1}
    total = samples[
        'session_suite_payload_bytes_sum', (('namespace', 'main'),)
    ]
    assert 3 * 100 < total < 3 * 256
    assert bucket(buckets, 'session_suite_payload_bytes', 'main', 64) == 0
    assert bucket(buckets, 'session_suite_payload_bytes', 'main', 256) == 3


def histogram(samples, buckets, name):
    """``{label values: count}`` of the histogram ``name``, checked: its
    buckets grow to its count, its sum is positive."""
    counts = {}
    for (sample, labels), count in samples.items():
        if sample != name + '_count':
            continue
        assert samples[name + '_sum', labels] > 0
        cumulative = [
            value
            for (bucket_name, bucket_labels), value in buckets.items()
            if bucket_name == name + '_bucket'
            and [kv for kv in bucket_labels if kv[0] != 'le'] == list(labels)
        ]
        assert cumulative == sorted(cumulative)
        assert cumulative[-1] == count  # le="+Inf"
        counts[tuple(value for _, value in labels)] = count
    return counts


def bucket(buckets, name, namespace, le):
    labels = (('le', str(float(le))), ('namespace', namespace))
    return buckets[name + '_bucket', labels]


def test_misses_a_displaced_session_and_redis_down_at_login(
    redis_url, redis_client
):
    registry = CollectorRegistry()
    unlocked = {'session_suite.policy.lock_seconds': '0'}
    app = logins_app(redis_url, registry, **unlocked)
    first, second = browser(app), browser(app)
    first.get('/login?user=alice')
    second.get('/login?user=alice')  # the newest login wins
    first.get('/whoami', status=401)  # told, once: a load of an ended one
    bob = browser(app)
    bob.get('/login?user=bob')
    redis_client.delete(*redis_client.keys('session_suite:main:{*'))
    bob.get('/whoami')  # as if evicted: a miss
    with RedisServer(url='') as server:
        down = logins_app(server.url, registry)
        server.stop()
        browser(down).get('/login?user=bob', status=503)
    samples, buckets = scrape(registry)
    assert counters(samples, 'session_suite_logins') == {('admitted',): 3}
    assert counters(samples, 'session_suite_load_misses') == {
        ('main', 'ended'): 1,
        ('main', 'miss'): 1,
    }
    assert counters(samples, 'session_suite_sessions_ended') == {
        ('main', 'displaced'): 1,
    }
    # the user index's scripts name their namespace too, and are timed:
    # three logins admitted, the one that failed
    timed = histogram(samples, buckets, 'session_suite_store_seconds')
    assert timed[('main', 'login')] == 4
    assert counters(samples, 'session_suite_store_errors') == {
        ('ConnectionError', 'main'): 1,
    }
    assert counters(samples, 'session_suite_unavailable') == {
        ('main',): 1,
    }


def timings(registry):
    """``{(namespace, operation): count}`` of the store's histogram."""
    samples, buckets = scrape(registry)
    return histogram(samples, buckets, 'session_suite_store_seconds')


def timed_by(registry, request):
    """The operations timed while ``request()`` runs, by label values."""
    before = timings(registry)
    request()
    after = timings(registry)
    return {
        labels: count - before.get(labels, 0)
        for labels, count in after.items()
        if count != before.get(labels, 0)
    }


def test_the_user_index_and_the_policy_are_timed_reads_are_not(redis_url):
    registry = CollectorRegistry()
    timeout = {'session_suite.policy.absolute_timeout': '100'}
    app = logins_app(redis_url, registry, **timeout)
    tracker = app.registry.getUtility(IUserIndex)
    alice = browser(app)

    def timed(path, status=200):
        return timed_by(registry, lambda: alice.get(path, status=status))

    assert timed('/login?user=alice') == {
        ('main', 'login'): 1,
        ('main', 'save'): 1,
    }
    # a read, a write: only the session's own round trips
    assert timed('/whoami') == {('main', 'load'): 1}
    assert timed('/whoami?write=1') == {
        ('main', 'load'): 1,
        ('main', 'save'): 1,
    }
    assert timed('/mine') == {('main', 'load'): 1, ('main', 'list'): 1}
    # bob logs in on alice's session: her entry is dropped from the index
    assert timed('/login?user=bob') == {
        ('main', 'load'): 1,
        ('main', 'login'): 1,
        ('main', 'forget'): 1,
        ('main', 'save'): 1,
    }
    # the policy ends bob's session when its time is up
    tracker.policy.clock = lambda: time.time() + 150
    assert timed('/whoami', status=401) == {
        ('main', 'load'): 1,
        ('main', 'revoke'): 1,
    }
    # the console's counts, outside any request
    counted = timed_by(registry, lambda: tracker.index.count('alice'))
    assert counted == {('main', 'count'): 1}
    samples, _ = scrape(registry)
    assert counters(samples, 'session_suite_logins') == {('admitted',): 2}
    assert counters(samples, 'session_suite_sessions_ended') == {
        ('main', 'expired'): 1,
    }


def test_a_failed_claim_is_timed_and_names_its_namespace(redis_url):
    registry = CollectorRegistry()
    hub = site(redis_url, registry)
    at_hub = browser(hub, 'www.site-a.test')
    at_hub.get(HUB + '/login?user=dave')
    with RedisServer(url='') as server:
        other = site(server.url, registry)
        tab = browser(other, 'www.site-b.test')
        server.stop()
        url, cookie = handed_over(hub, at_hub, tab)
        tab.get(url, headers=cookie, status=503)
    samples, buckets = scrape(registry)
    timed = histogram(samples, buckets, 'session_suite_store_seconds')
    assert timed[('main', 'claim')] == 1
    assert counters(samples, 'session_suite_store_errors') == {
        ('ConnectionError', 'main'): 1,
    }
    assert counters(samples, 'session_suite_unavailable') == {
        ('main',): 1,
    }
    assert counters(samples, 'session_suite_crossdomain_tokens') == {}


def handed_over(hub, at_hub, tab, state='s' * 32):
    """The import URL of a token for the session of ``at_hub``, and the
    ``Cookie`` header of ``tab`` with the state cookie it is bound to."""
    crossdomain = hub.registry[CROSSDOMAIN_KEY]
    sid = crossdomain.factory.session_id_from_cookie(at_hub.cookies['main'])
    token = crossdomain.codec.mint(sid, HUB, SITE, state=state)
    url = SITE + '/_session_suite/xd/import?next=/page&t=' + token
    cookies = {**tab.cookies, 'session_suite_xd_state': state}
    header = '; '.join(f'{name}={value}' for name, value in cookies.items())
    return url, {'Cookie': header}


@pytest.mark.parametrize(
    'always_replace, outcome, user',
    [('false', 'kept', 'erin'), ('true', 'replaced', 'dave')],
)
def test_a_token_accepted_by_a_site_that_has_a_session(
    redis_url, always_replace, outcome, user
):
    registry = CollectorRegistry()
    hub = site(redis_url, registry)
    other = site(redis_url, registry, always_replace=always_replace)
    seen = []
    for event in (TokenAccepted, SessionReplaced):
        other.registry.registerHandler(seen.append, (event,))
    at_hub = browser(hub, 'www.site-a.test')
    at_hub.get(HUB + '/login?user=dave')
    tab = browser(other, 'www.site-b.test')
    tab.get(SITE + '/login?user=erin', xhr=True)  # a session of its own
    url, cookie = handed_over(hub, at_hub, tab)
    assert tab.get(url, headers=cookie).status_int == 303
    assert f'<p id="user">{user}</p>' in tab.get(SITE + '/page').text
    samples, buckets = scrape(registry)
    assert counters(samples, 'session_suite_crossdomain_tokens') == {
        (outcome, 'accepted'): 1,
    }
    timed = histogram(samples, buckets, 'session_suite_store_seconds')
    assert timed[('main', 'claim')] == 1
    accepted = seen[-1]
    assert isinstance(accepted, TokenAccepted)
    assert (
        accepted.namespace,
        accepted.src,
        accepted.dst,
        accepted.flow,
        accepted.outcome,
    ) == ('main', HUB, SITE, 'redirect', outcome)
    replaced = [e.was_empty for e in seen if isinstance(e, SessionReplaced)]
    assert replaced == ([] if outcome == 'kept' else [False])


def test_credentials_changed_is_not_a_login(redis_url):
    registry = CollectorRegistry()
    config = make_config(
        redis_url, **{'session_suite.metrics.registry': registry}
    )
    config.include(METRICS)
    registered = []
    config.add_subscriber(registered.append, SessionRegistered)

    def password(request):
        return {'ended': credentials_changed(request)}

    config.add_route('password', '/password')
    config.add_view(password, route_name='password', renderer='json')
    app = config.make_wsgi_app()
    laptop, phone = browser(app), browser(app)
    laptop.get('/login?user=alice')
    phone.get('/login?user=alice')
    assert laptop.get('/password').json == {'ended': 1}
    assert laptop.get('/whoami').json['user'] == 'alice'
    assert [event.login for event in registered] == [True, True, False]
    samples, buckets = scrape(registry)
    assert counters(samples, 'session_suite_logins') == {('admitted',): 2}
    assert counters(samples, 'session_suite_sessions_ended') == {
        ('main', 'credentials'): 1,
    }
    # the laptop's new id is a new session stored
    assert counters(samples, 'session_suite_sessions_created') == {
        ('main',): 3,
    }
    # its registration is the index's third login script all the same
    timed = histogram(samples, buckets, 'session_suite_store_seconds')
    assert (timed[('main', 'login')], timed[('main', 'revoke')]) == (3, 1)


def test_labels_name_no_user_and_no_session(redis_url):
    registry = CollectorRegistry()
    app = logins_app(redis_url, registry)
    alice = browser(app)
    alice.get('/login?user=alice')
    cookie = alice.cookies['main']
    alice.get('/whoami')
    alice.get('/logout')
    alice.set_cookie('main', cookie)
    alice.get('/whoami', expect_errors=True)  # the ended session, loaded
    text = generate_latest(registry).decode()
    assert 'alice' not in text and cookie not in text
    assert cookie.split('.')[0] not in text
    labels = {
        name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for name in sample.labels
    }
    assert labels == {
        'namespace',
        'reason',
        'result',
        'operation',
        'outcome',
        'le',
    }


def test_two_apps_share_the_collectors_of_a_registry(redis_url):
    registry = CollectorRegistry()
    one = logins_app(redis_url, registry)
    two = logins_app(redis_url, registry)  # no "Duplicated timeseries"
    browser(one).get('/login?user=alice')
    browser(two).get('/login?user=bob')
    value = registry.get_sample_value(
        'session_suite_logins_total', {'result': 'admitted'}
    )
    assert value == 2


def test_loads_are_counted_at_a_scrape_or_within_a_second(redis_url):
    """A request appends its observations; they are counted when the
    registry is scraped, and at least once a second while sessions are
    loaded (a multiprocess scrape reads the histograms without asking)."""
    registry = CollectorRegistry()
    firefox = browser(logins_app(redis_url, registry))
    firefox.get('/login?user=alice')
    collectors = metrics.collectors_for(registry)
    collectors.pending.count()

    def loads():  # the histogram itself, as a multiprocess scrape reads it
        [family] = collectors.seconds.collect()
        [count] = [
            sample.value
            for sample in family.samples
            if sample.name == 'session_suite_store_seconds_count'
            and sample.labels['operation'] == 'load'
        ] or [0]
        return count

    collectors.pending.due = float('inf')  # not yet
    firefox.get('/whoami')
    assert loads() == 0
    collectors.pending.due = 0.0  # a second went by
    firefox.get('/whoami')
    assert loads() == 2
    firefox.get('/whoami')
    samples, _ = scrape(registry)
    labels = (('namespace', 'main'), ('operation', 'load'))
    assert samples['session_suite_store_seconds_count', labels] == 3
    assert loads() == 3


def test_the_default_registry_and_a_dotted_name(redis_url):
    def admitted(registry):
        value = registry.get_sample_value(
            'session_suite_logins_total', {'result': 'admitted'}
        )
        return value or 0

    before = admitted(REGISTRY)
    config = make_config(redis_url)
    config.include(METRICS)
    browser(config.make_wsgi_app()).get('/login?user=alice')
    assert admitted(REGISTRY) == before + 1

    named = logins_app(redis_url, 'tests.test_metrics.NAMED')
    before = admitted(NAMED)
    browser(named).get('/login?user=bob')
    assert admitted(NAMED) == before + 1
    assert metrics.collectors_for(NAMED) is metrics.collectors_for(NAMED)


@pytest.mark.parametrize(
    'setting, error',
    [
        ('tests.test_metrics.NOWHERE', 'cannot import'),
        ('no_such_module_anywhere', 'cannot import'),
        ('tests.test_metrics.METRICS', 'not a CollectorRegistry'),
    ],
)
def test_a_registry_that_does_not_exist(redis_url, setting, error):
    with pytest.raises(ConfigurationError, match=error) as raised:
        logins_app(redis_url, setting)
    assert str(raised.value).startswith('session_suite.metrics.registry: ')


def test_a_typo_in_a_setting(redis_url):
    config = make_config(redis_url, **{'session_suite.metrics.registy': 'x'})
    with pytest.raises(ConfigurationError, match='registy'):
        config.include(METRICS)


def test_included_twice_it_counts_once(redis_url):
    registry = CollectorRegistry()
    settings = {'session_suite.metrics.registry': registry}
    config = make_config(redis_url, **settings)
    config.include(METRICS)
    config.include('tests.test_metrics.include_metrics')
    browser(config.make_wsgi_app()).get('/login?user=alice')
    value = registry.get_sample_value(
        'session_suite_logins_total', {'result': 'admitted'}
    )
    assert value == 1


def include_metrics(config):
    """An include of the application that includes the metrics too."""
    config.include(METRICS)


def test_the_grafana_dashboard_graphs_these_metrics():
    """Every series the dashboard queries is one of these metrics, grouped
    by labels it has; every counter has a panel."""
    path = ROOT / 'contrib' / 'grafana' / 'session_suite.json'
    dashboard = json.loads(path.read_text())
    collectors = metrics.Collectors(CollectorRegistry())
    labels = {}
    for collector in vars(collectors).values():
        if collector is collectors.pending:  # no metric of its own
            continue
        [family] = collector.describe()
        suffixes = ['_total']
        if family.type == 'histogram':
            suffixes = ['_bucket', '_count', '_sum']
        for suffix in suffixes:
            names = set(collector._labelnames)
            if suffix == '_bucket':
                names.add('le')
            labels[family.name + suffix] = names
    exprs = [
        target['expr']
        for panel in dashboard['panels']
        for target in panel.get('targets', ())
    ]
    assert len(exprs) > 15
    groups = 0
    for expr in exprs:
        for name in re.findall(r'session_suite_\w+', expr):
            assert name in labels, name
        # "sum by (a, b) (rate(<series>...": the series has a and b
        for group, series in re.findall(
            r'by \(([^)]*)\) \([^s]*(session_suite_\w+)', expr
        ):
            groups += 1
            for label in group.split(','):
                assert label.strip() in labels[series], (label, expr)
    assert groups > 15
    queried = {name for e in exprs for name in re.findall(r'\w+', e)}
    assert {name for name in labels if name.endswith('_total')} <= queried
    namespace = dashboard['templating']['list'][1]
    assert 'session_suite_store_seconds_count' in namespace['definition']


def test_the_ways_the_readme_exposes_them(redis_url):
    """A ``/metrics`` view, and ``prometheus_client``'s WSGI application
    mounted with ``wsgiapp2`` (the default registry, as in the README)."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        make_wsgi_app,
    )
    from pyramid.response import Response
    from pyramid.wsgi import wsgiapp2

    def metrics_view(request):
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    config = make_config(redis_url)
    config.include(METRICS)
    config.add_route('metrics', '/metrics')
    config.add_view(metrics_view, route_name='metrics')
    config.add_route('prometheus', '/prometheus')
    config.add_view(wsgiapp2(make_wsgi_app()), route_name='prometheus')
    app = browser(config.make_wsgi_app())
    app.get('/login?user=alice')
    for path in ('/metrics', '/prometheus'):
        res = app.get(path)
        assert res.content_type == 'text/plain'
        [family] = [
            family
            for family in text_string_to_metric_families(res.text)
            if family.name == 'session_suite_logins'
        ]
        assert family.type == 'counter'


@pytest.mark.parametrize('multiprocess', [False, True])
def test_observations_counted_together_are_what_observe_records(
    multiprocess, tmp_path, monkeypatch
):
    from prometheus_client import Histogram, values

    if multiprocess:  # the values of prometheus_client's multiprocess mode
        monkeypatch.setenv('PROMETHEUS_MULTIPROC_DIR', str(tmp_path))
        monkeypatch.setattr(values, 'ValueClass', values.get_value_class())
    amounts = [0, 0.0004, 0.005, 0.005, 0.07, 2.5, 10, 1e9, 12, 800]
    recorded = []
    for name in ('observed', 'together'):
        histogram = Histogram(
            name, 'a histogram', ['namespace'], registry=CollectorRegistry()
        )
        child = histogram.labels('main')
        if name == 'together':
            metrics.observe_all(child, amounts)
        else:
            for amount in amounts:
                child.observe(amount)
        [family] = histogram.collect()
        recorded.append(
            [
                (sample.name.removeprefix(name), sample.labels, sample.value)
                for sample in family.samples
                if not sample.name.endswith('_created')
            ]
        )
    assert recorded[0] == recorded[1]
    assert ('_count', {'namespace': 'main'}, len(amounts)) in recorded[1]


def test_no_observation_is_lost_or_counted_twice_between_threads():
    """Threads append observations while others count them."""
    import threading

    collectors = metrics.Collectors(CollectorRegistry())
    watcher = metrics.MetricsWatcher(collectors)
    collectors.pending.due = float('inf')  # counted by the counters only
    threads, per_thread = 4, 5000
    done = threading.Event()

    def load():
        for _ in range(per_thread):
            watcher.loaded('main', 0.0, 0.0003, 'hit', 100)

    def count():
        while not done.is_set():
            collectors.pending.count()

    counters = [threading.Thread(target=count) for _ in range(2)]
    loaders = [threading.Thread(target=load) for _ in range(threads)]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    try:
        for thread in counters + loaders:
            thread.start()
        for thread in loaders:
            thread.join()
        done.set()
        for thread in counters:
            thread.join()
    finally:
        sys.setswitchinterval(switching)
    collectors.pending.count()
    child = collectors.payload.labels('main')
    assert child._sum.get() == threads * per_thread * 100
    [family] = collectors.seconds.collect()
    [count] = [s.value for s in family.samples if s.name.endswith('_count')]
    assert count == threads * per_thread
