"""After a password change: ``credentials_changed(request)`` ends every
other session of the user, everywhere, and keeps this one signed in with
a new id and a new CSRF token."""

from pyramid.csrf import get_csrf_token
import pytest
from webtest import TestApp

from pyramid_session_suite import credentials_changed
from pyramid_session_suite.events import SessionRevoked

from . import previous_release as previous
from .conftest import ended_reason, live_keys
from .crossdomainapp import HUB, SITE, by_host, site_settings
from .usersapp import FIREFOX, IPHONE, SessionSecurityPolicy, make_config


def add_views(config, events):
    def password(request):
        count = credentials_changed(request)
        return {'ended': count, 'csrf': get_csrf_token(request)}

    def token(request):
        return {'csrf': get_csrf_token(request)}

    config.add_route('password', '/password')
    config.add_view(password, route_name='password', renderer='json')
    config.add_route('token', '/token')
    config.add_view(token, route_name='token', renderer='json')
    config.add_subscriber(events.append, SessionRevoked)


@pytest.fixture
def events():
    return []


@pytest.fixture
def workers(store, events):
    """Two workers of one application (two WSGI apps, one Redis)."""
    settings, _ = store
    apps = []
    for _ in range(2):
        config = make_config(settings)
        add_views(config, events)
        apps.append(config.make_wsgi_app())
    return apps


def browser(app, ua=FIREFOX, ip='198.51.100.7'):
    return TestApp(
        app, extra_environ={'HTTP_USER_AGENT': ua, 'REMOTE_ADDR': ip}
    )


def test_every_other_session_ends_and_this_one_stays(workers, store, events):
    _, client = store
    one, two = workers
    firefox, iphone = browser(one), browser(two, IPHONE, '198.51.100.9')
    firefox.get('/login?user=alice')
    iphone.get('/login?user=alice')
    old = previous.login(client, 'alice')  # logged in before an upgrade
    bob = browser(two)
    bob.get('/login?user=bob')
    cookie = firefox.cookies['main']
    token = firefox.get('/token').json['csrf']

    res = firefox.get('/password')
    assert res.json['ended'] == 2
    # this browser: still alice, with a new id and a new CSRF token
    assert firefox.cookies['main'] != cookie
    assert res.json['csrf'] != token
    assert firefox.get('/whoami').json['user'] == 'alice'
    [mine] = firefox.get('/mine').json['sessions']
    assert mine['current']
    # the others: ended, in every worker, and told why
    assert iphone.get('/whoami').json == {
        'user': None,
        'n': None,
        'ended': 'credentials',
    }
    assert ended_reason(client, old) == 'credentials'
    # an event per ended session
    assert [(e.reason, e.count, len(e.handles)) for e in events] == [
        ('credentials', 1, 1)
    ] * 2
    assert {e.handles[0] for e in events} == {
        previous.handle_of(old),
        iphone_handle(events, old),
    }
    # other users are not touched
    assert bob.get('/whoami').json['user'] == 'bob'


def iphone_handle(events, old):
    [handle] = [
        e.handles[0] for e in events if e.handles[0] != previous.handle_of(old)
    ]
    assert '.' in handle
    return handle


def test_a_remembered_login_stays_remembered(workers, store):
    _, client = store
    firefox = browser(workers[0])
    firefox.get('/login?user=alice&remember=1')
    res = firefox.get('/password')
    [header] = [
        h for h in res.headers.getall('Set-Cookie') if h.startswith('main=')
    ]
    assert 'Max-Age=2592000' in header
    [key] = live_keys(client, 'session_suite:main:*')
    assert client.ttl(key) > 2591000


def test_it_needs_a_logged_in_user(workers):
    with pytest.raises(ValueError, match='logged-in user'):
        browser(workers[0]).get('/password')


def test_every_site_of_a_group(redis_url, redis_client, events):
    def site():
        settings = site_settings(redis_url)
        settings['session_suite.user_index.secret'] = previous.INDEX_SECRET
        from pyramid.config import Configurator

        from .crossdomainapp import page

        config = Configurator(settings=settings)
        config.set_security_policy(SessionSecurityPolicy())
        config.include('pyramid_session_suite.user_index')
        config.include('pyramid_session_suite.crossdomain')
        from .usersapp import login_view, whoami

        config.add_route('login', '/login')
        config.add_view(login_view, route_name='login', renderer='json')
        config.add_route('whoami', '/whoami')
        config.add_view(whoami, route_name='whoami', renderer='json')
        config.add_route('page', '/page')
        config.add_view(page, route_name='page')
        add_views(config, events)
        return config.make_wsgi_app()

    group = by_host({'www.site-a.test': site(), 'www.site-b.test': site()})

    def device(ua):
        return TestApp(
            group,
            extra_environ={'HTTP_ACCEPT': 'text/html', 'HTTP_USER_AGENT': ua},
        )

    def shared(device):
        """Who ``device`` is on the other site, once it fetched the hub's
        session there."""
        res = device.get(SITE + '/page')
        while res.status_int in (302, 303):
            res = res.follow()
        return device.get(SITE + '/whoami', xhr=True).json['user']

    laptop, phone = device(FIREFOX), device(IPHONE)
    for each in (laptop, phone):
        each.get(HUB + '/login?user=alice')
        assert shared(each) == 'alice'
    assert len(live_keys(redis_client, 'session_suite:main:*')) == 2

    laptop.get(HUB + '/password')
    # the phone is signed out on both sites, and told why
    for where in (HUB, SITE):
        res = phone.get(where + '/whoami', xhr=True)
        assert res.json['user'] is None
        assert res.json['ended'] == 'credentials'
    # the laptop keeps its login on the hub; on the other site, its first
    # page view finds its former id gone (and clears it), the next one
    # fetches the new id from the hub
    assert laptop.get(HUB + '/whoami', xhr=True).json['user'] == 'alice'
    assert shared(laptop) is None
    assert shared(laptop) == 'alice'
    assert len(live_keys(redis_client, 'session_suite:main:*')) == 1
