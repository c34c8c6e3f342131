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


def test_the_toolbar_shows_sessions_in_our_panel_only(app):
    """pyramid_debugtoolbar's own Session panel renders session values
    unescaped: the demo leaves it out; the SessionMulti panel escapes."""
    local = {'REMOTE_ADDR': '127.0.0.1'}
    res = app.get(HUB + '/', extra_environ=local)
    [toolbar] = re.findall(
        r'href="([^"]*/_debug_toolbar/[0-9a-f]+)"', res.text
    )
    page = app.get(toolbar, extra_environ=local).text
    assert 'id="pDebugPanel-session_multi"' in page
    assert 'id="pDebugPanel-session"' not in page
    assert 'id="pDebugPanel-request_vars"' in page  # the others are there
    settings = get_appsettings(INI)
    assert 'session' not in settings['debugtoolbar.panels'].split()


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


def signed_in(app, user, site=HUB):
    """Sign in through the form; the page the browser lands on."""
    return follow_all(sign_in(app, user, site=site))


#: where a sign-in on the hub goes first: the other site, for the session
PUSH_TO_SITE = SITE + '/_session_suite/xd/begin?next='


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
    anonymous_cookie = cookie_of(app, '127.0.0.1')

    res = sign_in(app, 'alice')
    # through the other site and back: it has the new session too
    assert res.location == PUSH_TO_SITE + 'http%3A%2F%2F127.0.0.1%3A6543%2F'
    assert cookie_of(app, '127.0.0.1') != anonymous_cookie  # a new id
    res = follow_all(res)
    assert res.request.url == HUB + '/'
    assert user_of(res) == 'alice'
    assert notices_of(res) == []
    assert flashes_of(res) == ['Signed in as alice.']
    assert 'href="http://127.0.0.1:6543/sessions"' in res.text
    assert 'sessions/users/' not in res.text  # alice is no administrator
    assert text_of(res, 'visits') == '2'  # the session's data was kept
    assert tracker.index.count('alice') == 1

    signed_in_cookie = cookie_of(app, '127.0.0.1')
    res = res.forms['logout'].submit(status=303)
    assert res.location == HUB + '/'
    res = res.follow()
    assert user_of(res) == 'not signed in'
    assert flashes_of(res) == ['You signed out.']
    # the message lives in a new anonymous session
    assert cookie_of(app, '127.0.0.1') not in (
        signed_in_cookie,
        anonymous_cookie,
    )
    assert tracker.index.count('alice') == 0


def cookie_of(app, host, name='main'):
    """The value of a browser's cookie ``name`` for ``host``."""
    [value] = [c.value for c in app.cookiejar if (c.domain, c.name) == (
        host, name)]  # fmt: skip
    return value


def cookies_of(app, host):
    """The names of the cookies a browser keeps for ``host``."""
    return {c.name for c in app.cookiejar if c.domain == host}


def flashes_of(res):
    found = re.findall(r'<p class="flash"[^>]*>([^<]*)<', res.text)
    return [html.unescape(text) for text in found]


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


def test_a_third_browser_is_refused_then_takes_over(wsgi_app, tracker):
    laptop = browser(wsgi_app, ip='198.51.100.1')
    private = browser(wsgi_app, ip='198.51.100.1')  # a private window
    other = browser(wsgi_app, ip='203.0.113.2', ua=CHROME)
    signed_in(laptop, 'alice')
    index_idle(tracker, 2)  # the private window signs in a bit later
    signed_in(private, 'alice')
    assert tracker.index.count('alice') == 2  # two are allowed

    # the policy refuses (409): the sign-in page says when to try again
    res = sign_in(other, 'alice', status=409)
    retry_after = int(res.headers['Retry-After'])
    assert 0 < retry_after <= 30
    assert text_of(res, 'retry-after') == str(retry_after)
    assert 'alice is already signed in in 2 other places' in res.text
    assert 'this demo allows 2 sessions per account' in res.text
    assert res.forms['login']['username'].value == 'alice'
    assert user_of(other.get(HUB + '/')) == 'not signed in'
    assert user_of(laptop.get(HUB + '/')) == 'alice'

    # 31 s without a request from either: the other browser signs in, and
    # signs out the least recently active one, the laptop
    index_idle(tracker, 31)
    res = signed_in(other, 'alice')
    assert user_of(res) == 'alice'
    assert tracker.index.count('alice') == 2

    # the laptop is sent to the sign-in page, which says why
    res = laptop.get(HUB + '/', status=303)
    assert res.location == HUB + '/login?session_ended=displaced'
    assert res.headers['X-Session-Ended'] == 'displaced'
    assert 'main=;' in res.headers['Set-Cookie']  # the cookie is deleted
    res = res.follow()
    assert notices_of(res) == [
        'You were signed out because your account signed in somewhere '
        'else (another browser, or a private window): this demo allows 2 '
        'sessions per account.'
    ]
    assert user_of(laptop.get(HUB + '/')) == 'not signed in'
    assert user_of(private.get(HUB + '/')) == 'alice'

    # "Your sessions" of the other browser: two devices, this one first
    res = other.get(HUB + '/sessions')
    mine, window = session_rows(res)
    assert 'this device' in mine and 'Chrome on Windows' in mine
    assert '203.0.113.2' in mine
    assert 'Firefox on Linux' in window and '198.51.100.1' in window
    assert '2 active sessions' in res.text


def test_your_sessions_lists_every_device(wsgi_app):
    laptop = browser(wsgi_app, ip='198.51.100.1')
    desktop = browser(wsgi_app, ip='203.0.113.2', ua=CHROME)
    signed_in(laptop, 'alice')
    signed_in(desktop, 'alice')

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
    signed_in(alice, 'alice')
    res = signed_in(admin, 'admin')
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
    signed_in(app, 'alice')
    # the policy's clock returns epoch seconds; activity is recorded every
    # second and no clock skew is allowed: "2 minutes" is 2 minutes
    tracker.policy.clock = lambda: time.time() + 119
    assert user_of(app.get(HUB + '/')) == 'alice'
    assert tracker.touch_interval == 1 and tracker.policy.clock_skew == 0
    tracker.policy.clock = lambda: time.time() + 121

    res = app.get(HUB + '/', status=303)
    assert res.location == HUB + '/login?session_ended=idle'
    res = res.follow()
    assert notices_of(res) == [
        'You were signed out after 2 minutes without activity.'
    ]
    assert tracker.index.count('alice') == 0
    assert user_of(app.get(HUB + '/')) == 'not signed in'


def test_forget_me_signs_out_too(app, tracker, redis_client):
    res = signed_in(app, 'alice')
    res = res.forms['theme'].submit().follow()
    [key] = live_keys(redis_client, MAIN_KEYS)
    res = res.forms['forget'].submit(status=303)
    assert set_cookie_names(res) == ['main', 'prefs']
    assert cookies_of(app, '127.0.0.1') == set()
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
    assert 'Two sessions per account. Sign in as alice here and in a ' in text
    assert 'private window: "Your sessions" lists both.' in text
    assert 'refused while the least recently active of the two was ' in text
    assert 'active in the last 30 seconds' in text
    assert 'alone for 2 minutes' in text
    assert 'Signed in as admin, "Sessions of" shows' in text
    assert f'Sign in on {HUB}, then open the other site' in text
    assert 'Sign in again: both are signed in again.' in text
    assert 'the red tab at the right edge of the page opens it' in text
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
    res = signed_in(app, 'admin')
    nav = nav_of(res)
    assert f'<a href="{HUB}/sessions">Your sessions</a>' in nav
    assert (
        f'<span>Sessions of <a href="{HUB}/sessions/users/alice">alice</a> '
        f'<a href="{HUB}/sessions/users/bob">bob</a></span>'
    ) in nav
    res = signed_in(app, 'bob')  # switches users
    assert 'Sessions of' not in nav_of(res)
    assert f'<a href="{HUB}/sessions">Your sessions</a>' in nav_of(res)


# --- two sites --------------------------------------------------------------


def test_signing_in_on_the_hub_signs_in_on_the_other_site(app, tracker):
    res = sign_in(app, 'alice')
    # the sign-in goes through the other site, which adopts the session
    urls = [res.location]
    while res.status_int == 303:
        res = res.follow()
        urls.append(res.request.url)
    assert [url.split('?')[0] for url in urls] == [
        SITE + '/_session_suite/xd/begin',
        SITE + '/_session_suite/xd/begin',
        HUB + '/_session_suite/xd/export',
        SITE + '/_session_suite/xd/import',
        HUB + '/',
    ]
    assert flashes_of(res) == ['Signed in as alice.']

    # the other site's first page view: signed in, no redirect
    res = app.get(SITE + '/?x=1', status=200)
    assert user_of(res) == 'alice'
    assert text_of(res, 'site') == SITE
    # each site has its own cookie, both naming the one session
    hosts = {c.domain for c in app.cookiejar if c.name == 'main'}
    assert hosts == {'127.0.0.1', 'localhost.local'}
    assert tracker.index.count('alice') == 1
    [row] = session_rows(app.get(SITE + '/sessions'))
    assert 'this device' in row


def test_the_redirect_flow_when_the_other_site_has_no_session(app):
    signed_in(app, 'alice')
    app.cookiejar.clear('localhost.local')  # its cookies were cleared
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


def visit(app, url, seen):
    """A page view, redirects followed; every address is added to
    ``seen``."""
    res = app.get(url)
    seen.append(res.request.url)
    while res.status_int in (302, 303):
        res = res.follow()
        seen.append(res.request.url)
    return res


@pytest.mark.parametrize('where', [SITE, HUB])
def test_signing_out_and_in_again(app, tracker, where):
    """Signed in on both sites, sign out on one: both are signed out, and
    each says so; sign in again on the hub: both are signed in again, at
    their next page view."""
    other = HUB if where == SITE else SITE
    seen = []
    signed_in(app, 'alice')
    res = visit(app, where + '/', seen)
    assert user_of(res) == 'alice'

    res = res.forms['logout'].submit(status=303)
    seen.append(res.location)
    res = follow_all(res)
    assert res.request.url == where + '/'
    assert user_of(res) == 'not signed in'
    assert flashes_of(res) == ['You signed out.']
    assert notices_of(res) == []

    res = visit(app, other + '/', seen)
    assert user_of(res) == 'not signed in'
    assert notices_of(res) == [
        'You signed out (in another tab, or on the other site).'
    ]
    # said once
    assert notices_of(visit(app, other + '/', seen)) == []
    assert user_of(visit(app, where + '/', seen)) == 'not signed in'

    # sign in again, on the hub (the other site's "Sign in" leads there)
    res = visit(app, where + '/login', seen)
    assert res.request.url.startswith(HUB + '/login')
    form = res.forms['login']
    form['username'] = form['password'] = 'alice'
    res = form.submit(status=303)
    seen.append(res.location)
    res = follow_all(res)
    assert user_of(res) == 'alice'
    assert flashes_of(res) == ['Signed in as alice.']
    for site in (SITE, HUB):
        res = visit(app, site + '/', seen)
        assert res.request.url == site + '/'
        assert user_of(res) == 'alice'
        assert notices_of(res) == []
    assert tracker.index.count('alice') == 1
    assert not [url for url in seen if 'session_suite_xd=' in url]


def test_the_other_site_bounces_once_after_signing_out(app):
    """Signed out, the other site's cookies cleared: one invisible trip to
    the hub, back on the page asked for, and no more trips."""
    signed_in(app, 'alice')
    follow_all(app.get(SITE + '/').forms['logout'].submit())
    app.cookiejar.clear('localhost.local')
    seen = []
    res = visit(app, SITE + '/about', seen)
    assert [url.split('?')[0] for url in seen] == [
        SITE + '/about',
        HUB + '/_session_suite/xd/export',
        SITE + '/_session_suite/xd/import',
        SITE + '/about',
    ]
    assert res.request.url == SITE + '/about'
    seen.clear()
    visit(app, SITE + '/about', seen)
    assert seen == [SITE + '/about']
    # the hub still says why its session ended: the trip did not tell it
    res = app.get(HUB + '/')
    assert notices_of(res) == ['You signed out (in another tab, or on the '
                               'other site).']  # fmt: skip


def test_the_push_link_replaces_the_other_sites_session(app):
    # first visit to the other site: nothing at the hub, it keeps its own
    res = follow_all(app.get(SITE + '/'))
    assert user_of(res) == 'not signed in'
    assert user_of(app.get(SITE + '/')) == 'not signed in'
    # a sign-in on the hub that never went through the other site (the
    # browser did not follow it there)...
    sign_in(app, 'alice')
    res = app.get(HUB + '/')
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
    signed_in(first, 'alice')
    follow_all(first.get(SITE + '/'))
    index_idle(tracker, 2)
    signed_in(browser(wsgi_app, ip='203.0.113.2'), 'alice')
    index_idle(tracker, 31)
    signed_in(browser(wsgi_app, ip='203.0.113.3'), 'alice')
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


# --- in a real browser ------------------------------------------------------


@pytest.fixture
def demo_sites(redis_url, monkeypatch):
    """The demo served as a browser meets it: the hub on 127.0.0.1 and the
    other site on localhost, each on a free port; yields their origins."""
    from .conftest import serve

    monkeypatch.setenv('REDIS_URL', redis_url)
    made = {}

    def app(environ, start_response):
        return made['app'](environ, start_response)

    with serve(app) as hub, serve(app) as other:
        site = other.replace('127.0.0.1', 'localhost')
        settings = get_appsettings(INI)
        settings['session_suite.crossdomain.sites'] = f'{hub} {site}'
        made['app'] = demo.main({}, **settings)
        yield hub, site


def shot(page, artifacts, name):
    page.screenshot(path=str(artifacts / f'demo-{name}.png'), full_page=True)


def sign_in_on(page, user):
    """Fill in and send the sign-in form the page shows."""
    page.fill('input[name=username]', user)
    page.fill('input[name=password]', user)
    with page.expect_navigation():
        page.click('#login button[type=submit]')


def test_the_demo_in_a_browser(demo_sites, browser, artifacts):
    """Sign in on the hub, the other site, sign out there, sign in again:
    what a newcomer does first, in Chromium."""
    hub, site = demo_sites
    context = browser.new_context(viewport={'width': 1100, 'height': 800})
    page = context.new_page()
    visited = []
    page.on(
        'request',
        lambda r: visited.append(r.url) if r.is_navigation_request() else 0,
    )

    def user():
        return page.text_content('#user')

    def messages(kind):
        return [
            t.strip() for t in page.locator(f'p.{kind}').all_text_contents()
        ]

    page.goto(hub + '/')
    assert user() == 'not signed in'
    assert page.text_content('#where') == hub.split('//')[1] + ' · hub'
    shot(page, artifacts, 'home')
    with page.expect_navigation():
        page.click('#nav-login')
    shot(page, artifacts, 'sign-in')
    sign_in_on(page, 'alice')
    assert page.url == hub + '/'
    assert user() == 'alice'
    assert messages('flash') == ['Signed in as alice.']
    shot(page, artifacts, 'signed-in')

    # the other site: signed in at its first page view
    page.goto(site + '/')
    assert page.url == site + '/'
    assert user() == 'alice'
    assert page.text_content('#site') == site
    assert page.text_content('#where').endswith(' · other site')
    shot(page, artifacts, 'other-site')
    with page.expect_navigation():
        page.click('#theme button')
    assert page.text_content('#theme') == 'dark'
    shot(page, artifacts, 'other-site-dark')
    with page.expect_navigation():
        page.click('#theme button')

    # sign out there: signed out on both, each says so
    with page.expect_navigation():
        page.click('#logout button')
    assert page.url == site + '/'
    assert user() == 'not signed in'
    assert messages('flash') == ['You signed out.']
    page.goto(hub + '/')
    assert user() == 'not signed in'
    assert messages('notice') == [
        'You signed out (in another tab, or on the other site).'
    ]
    shot(page, artifacts, 'signed-out-elsewhere')

    # sign in again, from the other site: the hub's form, and back
    page.goto(site + '/')
    with page.expect_navigation():
        page.click('#nav-login')
    assert page.url.startswith(hub + '/login?')
    sign_in_on(page, 'alice')
    page.wait_for_url(site + '/')
    assert user() == 'alice'
    page.goto(hub + '/')
    assert user() == 'alice'

    # sign out on the hub, in again on the hub: the other site follows
    with page.expect_navigation():
        page.click('#logout button')
    page.goto(site + '/')
    assert user() == 'not signed in'
    assert messages('notice') == [
        'You signed out (in another tab, or on the other site).'
    ]
    page.goto(hub + '/login')
    sign_in_on(page, 'alice')
    page.goto(site + '/')
    assert user() == 'alice'
    assert not [url for url in visited if 'session_suite_xd' in url]

    # a private window: "Your sessions" lists both devices
    private = browser.new_context(viewport={'width': 1100, 'height': 800})
    window = private.new_page()
    window.goto(hub + '/login')
    window.fill('input[name=username]', 'alice')
    window.fill('input[name=password]', 'alice')
    with window.expect_navigation():
        window.click('#login button[type=submit]')
    page.goto(hub + '/sessions')
    assert page.locator('tbody tr').count() == 2
    shot(page, artifacts, 'your-sessions')
    private.close()

    # the debug toolbar: its tab at the right edge opens it in a new tab
    page.goto(hub + '/')
    button = page.locator('#pShowToolBarButton')
    assert button.is_visible()
    with context.expect_page() as opened:
        button.click()
    toolbar = opened.value
    toolbar.wait_for_load_state()
    assert toolbar.locator('#pDebugPanel-session').count() == 0
    tab = toolbar.locator('#pDebugPanel-session_multi a')
    tab.click()
    content = toolbar.locator('#pDebugPanel-session_multi-content')
    content.wait_for(state='visible')
    assert 'visits' in content.inner_text()
    toolbar.set_viewport_size({'width': 1280, 'height': 900})
    toolbar.screenshot(
        path=str(artifacts / 'demo-toolbar-panel.png'), full_page=True
    )
    context.close()


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
    res = signed_in(app, 'alice')
    res.forms['theme'].submit()
    for cookie in app.cookiejar:
        assert not cookie.secure, cookie.name
