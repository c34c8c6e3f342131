"""The demo application, loaded from development.ini."""

import atexit
import configparser
import html
import os
import re
import time
from urllib.parse import parse_qs, urlsplit
from pyramid.exceptions import ConfigurationError
from pyramid.paster import get_app, get_appsettings
import pytest
import redis
from webtest import TestApp

import demo
from pyramid_session_suite.interfaces import IUserIndex

from .conftest import ended_reason, live_keys, stored

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INI = os.path.join(ROOT, 'development.ini')
MAIN_KEYS = 'session_suite:main:*'

#: the two sites of the demo: one server, two addresses
HUB = 'http://127.0.0.1:6543'
SITE = 'http://localhost:6544'
FIREFOX = (
    'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
)
CHROME = (
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
    '(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'
)


@pytest.fixture
def wsgi_app(redis_url, monkeypatch):
    # demo.redis = embedded uses REDIS_URL when set: the tests' server
    monkeypatch.setenv('REDIS_URL', redis_url)
    return get_app(INI)


@pytest.fixture
def app(wsgi_app):
    return TestApp(wsgi_app)


def text_of(res, element_id):
    return re.search(rf'id="{element_id}"[^>]*>([^<]*)<', res.text).group(1)


def theme_of(res):
    theme = text_of(res, 'theme')
    assert f'<body class="{theme}">' in res.text
    return theme


def set_cookie_names(res):
    return sorted(c.split('=', 1)[0] for c in res.headers.getall('Set-Cookie'))


def test_home_counts_visits_in_redis(app, redis_client):
    res = app.get('/')
    assert text_of(res, 'visits') == '1'
    assert text_of(res, 'accessed') == 'main, prefs'
    # prefs was only read: no cookie for it yet
    assert set(app.cookies) == {'main'}
    [key] = redis_client.keys(MAIN_KEYS)

    res = app.get('/')
    assert text_of(res, 'visits') == '2'
    assert set_cookie_names(res) == []
    assert redis_client.keys(MAIN_KEYS) == [key]
    assert stored(redis_client, key)['m']['visits'] == 2


def test_theme_toggle(app):
    res = app.get('/')
    assert theme_of(res) == 'light'

    res = res.forms['theme'].submit(status=303)
    assert set_cookie_names(res) == ['prefs']
    res = res.follow()
    assert theme_of(res) == 'dark'
    assert set(app.cookies) == {'main', 'prefs'}

    res = res.forms['theme'].submit(status=303).follow()
    assert theme_of(res) == 'light'


def test_post_without_csrf_token_is_refused(app, redis_client):
    res = app.get('/')
    cookies = dict(app.cookies)
    [key] = redis_client.keys(MAIN_KEYS)
    stored = redis_client.get(key)

    for params in [
        {'theme': 'dark'},
        {'theme': 'dark', 'csrf_token': 'not-the-token'},
    ]:
        res = app.post('/theme', params, status=400)
        assert set_cookie_names(res) == []
    res = app.post('/forget', {}, status=400)
    assert set_cookie_names(res) == []

    assert app.cookies == cookies
    assert redis_client.keys(MAIN_KEYS) == [key]
    assert redis_client.get(key) == stored
    res = app.get('/')
    assert theme_of(res) == 'light'
    assert text_of(res, 'visits') == '2'


def test_forget_me_empties_every_namespace(app, redis_client):
    res = app.get('/')
    res = res.forms['theme'].submit().follow()
    assert theme_of(res) == 'dark'
    assert set(app.cookies) == {'main', 'prefs'}
    assert len(redis_client.keys(MAIN_KEYS)) == 1

    res = res.forms['forget'].submit(status=303)
    set_cookies = res.headers.getall('Set-Cookie')
    assert set_cookie_names(res) == ['main', 'prefs']
    assert all('Max-Age=0' in cookie for cookie in set_cookies)
    assert dict(app.cookies) == {}
    assert redis_client.keys(MAIN_KEYS) == []

    res = res.follow()
    assert text_of(res, 'visits') == '1'
    assert theme_of(res) == 'light'


@pytest.mark.parametrize('remote_addr', [None, '127.0.0.1'])
def test_about_touches_no_session(
    app, wsgi_app, redis_url, round_trips, monkeypatch, remote_addr
):
    factory = wsgi_app.registry.introspector.get(
        'session_suite namespaces', 'main'
    )['factory']
    monkeypatch.setattr(factory, 'redis', round_trips.client(redis_url))
    app.get('/').forms['theme'].submit()
    assert set(app.cookies) == {'main', 'prefs'}
    assert round_trips.count > 0

    round_trips.reset()
    environ = {'REMOTE_ADDR': remote_addr} if remote_addr else {}
    res = app.get('/about', extra_environ=environ)
    assert 'Set-Cookie' not in res.headers
    assert text_of(res, 'accessed') == 'none'
    assert round_trips.commands == []


def test_debug_toolbar_for_local_requests_only(app):
    res = app.get('/', extra_environ={'REMOTE_ADDR': '127.0.0.1'})
    assert 'id="pDebug"' in res.text
    res = app.get('/', extra_environ={'REMOTE_ADDR': '192.0.2.1'})
    assert 'pDebug' not in res.text


def test_embedded_redis_is_started_and_stopped_at_exit(
    monkeypatch, redis_server
):
    monkeypatch.delenv('REDIS_URL', raising=False)
    registered = []

    def register(func, *args, **kwargs):
        registered.append(func)
        return atexit_register(func, *args, **kwargs)

    atexit_register = atexit.register
    monkeypatch.setattr(atexit, 'register', register)
    wsgi_app = get_app(INI)
    server = wsgi_app.registry['demo.redis_server']
    try:
        assert server.started
        assert server.url != redis_server.url
        settings = wsgi_app.registry.settings
        assert settings['session_suite.redis_url'] == server.url
        TestApp(wsgi_app).get('/')
        client = redis.Redis.from_url(server.url)
        assert len(client.keys(MAIN_KEYS)) == 1
        client.close()

        assert server.stop in registered
        process = server.process
        for func in registered:
            if func == server.stop:
                func()
        assert process.poll() is not None
        assert not server.started
    finally:
        server.stop()


def test_redis_url_setting(monkeypatch, redis_url, redis_client):
    monkeypatch.delenv('REDIS_URL', raising=False)
    settings = get_appsettings(INI)
    settings['demo.redis'] = redis_url
    wsgi_app = demo.main({}, **settings)
    assert wsgi_app.registry['demo.redis_server'] is None
    TestApp(wsgi_app).get('/')
    assert len(redis_client.keys(MAIN_KEYS)) == 1


def test_a_bad_redis_setting_is_refused():
    settings = get_appsettings(INI)
    settings['demo.redis'] = 'localhost'
    with pytest.raises(ConfigurationError, match='demo.redis: expected'):
        demo.main({}, **settings)


# --- signing in, the user index, the policy, two sites ----------------------


def browser(wsgi_app, ip='198.51.100.7', ua=FIREFOX):
    """A browser: its own cookie jar (per host), a top-level navigation
    asking for HTML, from a non-local address (no debug toolbar)."""
    return TestApp(
        wsgi_app,
        extra_environ={
            'HTTP_ACCEPT': 'text/html,*/*;q=0.8',
            'HTTP_USER_AGENT': ua,
            'REMOTE_ADDR': ip,
        },
    )


@pytest.fixture
def tracker(wsgi_app):
    return wsgi_app.registry.getUtility(IUserIndex)


def follow_all(res):
    while res.status_int in (302, 303):
        res = res.follow()
    return res


def sign_in(app, user, password=None, site=HUB, status=303):
    """Fill in and post the sign-in form of ``site``."""
    res = follow_all(app.get(site + '/login'))
    form = res.forms['login']
    form['username'] = user
    form['password'] = user if password is None else password
    return form.submit(status=status)


def user_of(res):
    return text_of(res, 'user')


def notices_of(res):
    found = re.findall(r'<p class="notice"[^>]*>([^<]*)<', res.text)
    return [html.unescape(text) for text in found]


def session_rows(res):
    return re.findall(r'<tr[^>]*><th scope="row">.*?</tr>', res.text, re.S)


def index_idle(tracker, seconds):
    """Make the user index see every session idle for ``seconds`` more
    (its clock returns epoch milliseconds)."""
    clock = tracker.index.clock
    tracker.index.clock = lambda: clock() + seconds * 1000


def test_sign_in_and_out_through_the_form(app, tracker):
    res = app.get(HUB + '/')
    assert user_of(res) == 'not signed in'
    assert 'id="nav-login"' in res.text
    anonymous_cookie = app.cookies['main']

    res = sign_in(app, 'alice')
    assert res.location == HUB + '/'
    assert app.cookies['main'] != anonymous_cookie  # a new session id
    res = res.follow()
    assert user_of(res) == 'alice'
    assert 'Signed in as alice.' in res.text
    assert 'href="http://127.0.0.1:6543/sessions"' in res.text
    assert 'sessions/users/' not in res.text  # alice is no administrator
    assert text_of(res, 'visits') == '2'  # the session's data was kept
    assert tracker.index.count('alice') == 1

    res = res.forms['logout'].submit(status=303)
    assert 'main=;' in res.headers['Set-Cookie']
    res = res.follow()
    assert user_of(res) == 'not signed in'
    assert tracker.index.count('alice') == 0


def test_signing_in_needs_the_csrf_token(app, tracker):
    app.get(HUB + '/login')
    fields = {'username': 'alice', 'password': 'alice'}
    app.post(HUB + '/login', fields, status=400)
    app.post(HUB + '/login', dict(fields, csrf_token='nope'), status=400)
    assert tracker.index.count('alice') == 0
    assert user_of(app.get(HUB + '/')) == 'not signed in'


@pytest.mark.parametrize(
    'user, password', [('alice', 'bob'), ('alice', ''), ('mallory', 'x')]
)
def test_a_wrong_password_is_said_on_the_form(app, tracker, user, password):
    res = sign_in(app, user, password, status=200)
    assert text_of(res, 'error') == 'Wrong user name or password.'
    assert res.forms['login']['username'].value == user
    assert 'Demo only' in res.text
    assert tracker.index.count(user) == 0
    assert user_of(app.get(HUB + '/')) == 'not signed in'


def test_signing_in_again_as_the_same_user_changes_nothing(app, tracker):
    sign_in(app, 'alice')
    cookie = app.cookies['main']
    res = sign_in(app, 'alice')
    assert res.location == HUB + '/'
    assert app.cookies['main'] == cookie
    assert tracker.index.count('alice') == 1


def test_signing_in_as_someone_else_switches_users(app, tracker):
    sign_in(app, 'alice')
    sign_in(app, 'bob')
    assert user_of(app.get(HUB + '/')) == 'bob'
    assert tracker.index.count('alice') == 0
    assert tracker.index.count('bob') == 1


def test_a_second_browser_is_refused_then_takes_over(wsgi_app, tracker):
    first = browser(wsgi_app, ip='198.51.100.1')
    second = browser(wsgi_app, ip='203.0.113.2', ua=CHROME)
    sign_in(first, 'alice')

    # the policy refuses (409): the sign-in page says when to try again
    res = sign_in(second, 'alice', status=409)
    retry_after = int(res.headers['Retry-After'])
    assert 0 < retry_after <= 30
    assert text_of(res, 'retry-after') == str(retry_after)
    assert 'alice is already signed in somewhere else' in res.text
    assert res.forms['login']['username'].value == 'alice'
    assert user_of(second.get(HUB + '/')) == 'not signed in'
    assert user_of(first.get(HUB + '/')) == 'alice'

    # 31 s without a request from the first browser: the second signs in
    index_idle(tracker, 31)
    res = sign_in(second, 'alice').follow()
    assert user_of(res) == 'alice'
    assert tracker.index.count('alice') == 1

    # the first browser is sent to the sign-in page, which says why
    res = first.get(HUB + '/', status=303)
    assert res.location == HUB + '/login?session_ended=displaced'
    assert res.headers['X-Session-Ended'] == 'displaced'
    assert 'main=;' in res.headers['Set-Cookie']  # the cookie is deleted
    res = res.follow()
    assert notices_of(res) == [
        'You were signed out because your account signed in somewhere '
        'else (another browser, or a private window): this demo allows one '
        'session per account.'
    ]
    assert user_of(first.get(HUB + '/')) == 'not signed in'

    # "Your sessions" of the second browser: one device, this one
    res = second.get(HUB + '/sessions')
    [row] = session_rows(res)
    assert 'this device' in row
    assert 'Chrome on Windows' in row
    assert '203.0.113.2' in row
    assert '1 active session' in res.text


def test_your_sessions_lists_every_device_when_allowed(monkeypatch, redis_url):
    monkeypatch.setenv('REDIS_URL', redis_url)
    settings = get_appsettings(INI)
    settings['session_suite.policy.max_sessions'] = '2'
    wsgi_app = demo.main({}, **settings)
    laptop = browser(wsgi_app, ip='198.51.100.1')
    desktop = browser(wsgi_app, ip='203.0.113.2', ua=CHROME)
    sign_in(laptop, 'alice')
    sign_in(desktop, 'alice')

    res = laptop.get(HUB + '/sessions')
    assert res.headers['Cache-Control'] == 'no-store'
    assert '<h1>Your sessions</h1>' in res.text
    chrome, firefox = session_rows(res)  # most recently active first
    assert 'Chrome on Windows' in chrome and '203.0.113.2' in chrome
    assert 'Firefox on Linux' in firefox and '198.51.100.1' in firefox
    assert 'this device' in firefox and 'this device' not in chrome
    assert 'just now' in chrome

    # the laptop signs the desktop out with its "Revoke" button
    [revoke] = [f for f in res.forms.values() if 'Revoke Chrome' in f.text]
    revoke.submit(status=303)
    assert len(session_rows(laptop.get(HUB + '/sessions'))) == 1
    res = desktop.get(HUB + '/')
    assert user_of(res) == 'not signed in'
    assert notices_of(res) == [
        'This session was signed out from a "Your sessions" page.'
    ]


def test_the_admin_sees_and_ends_anyones_sessions(wsgi_app, tracker):
    alice = browser(wsgi_app, ip='198.51.100.1')
    admin = browser(wsgi_app, ip='203.0.113.9', ua=CHROME)
    sign_in(alice, 'alice')
    res = sign_in(admin, 'admin').follow()
    for user in ('alice', 'bob'):
        assert f'href="{HUB}/sessions/users/{user}"' in res.text

    res = admin.get(HUB + '/sessions/users/alice')
    assert '<h1>Sessions of alice</h1>' in res.text
    [row] = session_rows(res)
    assert 'Firefox on Linux' in row and '198.51.100.1' in row
    # only the administrator may
    alice.get(HUB + '/sessions/users/admin', status=403)
    browser(wsgi_app).get(HUB + '/sessions', status=403)

    res.forms[0].submit(status=303)  # revoke alice's session
    assert tracker.index.count('alice') == 0
    res = alice.get(HUB + '/')
    assert user_of(res) == 'not signed in'
    assert notices_of(res) == ['An administrator signed this session out.']
    assert user_of(admin.get(HUB + '/')) == 'admin'


def test_the_idle_timeout(app, tracker):
    sign_in(app, 'alice')
    # the policy's clock returns epoch seconds
    tracker.policy.clock = lambda: time.time() + 100
    assert user_of(app.get(HUB + '/')) == 'alice'
    # 120 s (idle_timeout) + 5 s (clock_skew) after the last activity
    tracker.policy.clock = lambda: time.time() + 126

    res = app.get(HUB + '/', status=303)
    assert res.location == HUB + '/login?session_ended=idle'
    res = res.follow()
    assert notices_of(res) == [
        'You were signed out after 2 minutes without activity.'
    ]
    assert tracker.index.count('alice') == 0
    assert user_of(app.get(HUB + '/')) == 'not signed in'


def test_forget_me_signs_out_too(app, tracker, redis_client):
    res = sign_in(app, 'alice').follow()
    res = res.forms['theme'].submit().follow()
    [key] = live_keys(redis_client, MAIN_KEYS)
    res = res.forms['forget'].submit(status=303)
    assert set_cookie_names(res) == ['main', 'prefs']
    assert dict(app.cookies) == {}
    assert tracker.index.count('alice') == 0
    # only the reason the session ended is left, for a while, at its key
    assert redis_client.keys(MAIN_KEYS) == [key.encode()]
    assert live_keys(redis_client, MAIN_KEYS) == []
    assert ended_reason(redis_client, key) == 'logout'


def test_about_reads_no_session_of_a_signed_in_browser(
    app, wsgi_app, redis_url, round_trips, monkeypatch
):
    sign_in(app, 'alice')
    factory = wsgi_app.registry.introspector.get(
        'session_suite namespaces', 'main'
    )['factory']
    monkeypatch.setattr(factory, 'redis', round_trips.client(redis_url))
    res = app.get(HUB + '/about')
    assert 'Set-Cookie' not in res.headers
    assert text_of(res, 'accessed') == 'none'
    assert round_trips.commands == []
    assert user_of(app.get(HUB + '/')) == 'alice'  # still signed in


def page_text(res):
    """The words of a page's ``<main>``, without tags, on one line."""
    main = re.search(r'<main>(.*)</main>', res.text, re.S).group(1)
    return ' '.join(html.unescape(re.sub(r'<[^>]*>', '', main)).split())


def nav_of(res):
    return re.search(r'<nav>(.*?)</nav>', res.text, re.S).group(1)


def push_link(res):
    url = re.search(r'<a href="([^"]*)" class="push">', res.text).group(1)
    return html.unescape(url)


def test_the_home_page_explains_each_feature(app):
    res = app.get(HUB + '/')
    text = page_text(res)
    assert 'Sign in as alice, bob or admin: demo-only users' in text
    assert 'as alice in a private window or another browser' in text
    assert 'refused while the first window was active in the last 30' in text
    assert 'alone for 2 minutes' in text
    assert 'Signed in as admin, "Sessions of" shows' in text
    assert f'Sign in on {HUB}, then open the other site' in text
    assert text_of(res, 'site') == HUB
    assert 'the hub, where people sign in' in text
    assert f'<a href="{SITE}/" class="other-site">' in res.text
    assert push_link(res) == (
        SITE + '/_session_suite/xd/begin?next=http%3A%2F%2Flocalhost%3A6544%2F'
    )

    res = follow_all(app.get(SITE + '/'))
    assert text_of(res, 'site') == SITE
    assert 'a different site from the hub' in page_text(res)
    assert f'<a href="{HUB}/" class="other-site">' in res.text
    assert push_link(res).startswith(SITE + '/_session_suite/xd/begin?')

    # an address outside the group (WebTest's default: http://localhost)
    res = app.get('/')
    assert "is not one of the demo's sites" in page_text(res)


def test_the_admin_has_links_to_everyones_sessions(app):
    res = sign_in(app, 'admin').follow()
    nav = nav_of(res)
    assert f'<a href="{HUB}/sessions">Your sessions</a>' in nav
    assert (
        f'<span>Sessions of <a href="{HUB}/sessions/users/alice">alice</a> '
        f'<a href="{HUB}/sessions/users/bob">bob</a></span>'
    ) in nav
    res = sign_in(app, 'bob').follow()  # switches users
    assert 'Sessions of' not in nav_of(res)
    assert f'<a href="{HUB}/sessions">Your sessions</a>' in nav_of(res)


# --- two sites --------------------------------------------------------------


def test_signing_in_on_the_hub_signs_in_on_the_other_site(app, tracker):
    sign_in(app, 'alice')
    res = app.get(SITE + '/?x=1')
    # the redirect flow: to the hub and back, once
    assert res.status_int == 303
    assert res.location.startswith(HUB + '/_session_suite/xd/export?')
    res = res.follow()
    assert res.location.startswith(SITE + '/_session_suite/xd/import?')
    assert 't' in parse_qs(urlsplit(res.location).query)
    res = res.follow()
    assert res.location == SITE + '/?x=1'
    cookie = res.headers['Set-Cookie']
    assert cookie.startswith('main=') and 'secure' not in cookie.lower()
    res = res.follow()
    assert user_of(res) == 'alice'
    assert text_of(res, 'site') == SITE

    # each site has its own cookie, both naming the one session
    hosts = {c.domain for c in app.cookiejar if c.name == 'main'}
    assert hosts == {'127.0.0.1', 'localhost.local'}
    assert tracker.index.count('alice') == 1
    [row] = session_rows(app.get(SITE + '/sessions'))
    assert 'this device' in row

    # signing out on one site signs out on both
    res.forms['logout'].submit(status=303)
    res = app.get(HUB + '/')
    assert user_of(res) == 'not signed in'
    assert notices_of(res) == [
        'You signed out (in another tab, or on the other site).'
    ]


def test_the_push_link_replaces_the_other_sites_session(app):
    # first visit to the other site: nothing at the hub, it keeps its own
    res = follow_all(app.get(SITE + '/'))
    assert user_of(res) == 'not signed in'
    assert user_of(app.get(SITE + '/')) == 'not signed in'
    # signing in on the hub does not reach a site with its own session...
    res = sign_in(app, 'alice').follow()
    assert user_of(app.get(SITE + '/')) == 'not signed in'
    # ... until the push link (on another host: WebTest's click() would
    # stay on this one)
    res = app.get(push_link(res), status=303)
    assert res.location.startswith(HUB + '/_session_suite/xd/export?')
    res = follow_all(res)
    assert res.request.url == SITE + '/'
    assert user_of(res) == 'alice'


def test_signing_in_on_the_other_site_goes_through_the_hub(app):
    res = app.get(SITE + '/').maybe_follow()
    res = app.get(SITE + '/login', status=303)
    assert res.location.startswith(HUB + '/login?next=')
    res = res.follow()
    assert 'you go back to the site you came from' in res.text
    form = res.forms['login']
    form['username'] = form['password'] = 'bob'
    res = form.submit(status=303)
    assert res.location.startswith(SITE + '/_session_suite/xd/begin?')
    res = follow_all(res)
    assert res.request.url == SITE + '/'
    assert user_of(res) == 'bob'
    assert user_of(app.get(HUB + '/')) == 'bob'
    # already signed in on the hub: straight back
    res = app.get(SITE + '/login', status=303).follow(status=303)
    assert res.location.startswith(SITE + '/_session_suite/xd/begin?')


def test_a_displaced_session_is_told_on_both_sites(wsgi_app, tracker):
    first = browser(wsgi_app, ip='198.51.100.1')
    sign_in(first, 'alice')
    follow_all(first.get(SITE + '/'))
    index_idle(tracker, 31)
    sign_in(browser(wsgi_app, ip='203.0.113.2'), 'alice')
    for site in (SITE, HUB):
        res = first.get(site + '/', status=303)
        assert res.location == site + '/login?session_ended=displaced'
    res = follow_all(first.get(SITE + '/login?session_ended=displaced'))
    assert res.request.url.startswith(HUB + '/login')
    assert 'signed in somewhere else' in notices_of(res)[0]


def test_the_sign_in_page_never_sends_elsewhere(app):
    sign_in(app, 'alice')
    for next_url in ('https://evil.example/', '//evil.example/x'):
        res = app.get(HUB + '/login', {'next': next_url}, status=200)
        assert 'evil' not in res.text
    res = app.get(HUB + '/login', {'next': SITE + '/about'}, status=303)
    assert res.location == SITE + '/about'


# --- the configuration ------------------------------------------------------


def ini():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(INI)
    return parser


def test_one_server_two_sites():
    from waitress.adjustments import Adjustments

    listen = ini()['server:main']['listen']
    assert listen.split() == ['127.0.0.1:6543', 'localhost:6544']
    ports = {port for _, _, _, (_, port, *_) in Adjustments(
        listen=listen).listen}  # fmt: skip
    assert ports == {6543, 6544}
    settings = get_appsettings(INI)
    assert settings['session_suite.crossdomain.sites'].split() == [HUB, SITE]
    assert settings['session_suite.crossdomain.flows'].split() == [
        'redirect',
        'push',
    ]


def test_the_secrets_are_marked_dev_only():
    settings = get_appsettings(INI)
    secrets = {k: v for k, v in settings.items() if k.endswith('.secret')}
    assert len(secrets) == 4
    for value in secrets.values():
        assert 'dev-only' in value and 'NOT-FOR-PRODUCTION' in value
        assert len(value.encode()) >= 32 and ' ' not in value


def test_no_cookie_is_secure_over_http(app):
    res = sign_in(app, 'alice').follow()
    res.forms['theme'].submit()
    for cookie in app.cookiejar:
        assert not cookie.secure, cookie.name
