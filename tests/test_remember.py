""" "Remember me": ``login(request, userid, remember=True)`` makes a login
that outlives the browser session: its cookie has ``Max-Age`` and its
session lasts the namespace's ``remember_max_age`` unused."""

import time
from webtest import TestApp

from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis.login_records import redis_key

from .conftest import live_keys
from .crossdomainapp import HUB, SITE, by_host, make_site
from .test_policy import policy_app
from .usersapp import FIREFOX, make_config

TIMEOUT = 1200
REMEMBER = 30 * 86400


def browser(app):
    return TestApp(app, extra_environ={'HTTP_USER_AGENT': FIREFOX})


def main_cookie(res):
    [header] = [
        h for h in res.headers.getall('Set-Cookie') if h.startswith('main=')
    ]
    return header


def max_age(header):
    for part in header.split(';'):
        name, _, value = part.strip().partition('=')
        if name.lower() == 'max-age':
            return int(value)
    return None


def the_key(redis_client):
    [key] = live_keys(redis_client, 'session_suite:main:*')
    return key


def test_a_login_lasts_the_browser_session_by_default(redis_url, redis_client):
    app = browser(make_config(redis_url).make_wsgi_app())
    res = app.get('/login?user=alice')
    assert max_age(main_cookie(res)) is None
    assert TIMEOUT - 5 < redis_client.ttl(the_key(redis_client)) <= TIMEOUT


def test_a_remembered_login_keeps_its_cookie_and_its_session(
    redis_url, redis_client, round_trips
):
    app = browser(make_config(redis_url).make_wsgi_app())
    res = app.get('/login?user=alice&remember=1')
    assert max_age(main_cookie(res)) == REMEMBER
    key = the_key(redis_client)
    assert REMEMBER - 5 < redis_client.ttl(key) <= REMEMBER
    # a read refreshes the key to its own lifetime, in its one round trip
    redis_client.expire(key, 100)
    counted = round_trips.client(redis_url)
    counted.ping()
    tracker = app.app.registry.getUtility(IUserIndex)
    tracker.factory.redis = counted
    round_trips.reset()
    res = app.get('/whoami')
    assert res.json['user'] == 'alice'
    assert round_trips.trips == [['GETEX']]
    assert REMEMBER - 5 < redis_client.ttl(key) <= REMEMBER
    # the cookie is sent again, with its Max-Age, when the session is
    # written
    res = app.get('/whoami?write=1')
    assert max_age(main_cookie(res)) == REMEMBER


def test_remember_max_age_is_a_namespace_setting(redis_url, redis_client):
    config = make_config(
        redis_url, **{'session_suite.namespace.main.remember_max_age': '3600'}
    )
    res = browser(config.make_wsgi_app()).get('/login?user=a&remember=1')
    assert max_age(main_cookie(res)) == 3600
    assert 3595 < redis_client.ttl(the_key(redis_client)) <= 3600


def test_logging_in_again_without_remember_forgets_it(redis_url, redis_client):
    app = browser(make_config(redis_url).make_wsgi_app())
    app.get('/login?user=alice&remember=1')
    res = app.get('/login?user=alice')
    assert max_age(main_cookie(res)) is None
    assert TIMEOUT - 5 < redis_client.ttl(the_key(redis_client)) <= TIMEOUT
    assert app.get('/whoami').json['user'] == 'alice'


def test_without_the_user_index_too(redis_url, redis_client):
    app = browser(
        make_config(redis_url, include='pyramid_session_suite').make_wsgi_app()
    )
    res = app.get('/login?user=alice&remember=1')
    assert max_age(main_cookie(res)) == REMEMBER
    key = the_key(redis_client)
    assert REMEMBER - 5 < redis_client.ttl(key) <= REMEMBER
    assert app.get('/whoami').json['user'] == 'alice'


def test_the_policy_idle_timeout_spares_remembered_logins(
    redis_url, redis_client
):
    app, tracker = policy_app(
        redis_url, idle_timeout='60', absolute_timeout='3600'
    )
    kept, idle = browser(app), browser(app)
    kept.get('/login?user=alice&remember=1')
    idle.get('/login?user=bob')
    later = time.time() + 120
    tracker.policy.clock = lambda: later
    assert kept.get('/whoami').json['user'] == 'alice'
    assert idle.get('/whoami', status=401).headers['X-Session-Ended'] == (
        'idle'
    )
    # the absolute timeout ends it all the same
    much_later = time.time() + 3700
    tracker.policy.clock = lambda: much_later
    res = kept.get('/whoami', status=401)
    assert res.headers['X-Session-Ended'] == 'absolute'


def test_the_other_site_of_a_group_remembers_it_too(redis_url, redis_client):
    hub, site = make_site(redis_url), make_site(redis_url)
    app = TestApp(
        by_host({'www.site-a.test': hub, 'www.site-b.test': site}),
        extra_environ={'HTTP_ACCEPT': 'text/html'},
    )
    res = app.get(HUB + '/login?user=alice&remember=1')
    assert max_age(main_cookie(res)) == REMEMBER
    res = app.get(SITE + '/page')
    while 'main=' not in res.headers.get('Set-Cookie', ''):
        res = res.follow()
    assert max_age(main_cookie(res)) == REMEMBER
    assert '>alice<' in res.follow().text
    [key] = live_keys(redis_client, 'session_suite:main:*')
    assert redis_key(key) == key
    assert REMEMBER - 5 < redis_client.ttl(key) <= REMEMBER
