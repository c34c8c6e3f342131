"""The "Your sessions" and admin views of the user index, against a real
Redis server: every test checks what Redis holds or what later requests
see, not only status codes."""

import re
from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.exceptions import ConfigurationError
from pyramid.response import Response
import pytest
from webtest import TestApp

from pyramid_session_suite.events import SessionRevoked
from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis.login_records import redis_key, split_id
from pyramid_session_suite.user_index.store import user_tag
from pyramid_session_suite.user_index.views import ago, countdown, duration

from .conftest import ended_reason, live_keys, serve
from .usersapp import FIREFOX, IPHONE, SessionSecurityPolicy, make_config

JSON = {'Accept': 'application/json'}
BROWSER_ACCEPT = (
    'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
)
SESSION_KEYS = 'session_suite:main:*'
ENTRY_KEYS = {
    'handle',
    'created',
    'last_seen',
    'ip',
    'ua',
    'label',
    'mobile',
    'location',
    'ns',
    'expires_in',
    'current',
}


def client(app, ua=FIREFOX, ip='198.51.100.7'):
    return TestApp(
        app, extra_environ={'HTTP_USER_AGENT': ua, 'REMOTE_ADDR': ip}
    )


def token_view(request):
    """The CSRF token of any session, anonymous ones included."""
    return {'token': get_csrf_token(request)}


@pytest.fixture
def revocations():
    return []


def views_config(redis_url, **settings):
    """The test application with the views, and ``/token``."""
    settings = {'session_suite.user_index.views': 'true', **settings}
    config = make_config(redis_url, **settings)
    config.add_route('token', '/token')
    config.add_view(token_view, route_name='token', renderer='json')
    return config


@pytest.fixture
def config(redis_url, revocations):
    config = views_config(redis_url)
    config.add_subscriber(revocations.append, SessionRevoked)
    return config


@pytest.fixture
def app(config):
    return config.make_wsgi_app()


@pytest.fixture
def tracker(app, config):
    return config.registry.getUtility(IUserIndex)


def logged_in(app, user, ua=FIREFOX, ip='198.51.100.7'):
    browser = client(app, ua, ip)
    browser.get(f'/login?user={user}')
    return browser


def handle_of(browser):
    return browser.get('/mine').json['current']


def user_of(browser):
    return browser.get('/whoami').json['user']


def session_keys(redis_client):
    """The keys of the live sessions (not those of ended ones)."""
    return live_keys(redis_client, SESSION_KEYS)


def session_id(tracker, browser):
    """The session id in the browser's cookie."""
    return tracker.factory.session_id_from_cookie(browser.cookies['main'])


def token_of(browser):
    return browser.get('/token').json['token']


def form_with(res, **fields):
    """The one form of the page whose hidden fields include ``fields``."""
    [form] = [
        form
        for index, form in res.forms.items()
        if isinstance(index, int)
        and all(
            name in form.fields and form[name].value == value
            for name, value in fields.items()
        )
    ]
    return form


def rows(res):
    """The ``<tr>`` of the table body."""
    body = res.text.split('<tbody>', 1)[1].split('</tbody>', 1)[0]
    return re.findall(r'<tr.*?</tr>', body, re.S)


def confirm_all(page):
    """Follow the page's "Sign out everywhere" / "Revoke all" link to
    its confirmation, and submit it."""
    confirmation = page.click(href=r'/revoke-all$')
    assert confirmation.status_int == 200
    return form_with(confirmation, scope='all', confirm='yes').submit()


@pytest.fixture
def alice_twice(app):
    """Alice on Firefox (``[0]``) and on an iPhone (``[1]``)."""
    firefox = logged_in(app, 'alice')
    iphone = logged_in(app, 'alice', IPHONE, '198.51.100.9')
    return firefox, iphone


# -- listing -------------------------------------------------------------


def test_the_html_listing_shows_both_devices(alice_twice):
    firefox, iphone = alice_twice
    mine, other = handle_of(firefox), handle_of(iphone)
    res = firefox.get('/sessions', headers={'Accept': BROWSER_ACCEPT})
    assert res.content_type == 'text/html'
    assert res.headers['Cache-Control'] == 'no-store'
    assert 'Signed in as <strong>alice</strong>' in res.text
    assert '2 active sessions' in res.text
    safari_row, firefox_row = rows(res)  # most recently active first
    assert 'Safari on iPhone' in safari_row
    assert '<span class="tag">mobile</span>' in safari_row
    assert 'this device' not in safari_row
    assert f'value="{other}"' in safari_row
    assert 'Firefox on Linux' in firefox_row
    assert 'mobile' not in firefox_row
    assert '<span class="badge">this device</span>' in firefox_row
    assert 'class="current"' in firefox_row
    assert f'value="{mine}"' in firefox_row
    assert res.text.count('this device</span>') == 1
    assert '198.51.100.9' in safari_row and '198.51.100.7' in firefox_row
    assert 'just now' in firefox_row
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+"', firefox_row)
    assert re.search(r'>in (19|20) minutes</time>', firefox_row)
    # every form carries the CSRF token of the session: one per session,
    # "Sign out all other sessions"; "Sign out everywhere" is a link to
    # its confirmation
    token = token_of(firefox)
    assert len(res.forms) == 3
    assert all(f['csrf_token'].value == token for f in res.forms.values())
    assert '<a class="button danger" href="/sessions/revoke-all">' in res.text
    # the other browser sees the same sessions, itself as "this device"
    [first, second] = rows(iphone.get('/sessions'))
    assert 'this device' in first and 'this device' not in second


def test_the_json_listing_never_shows_a_session_id(
    alice_twice, app, redis_client, tracker
):
    firefox, iphone = alice_twice
    res = firefox.get('/sessions', headers=JSON)
    assert res.content_type == 'application/json'
    assert res.headers['Vary'] == 'Accept'
    listing = res.json
    assert set(listing) == {'userid', 'current', 'sessions'}
    assert listing['userid'] == 'alice'
    assert listing['current'] == handle_of(firefox)
    assert [e['label'] for e in listing['sessions']] == [
        'Safari on iPhone',
        'Firefox on Linux',
    ]
    assert [e['current'] for e in listing['sessions']] == [False, True]
    for entry in listing['sessions']:
        assert set(entry) == ENTRY_KEYS
        assert entry['ns'] == 'main'
    assert {e['handle'] for e in listing['sessions']} == {
        handle_of(firefox),
        handle_of(iphone),
    }
    # both sessions are in Redis, and neither their ids (the cookies'),
    # nor their secrets, nor their keys are in any output
    keys = session_keys(redis_client)
    assert len(keys) == 2
    ids = [session_id(tracker, firefox), session_id(tracker, iphone)]
    assert sorted(redis_key(sid) for sid in ids) == keys
    admin = logged_in(app, 'admin')
    outputs = [
        res.text,
        firefox.get('/sessions').text,
        iphone.get('/sessions', headers=JSON).text,
        admin.get('/sessions/users/alice').text,
        admin.get('/sessions/users/alice', headers=JSON).text,
    ]
    for sid in ids:
        key, secret = split_id(sid)
        assert secret is not None and len(secret) == 22
        for output in outputs:
            assert sid not in output and secret not in output
            assert key not in output


@pytest.mark.parametrize(
    ('accept', 'json'),
    [
        (None, False),
        ('*/*', False),
        (BROWSER_ACCEPT, False),
        ('text/html, application/json', False),
        ('application/json', True),
        # a tie: Pyramid's accept view order (text/html first) decides
        ('application/json, text/plain, */*', False),
        ('application/json, */*;q=0.8', True),
        ('image/png', False),  # neither: the HTML variant
        ('text/html;q=0.5, application/json', True),
        ('application/*', True),
        ('text/html, application/json;q=0', False),
        ('not a media range;;', False),
    ],
)
def test_json_only_when_preferred(alice_twice, accept, json):
    firefox, _ = alice_twice
    headers = {'Accept': accept} if accept else {}
    res = firefox.get('/sessions', headers=headers)
    expected = 'application/json' if json else 'text/html'
    assert res.content_type == expected
    if json:
        assert len(res.json['sessions']) == 2
    else:
        assert len(rows(res)) == 2


# -- revoking, as the user -----------------------------------------------


def test_revoking_another_session_signs_it_out(
    alice_twice, redis_client, revocations, tracker
):
    firefox, iphone = alice_twice
    other = handle_of(iphone)
    other_id = session_id(tracker, iphone)
    before = session_keys(redis_client)
    page = firefox.get('/sessions')
    res = form_with(page, handle=other).submit()
    assert res.status_int == 303
    assert res.location == 'http://localhost/sessions'
    # its key now holds why it ended, for its browser
    assert ended_reason(redis_client, other_id) == 'revoked'
    # the other browser is anonymous, and told why; this one is not
    assert iphone.get('/whoami').json == {
        'user': None,
        'n': None,
        'ended': 'revoked',
    }
    assert user_of(firefox) == 'alice'
    after = session_keys(redis_client)
    assert len(before) == 2 and len(after) == 1 and after[0] in before
    assert redis_key(other_id) not in after
    assert [e.handle for e in tracker.index.list('alice')] == [
        handle_of(firefox)
    ]
    [event] = revocations
    assert (event.userid, event.handles) == ('alice', (other,))
    assert (event.reason, event.count) == ('revoked', 1)
    # the listing says what happened, once
    res = res.follow()
    assert '<p class="flash">Signed out 1 session.</p>' in res.text
    assert len(rows(res)) == 1
    assert 'flash' not in firefox.get('/sessions').text.split('<h1>')[1]


def test_sign_out_all_other_sessions(app, alice_twice, redis_client):
    firefox, iphone = alice_twice
    third = logged_in(app, 'alice', ip='203.0.113.5')
    page = firefox.get('/sessions')
    res = form_with(page, scope='others').submit().follow()
    assert 'Signed out 2 other sessions.' in res.text
    assert user_of(iphone) is None and user_of(third) is None
    assert user_of(firefox) == 'alice'
    assert len(session_keys(redis_client)) == 1


def test_json_clients_send_the_token_in_a_header(
    alice_twice, redis_client, tracker
):
    firefox, iphone = alice_twice
    token = token_of(firefox)
    res = firefox.post_json(
        '/sessions/revoke',
        {'handle': handle_of(iphone)},
        headers={'X-CSRF-Token': token, **JSON},
    )
    assert res.json == {'revoked': 1}
    assert user_of(iphone) is None
    third = logged_in(firefox.app, 'alice', IPHONE)
    res = firefox.post(
        '/sessions/revoke',
        {'scope': 'others'},
        headers={'X-CSRF-Token': token, **JSON},
    )
    assert res.json == {'revoked': 1}
    assert user_of(third) is None
    assert tracker.index.count('alice') == 1
    assert len(session_keys(redis_client)) == 1


@pytest.mark.parametrize('token', [None, '', 'wrong', 'header:wrong'])
def test_a_post_without_the_right_token_changes_nothing(
    alice_twice, redis_client, revocations, token
):
    firefox, iphone = alice_twice
    other = handle_of(iphone)
    before = session_keys(redis_client)
    fields, headers = {'handle': other}, {}
    if token and token.startswith('header:'):
        headers['X-CSRF-Token'] = token.split(':', 1)[1]
    elif token is not None:
        fields['csrf_token'] = token
    firefox.post('/sessions/revoke', fields, headers=headers, status=400)
    fields['scope'] = 'all'
    del fields['handle']
    firefox.post('/sessions/revoke', fields, headers=headers, status=400)
    assert session_keys(redis_client) == before
    assert user_of(iphone) == 'alice' and user_of(firefox) == 'alice'
    assert revocations == []


def test_bob_cannot_revoke_alices_session(app, alice_twice, revocations):
    firefox, _ = alice_twice
    alices = handle_of(firefox)
    bob = logged_in(app, 'bob')
    token = token_of(bob)
    bob.post(
        '/sessions/revoke', {'handle': alices, 'csrf_token': token}, status=404
    )
    bob.post(
        '/sessions/revoke',
        {'handle': alices},
        headers={'X-CSRF-Token': token, **JSON},
        status=404,
    )
    assert user_of(firefox) == 'alice'
    assert alices in {
        e['handle'] for e in firefox.get('/mine').json['sessions']
    }
    assert user_of(bob) == 'bob'
    assert revocations == []


@pytest.mark.parametrize(
    'fields',
    [{}, {'scope': 'nobody'}, {'scope': 'all', 'handle': 'x' * 22}],
)
def test_a_revocation_names_a_session_or_a_scope(
    alice_twice, redis_client, fields
):
    firefox, iphone = alice_twice
    before = session_keys(redis_client)
    fields = dict(fields, csrf_token=token_of(firefox))
    firefox.post('/sessions/revoke', fields, status=400)
    assert session_keys(redis_client) == before
    assert user_of(iphone) == 'alice'


def test_an_unknown_handle_is_not_found(alice_twice, revocations):
    firefox, iphone = alice_twice
    token = token_of(firefox)
    for handle in ('A' * 22, '<script>', 'x' * 500):
        res = firefox.post(
            '/sessions/revoke',
            {'handle': handle, 'csrf_token': token},
            status=404,
        )
        assert '<script>' not in res.text
    assert revocations == []
    assert user_of(iphone) == 'alice'


def test_revoking_this_session_signs_out(alice_twice, redis_client):
    firefox, iphone = alice_twice
    page = firefox.get('/sessions')
    res = form_with(page, handle=handle_of(firefox)).submit()
    assert res.status_int == 303
    assert res.location == 'http://localhost/'
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    assert 'main' not in firefox.cookies
    assert user_of(firefox) is None
    assert user_of(iphone) == 'alice'
    assert len(session_keys(redis_client)) == 1
    firefox.get('/sessions', status=403)


class TicketPolicy(SessionSecurityPolicy):
    """Also keeps an authentication cookie, as many applications do."""

    def forget(self, request, **kw):
        return [('Set-Cookie', 'ticket=; Max-Age=0; Path=/')]


@pytest.mark.parametrize('fields', [{'scope': 'all'}, {'handle': None}])
def test_signing_out_here_forgets_the_user(redis_url, fields):
    config = views_config(redis_url)
    config.commit()
    config.set_security_policy(TicketPolicy())
    browser = logged_in(config.make_wsgi_app(), 'alice')
    page = browser.get('/sessions')
    if 'handle' in fields:
        res = form_with(page, handle=handle_of(browser)).submit()
    else:
        res = confirm_all(page)
    cookies = res.headers.getall('Set-Cookie')
    assert 'ticket=; Max-Age=0; Path=/' in cookies
    assert user_of(browser) is None
    # as JSON too
    browser = logged_in(browser.app, 'alice')
    res = browser.post(
        '/sessions/revoke',
        {'scope': 'all'},
        headers={'X-CSRF-Token': token_of(browser), **JSON},
    )
    assert res.json == {'revoked': 1}
    cookies = res.headers.getall('Set-Cookie')
    assert 'ticket=; Max-Age=0; Path=/' in cookies
    assert any(c.startswith('main=;') for c in cookies)
    assert user_of(browser) is None


def test_sign_out_everywhere(app, alice_twice, redis_client, tracker):
    firefox, iphone = alice_twice
    bob = logged_in(app, 'bob')
    page = firefox.get('/sessions')
    res = confirm_all(page)
    assert res.status_int == 303
    assert res.location == 'http://localhost/'
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    assert user_of(firefox) is None and user_of(iphone) is None
    assert user_of(bob) == 'bob'
    # no session left for alice, and no new anonymous one was made
    [key] = session_keys(redis_client)
    assert '{' + user_tag('bob') + '}' in key
    assert tracker.index.count('alice') == 0
    firefox.get('/sessions', status=403)


def test_anonymous_requests_are_forbidden(app, alice_twice, redis_client):
    firefox, iphone = alice_twice
    anonymous = client(app)
    anonymous.get('/sessions', status=403)
    anonymous.get('/sessions', headers=JSON, status=403)
    # even with a valid CSRF token
    token = token_of(anonymous)
    before = session_keys(redis_client)
    anonymous.post(
        '/sessions/revoke', {'scope': 'all', 'csrf_token': token}, status=403
    )
    anonymous.post(
        '/sessions/revoke',
        {'handle': handle_of(firefox), 'csrf_token': token},
        status=403,
    )
    assert session_keys(redis_client) == before
    assert user_of(firefox) == 'alice' and user_of(iphone) == 'alice'
    # and so is a browser that logged out
    firefox.get('/logout')
    firefox.get('/sessions', status=403)


def test_user_agents_are_escaped(app, redis_client):
    evil = (
        '<script>alert(1)</script> "><img src=x onerror=alert(2)> '
        '&amp; Mozilla/5.0'
    )
    browser = logged_in(app, 'alice', evil)
    admin = logged_in(app, 'admin')
    assert browser.get('/mine').json['sessions'][0]['ua'] == evil
    for res in (
        browser.get('/sessions'),
        admin.get('/sessions/users/alice'),
    ):
        assert res.content_type == 'text/html'
        assert '<script' not in res.text
        assert '<img' not in res.text
        assert (
            '&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x '
            'onerror=alert(2)&gt; &amp;amp; Mozilla/5.0'
        ) in res.text
    # JSON carries it verbatim, as JSON
    [entry] = browser.get('/sessions', headers=JSON).json['sessions']
    assert entry['ua'] == evil


# -- the administrator's page ------------------------------------------------


def test_an_admin_lists_and_revokes_a_users_sessions(
    app, alice_twice, redis_client, revocations, tracker
):
    firefox, iphone = alice_twice
    admin = logged_in(app, 'admin')
    page = admin.get('/sessions/users/alice')
    assert '<h1>Sessions of alice</h1>' in page.text
    assert 'this device' not in page.text
    [safari_row, firefox_row] = rows(page)
    assert 'Safari on iPhone' in safari_row
    assert 'Firefox on Linux' in firefox_row
    listing = admin.get('/sessions/users/alice', headers=JSON).json
    assert listing['userid'] == 'alice' and listing['current'] is None
    assert [e['handle'] for e in listing['sessions']] == [
        handle_of(iphone),
        handle_of(firefox),
    ]
    # one session
    res = form_with(page, handle=handle_of(iphone)).submit()
    assert res.status_int == 303
    assert res.location == 'http://localhost/sessions/users/alice'
    assert 'Revoked 1 session of alice.' in res.follow().text
    assert user_of(iphone) is None and user_of(firefox) == 'alice'
    assert revocations[-1].reason == 'admin'
    assert revocations[-1].count == 1
    # all of them (the page was reloaded: a fresh form)
    page = admin.get('/sessions/users/alice')
    confirm_all(page)
    assert user_of(firefox) is None
    assert tracker.index.count('alice') == 0
    assert (revocations[-1].reason, revocations[-1].handles) == ('admin', ())
    assert user_of(admin) == 'admin'
    assert len(session_keys(redis_client)) == 1  # the admin's
    # a user without sessions: an empty table
    page = admin.get('/sessions/users/alice')
    assert 'No active sessions.' in page.text
    assert admin.get('/sessions/users/nobody', headers=JSON).json == {
        'userid': 'nobody',
        'current': None,
        'sessions': [],
    }


def test_an_admin_revokes_with_json(app, alice_twice, tracker):
    firefox, iphone = alice_twice
    admin = logged_in(app, 'admin')
    headers = {'X-CSRF-Token': token_of(admin), **JSON}
    res = admin.post_json(
        '/sessions/users/alice/revoke',
        {'handle': handle_of(firefox)},
        headers=headers,
    )
    assert res.json == {'revoked': 1}
    admin.post_json(
        '/sessions/users/alice/revoke',
        {'handle': handle_of(iphone), 'scope': 'all'},
        headers=headers,
        status=400,
    )
    admin.post_json(
        '/sessions/users/alice/revoke',
        {'scope': 'others'},  # not for administrators
        headers=headers,
        status=400,
    )
    admin.post_json(
        '/sessions/users/alice/revoke',
        {'handle': 'A' * 22},
        headers=headers,
        status=404,
    )
    assert user_of(iphone) == 'alice'
    res = admin.post_json(
        '/sessions/users/alice/revoke', {'scope': 'all'}, headers=headers
    )
    assert res.json == {'revoked': 1}
    assert user_of(iphone) is None
    assert tracker.index.count('alice') == 0


def test_an_admin_revoking_their_own_session_is_signed_out(app):
    admin = logged_in(app, 'admin')
    page = admin.get('/sessions/users/admin')
    assert 'this device' in page.text
    confirmation = page.click(href='/revoke-all$')
    assert 'Yours is one of them: you will be signed out.' in confirmation
    res = form_with(confirmation, scope='all').submit()
    assert res.location == 'http://localhost/'
    assert 'Max-Age=0' in res.headers['Set-Cookie']
    assert user_of(admin) is None


def test_the_admin_pages_need_the_permission(app, alice_twice, redis_client):
    firefox, iphone = alice_twice
    bob = logged_in(app, 'bob')
    browsers = [firefox, bob, client(app)]  # the last one is anonymous
    tokens = [token_of(browser) for browser in browsers]
    bobs = handle_of(bob)
    before = session_keys(redis_client)
    for browser, token in zip(browsers, tokens, strict=True):
        browser.get('/sessions/users/alice', status=403)
        browser.get('/sessions/users/bob', headers=JSON, status=403)
        browser.post(
            '/sessions/users/alice/revoke',
            {'scope': 'all', 'csrf_token': token},
            status=403,
        )
        browser.post(
            '/sessions/users/bob/revoke',
            {'handle': bobs, 'csrf_token': token},
            status=403,
        )
    assert session_keys(redis_client) == before
    assert user_of(firefox) == 'alice' and user_of(iphone) == 'alice'
    assert user_of(bob) == 'bob'


def test_the_admin_post_needs_the_token_too(app, alice_twice, redis_client):
    firefox, _ = alice_twice
    admin = logged_in(app, 'admin')
    before = session_keys(redis_client)
    admin.post('/sessions/users/alice/revoke', {'scope': 'all'}, status=400)
    admin.post(
        '/sessions/users/alice/revoke',
        {'scope': 'all', 'csrf_token': 'wrong'},
        status=400,
    )
    assert session_keys(redis_client) == before
    assert user_of(firefox) == 'alice'


# -- configuration -------------------------------------------------------


def test_the_views_are_off_by_default(redis_url):
    app = make_config(redis_url).make_wsgi_app()
    browser = logged_in(app, 'alice')
    browser.get('/sessions', status=404)
    browser.get('/sessions/users/alice', status=404)


def test_the_route_prefix(redis_url):
    config = views_config(
        redis_url,
        **{'session_suite.user_index.route_prefix': '/account/sessions/'},
    )
    browser = logged_in(config.make_wsgi_app(), 'alice')
    browser.get('/sessions', status=404)
    page = browser.get('/account/sessions')
    [form] = [f for f in page.forms.values() if 'scope' in f.fields][:1]
    assert form.action == '/account/sessions/revoke'
    form.submit()
    assert browser.get('/account/sessions', headers=JSON).json['sessions']


def test_the_admin_permission_setting(redis_url):
    config = views_config(
        redis_url, **{'session_suite.user_index.admin_permission': 'other'}
    )
    app = config.make_wsgi_app()
    alice = logged_in(app, 'alice')
    # the test policy grants any permission but session_suite.admin to
    # anyone logged in
    bob = logged_in(app, 'bob')
    listing = bob.get('/sessions/users/alice', headers=JSON).json
    assert [e['label'] for e in listing['sessions']] == ['Firefox on Linux']
    client(app).get('/sessions/users/alice', status=403)
    bob.post(
        '/sessions/users/alice/revoke',
        {'scope': 'all', 'confirm': 'yes', 'csrf_token': token_of(bob)},
    )
    assert user_of(alice) is None


def test_the_views_need_the_user_index():
    config = Configurator()
    config.include('pyramid_session_suite.user_index.views')
    with pytest.raises(ConfigurationError, match='needs the user index'):
        config.commit()


# -- wording -------------------------------------------------------------


@pytest.mark.parametrize(
    ('seconds', 'text'),
    [
        (0, 'just now'),
        (59, 'just now'),
        (60, '1 minute ago'),
        (150, '2 minutes ago'),
        (3600, '1 hour ago'),
        (2 * 86400 + 5, '2 days ago'),
        (400 * 86400, '1 year ago'),
        (-30, 'just now'),
    ],
)
def test_relative_times(seconds, text):
    assert ago(seconds) == text


def test_durations():
    assert duration(30) == 'less than a minute'
    assert duration(1199) == '19 minutes'
    assert duration(14 * 86400) == '2 weeks'


def test_deadlines_hours_away_say_their_minutes():
    assert countdown(1199) == '19 minutes'
    assert countdown(3600) == '1 hour'
    assert countdown(7199) == '1 hour 59 minutes'
    assert countdown(3 * 3600 + 60) == '3 hours 1 minute'
    assert countdown(86400 * 29) == '4 weeks'
    assert countdown(-5) == 'less than a minute'


# -- confirming "sign out everywhere" and "revoke all" -----------------------


def test_sign_out_everywhere_asks_first(
    alice_twice, redis_client, revocations
):
    firefox, iphone = alice_twice
    before = session_keys(redis_client)
    page = firefox.get('/sessions')
    # a GET asks, and changes nothing
    res = page.click(href='/revoke-all$')
    assert res.status_int == 200
    assert '<h1>Sign out everywhere?</h1>' in res.text
    assert 'This signs out all 2 sessions of your account' in res.text
    assert res.headers['Cache-Control'] == 'no-store'
    assert res.headers['X-Frame-Options'] == 'DENY'
    form = form_with(res, scope='all', confirm='yes')
    assert form.method.upper() == 'POST'
    assert form.action == '/sessions/revoke'
    assert form['csrf_token'].value == token_of(firefox)
    assert '<a class="button" href="/sessions">Cancel</a>' in res.text
    assert session_keys(redis_client) == before
    # a POST with the token but without the confirmation changes nothing:
    # it is sent to the question
    res = firefox.post(
        '/sessions/revoke', {'scope': 'all', 'csrf_token': token_of(firefox)}
    )
    assert res.status_int == 303
    assert res.location == 'http://localhost/sessions/revoke-all'
    # with the confirmation but without the token: refused
    firefox.post('/sessions/revoke', {'scope': 'all', 'confirm': 'yes'},
                 status=400)  # fmt: skip
    assert session_keys(redis_client) == before
    assert user_of(firefox) == 'alice' and user_of(iphone) == 'alice'
    assert revocations == []
    # the confirmed POST does it
    res = form.submit()
    assert res.status_int == 303 and res.location == 'http://localhost/'
    assert user_of(firefox) is None and user_of(iphone) is None
    assert session_keys(redis_client) == []
    [event] = revocations
    assert (event.reason, event.count) == ('revoked', 2)


def test_the_admin_confirms_revoke_all(app, alice_twice, redis_client):
    firefox, iphone = alice_twice
    admin = logged_in(app, 'admin')
    before = session_keys(redis_client)
    page = admin.get('/sessions/users/alice')
    assert 'aria-label="Revoke all sessions of alice"' in page.text
    res = page.click(href='/revoke-all$')
    assert '<h1>Revoke all sessions of alice?</h1>' in res.text
    assert 'This ends all 2 sessions of alice' in res.text
    assert 'you will be signed out' not in res.text
    form = form_with(res, scope='all', confirm='yes')
    assert form.action == '/sessions/users/alice/revoke'
    # unconfirmed: sent to the question; without the token: refused
    res = admin.post(
        '/sessions/users/alice/revoke',
        {'scope': 'all', 'csrf_token': token_of(admin)},
        status=303,
    )
    assert res.location == 'http://localhost/sessions/users/alice/revoke-all'
    admin.post(
        '/sessions/users/alice/revoke',
        {'scope': 'all', 'confirm': 'yes'},
        status=400,
    )
    # only an administrator may even ask
    firefox.get('/sessions/users/alice/revoke-all', status=403)
    client(app).get('/sessions/users/alice/revoke-all', status=403)
    assert session_keys(redis_client) == before
    assert user_of(firefox) == 'alice' and user_of(iphone) == 'alice'
    res = form.submit().follow()
    assert 'Revoked 2 sessions of alice.' in res.text
    assert 'No active sessions.' in res.text
    assert user_of(firefox) is None and user_of(iphone) is None
    assert user_of(admin) == 'admin'


def test_json_clients_confirm_on_their_own(alice_twice, tracker):
    firefox, iphone = alice_twice
    res = firefox.post_json(
        '/sessions/revoke',
        {'scope': 'all'},
        headers={'X-CSRF-Token': token_of(firefox), **JSON},
    )
    assert res.json == {'revoked': 2}
    assert tracker.index.count('alice') == 0


# -- who may not: a page that says what to do --------------------------------


def test_anonymous_browsers_are_asked_to_sign_in(app, alice_twice):
    anonymous = client(app)
    for path in ('/sessions', '/sessions/revoke-all'):
        res = anonymous.get(
            path, headers={'Accept': BROWSER_ACCEPT}, status=403
        )
        assert res.content_type == 'text/html'
        assert '<h1>Sign in to see your sessions</h1>' in res.text
        assert 'Sign in to the site, then come back' in res.text
        assert 'failed permission check' not in res.text
        assert res.headers['Cache-Control'] == 'no-store'
        assert res.headers['X-Frame-Options'] == 'DENY'
        assert 'Set-Cookie' not in res.headers  # no session made for it
    res = anonymous.get('/sessions/users/alice', status=403)
    assert '<h1>Sign in</h1>' in res.text
    assert 'This page is for administrators: sign in first.' in res.text
    # JSON clients get Pyramid's own answer
    res = anonymous.get('/sessions', headers=JSON, status=403)
    assert res.content_type == 'application/json'
    assert res.json['code'] == '403 Forbidden'


@pytest.mark.parametrize(
    ('settings', 'url'),
    [
        ({'session_suite.user_index.login_url': '/login'}, '/login'),
        (
            {'session_suite.user_index.login_url': 'https://id.example/in'},
            'https://id.example/in',
        ),
        (
            {
                'include': 'pyramid_session_suite.policy',
                'session_suite.policy.max_sessions': '0',
                'session_suite.policy.login_route': 'login',
            },
            '/login',
        ),
    ],
)
def test_the_sign_in_link(redis_url, settings, url):
    app = views_config(redis_url, **settings).make_wsgi_app()
    res = client(app).get('/sessions', status=403)
    if url.startswith('/'):
        url = 'http://localhost' + url
    assert f'<a class="button primary" href="{url}">Sign in</a>' in res.text
    assert 'Sign in to the site, then come back' not in res.text


def test_non_administrators_are_told_and_sent_home(app, alice_twice):
    firefox, _ = alice_twice
    for path in (
        '/sessions/users/alice',
        '/sessions/users/bob/revoke-all',
        '/sessions/users?userid=alice',
    ):
        res = firefox.get(path, status=403)
        assert '<h1>Administrators only</h1>' in res.text
        assert 'You are signed in as <strong>alice</strong>.' in res.text
        assert '<a class="button" href="/sessions">' in res.text
    res = firefox.post(
        '/sessions/users/bob/revoke',
        {'scope': 'all', 'confirm': 'yes', 'csrf_token': token_of(firefox)},
        status=403,
    )
    assert '<h1>Administrators only</h1>' in res.text


# -- the way around: back link, title, the admin pages -----------------------


def test_the_pages_lead_back_to_the_application(app, alice_twice):
    firefox, _ = alice_twice
    res = firefox.get('/sessions')
    assert '<title>Your sessions</title>' in res.text
    assert re.search(
        r'<a class="back" href="http://localhost/">.*Back to the site</a>',
        res.text,
    )
    # no administration for a user who is not an administrator
    assert 'Administration' not in res.text
    assert '/sessions/users' not in res.text


def test_the_page_title_and_back_link_settings(redis_url):
    config = views_config(
        redis_url,
        **{
            'session_suite.user_index.page_title': 'Devices',
            'session_suite.user_index.app_name': 'Example <Shop>',
            'session_suite.user_index.back_url': '/account',
        },
    )
    browser = logged_in(config.make_wsgi_app(), 'alice')
    res = browser.get('/sessions')
    assert '<title>Devices · Example &lt;Shop&gt;</title>' in res.text
    assert '<h1>Devices</h1>' in res.text
    assert re.search(
        r'<a class="back" href="http://localhost/account">'
        r'.*Back to Example &lt;Shop&gt;</a>',
        res.text,
    )
    # on every page, the 403 included
    res = client(browser.app).get('/sessions', status=403)
    assert 'href="http://localhost/account"' in res.text


def test_administrators_find_anyones_page_from_theirs(app, alice_twice):
    admin = logged_in(app, 'admin')
    page = admin.get('/sessions')
    assert '<h2 id="session-suite-admin">Administration</h2>' in page.text
    [lookup] = [f for f in page.forms.values() if 'userid' in f.fields]
    assert (lookup.method.upper(), lookup.action) == ('GET', '/sessions/users')
    lookup['userid'] = ' alice '
    res = lookup.submit()
    assert res.status_int == 303
    assert res.location == 'http://localhost/sessions/users/alice'
    res = res.follow()
    assert '<h1>Sessions of alice</h1>' in res.text
    assert len(rows(res)) == 2
    # and from there, another user, or back to their own sessions
    assert '<a href="/sessions">Your own sessions</a>' in res.text
    res = admin.get('/sessions/users')
    assert '<h1>Sessions of a user</h1>' in res.text
    res = admin.get('/sessions/users?userid=a/b')
    assert 'A user id cannot contain "/".' in res.text
    assert 'value="a/b"' in res.text
    admin.get('/sessions/users?userid=%ff', status=400)
    admin.get('/sessions/users?userid=x%3Cy', status=303)


# -- the real deadline -------------------------------------------------------


def policy_app(redis_url, **policy):
    settings = {
        f'session_suite.policy.{name}': str(value)
        for name, value in policy.items()
    }
    config = views_config(
        redis_url,
        include='pyramid_session_suite.policy',
        **{'session_suite.policy.max_sessions': '0', **settings},
    )
    return config.make_wsgi_app()


def expires_cell(row):
    """The text of the "Expires" cell of ``row``, and what follows it."""
    found = re.search(r'<td><time[^>]*>(in [^<]*)</time>(.*?)</td>', row)
    return found.group(1, 2)


def test_expires_is_the_idle_deadline_of_the_policy(redis_url):
    app = policy_app(redis_url, idle_timeout=120)
    firefox = logged_in(app, 'alice')
    remembered = client(app, IPHONE)
    remembered.get('/login?user=alice&remember=1')
    # the key lives 20 minutes, the policy ends it after 2 idle ones
    res = firefox.get('/sessions')
    phone, laptop = rows(res)
    text, note = expires_cell(laptop)
    assert text in ('in 1 minute', 'in 2 minutes')
    assert note == ''  # using the session moves it
    # a remembered login is spared the idle timeout: its key's 30 days
    # (all 30 of them when the listing comes within the login's
    # millisecond)
    assert expires_cell(phone) in (('in 4 weeks', ''), ('in 1 month', ''))
    listing = firefox.get('/sessions', headers=JSON).json
    phone, laptop = listing['sessions']
    assert 100 < laptop['expires_in'] <= 120
    assert phone['expires_in'] > 29 * 86400


def test_expires_is_the_absolute_deadline_of_the_policy(redis_url):
    app = policy_app(redis_url, absolute_timeout=600, idle_timeout=900)
    browser = logged_in(app, 'alice')
    [row] = rows(browser.get('/sessions'))
    text, note = expires_cell(row)
    assert text in ('in 9 minutes', 'in 10 minutes')
    assert note == '<span class="note">time limit</span>'
    [entry] = browser.get('/sessions', headers=JSON).json['sessions']
    assert 590 < entry['expires_in'] <= 600


def test_expires_without_the_policy_is_the_keys_ttl(alice_twice):
    firefox, _ = alice_twice
    for row in rows(firefox.get('/sessions')):
        text, note = expires_cell(row)
        assert text in ('in 19 minutes', 'in 20 minutes'), row
        assert note == ''


# -- restyling ----------------------------------------------------------

APP_SESSIONS = """\
<!DOCTYPE html>
<html metal:use-macro="layout.macros['layout']">
<metal:content fill-slot="content">
<p id="app-version">The application's own page for ${userid}.</p>
<metal:table use-macro="parts.macros['sessions_table']"/>
</metal:content>
</html>
"""

APP_LAYOUT = """\
<!DOCTYPE html>
<html lang="en" metal:define-macro="layout">
<head><title>${title} - Example</title></head>
<body class="example-shell">
<nav><a href="${page.back_url}">Example home</a></nav>
<h1>${title}</h1>
<p class="flash" tal:repeat="message flashes">${message}</p>
<metal:content define-slot="content"/>
</body>
</html>
"""


def test_an_application_overrides_a_template(redis_url, tmp_path):
    mine = tmp_path / 'my_sessions.pt'
    mine.write_text(APP_SESSIONS)
    config = views_config(redis_url)
    config.override_asset(
        to_override='pyramid_session_suite:templates/sessions.pt',
        override_with=str(mine),
    )
    app = config.make_wsgi_app()
    browser = logged_in(app, 'alice')
    evil = logged_in(app, 'alice', '<script>alert(1)</script>')
    res = browser.get('/sessions')
    assert (
        '<p id="app-version">The application\'s own page for alice.</p>'
        in res.text
    )
    assert 'These browsers and devices' not in res.text  # not ours
    assert len(rows(res)) == 2  # our table, our layout, still escaped
    assert '<h1>Your sessions</h1>' in res.text
    assert '<script>' not in res.text
    # the other pages are still the package's
    admin = logged_in(app, 'admin')
    assert 'app-version' not in admin.get('/sessions/users/alice').text
    # and another application is not affected
    other = logged_in(views_config(redis_url).make_wsgi_app(), 'alice')
    assert 'app-version' not in other.get('/sessions').text
    assert user_of(evil) == 'alice'


def test_an_application_brings_its_layout(redis_url, tmp_path):
    layout = tmp_path / 'layout.pt'
    layout.write_text(APP_LAYOUT)
    config = views_config(
        redis_url, **{'session_suite.user_index.layout': str(layout)}
    )
    app = config.make_wsgi_app()
    browser = logged_in(app, 'alice')
    res = browser.get('/sessions')
    assert '<title>Your sessions - Example</title>' in res.text
    assert '<body class="example-shell">' in res.text
    assert '<a href="http://localhost/">Example home</a>' in res.text
    assert len(rows(res)) == 1
    res = form_with(res, scope='others').submit().follow()
    assert '<p class="flash">Signed out 0 other sessions.</p>' in res.text
    res = client(app).get('/sessions', status=403)
    assert '<body class="example-shell">' in res.text


def test_the_layout_can_be_an_overridden_asset(redis_url, tmp_path):
    layout = tmp_path / 'layout.pt'
    layout.write_text(APP_LAYOUT)
    config = views_config(redis_url)
    config.override_asset(
        to_override='pyramid_session_suite:templates/layout.pt',
        override_with=str(layout),
    )
    browser = logged_in(config.make_wsgi_app(), 'alice')
    assert 'example-shell' in browser.get('/sessions').text


# -- in a real browser -------------------------------------------------------

CHROME = (
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
    '(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'
)


def home_view(request):
    return Response('<!DOCTYPE html><title>Example Shop</title><h1>Home</h1>')


def with_client_addr(app):
    """``app``, its client address taken from ``X-Test-Client`` (waitress
    drops ``X-Forwarded-For`` from untrusted proxies)."""

    def wrapped(environ, start_response):
        addr = environ.pop('HTTP_X_TEST_CLIENT', None)
        if addr:
            environ['REMOTE_ADDR'] = addr
        return app(environ, start_response)

    return wrapped


def test_the_pages_in_a_browser(browser, redis_url, city_db, artifacts):
    """Headless Chromium: alice on three devices, her page, the
    administrator's, the sign-in page, and signing out everywhere through
    the confirmation; screenshots in ``test-artifacts/``."""
    config = views_config(
        redis_url,
        include='pyramid_session_suite.policy',
        **{
            'session_suite.policy.max_sessions': '0',
            'session_suite.policy.idle_timeout': '600',
            'session_suite.policy.absolute_timeout': '7200',
            'session_suite.user_index.geoip_db': str(city_db),
            'session_suite.user_index.app_name': 'Example Shop',
            'session_suite.user_index.login_url': '/login?user=alice',
        },
    )
    config.add_route('home', '/')
    config.add_view(home_view, route_name='home')
    contexts = []

    def device(ua, ip, user='alice', remember=False):
        context = browser.new_context(
            user_agent=ua,
            extra_http_headers={'X-Test-Client': ip},
            viewport={'width': 1100, 'height': 640},
        )
        contexts.append(context)
        page = context.new_page()
        if user is not None:
            query = f'user={user}' + ('&remember=1' if remember else '')
            page.goto(f'{base}/login?{query}')
        return page

    def whoami(page):
        return page.context.request.get(base + '/whoami').json()['user']

    with serve(with_client_addr(config.make_wsgi_app())) as base:
        try:
            phone = device(IPHONE, '198.51.100.9')
            desktop = device(CHROME, '203.0.113.2', remember=True)
            laptop = device(FIREFOX, '81.2.69.160')
            # alice's page
            laptop.goto(base + '/sessions')
            assert laptop.title() == 'Your sessions · Example Shop'
            assert laptop.locator('tbody tr').count() == 3
            current = laptop.locator('tr.current')
            assert 'Firefox on Linux' in current.inner_text()
            assert 'London, United Kingdom' in current.inner_text()
            assert laptop.locator('.badge').inner_text() == 'this device'
            assert laptop.get_by_text('Administration').count() == 0
            laptop.screenshot(
                path=str(artifacts / 'user_index_sessions.png'),
                full_page=True,
            )
            # the administrator finds her page from theirs
            admin = device(CHROME, '203.0.113.50', user='admin')
            admin.goto(base + '/sessions')
            admin.get_by_label('User id').fill('alice')
            admin.get_by_role('button', name='Show sessions').click()
            admin.wait_for_url(base + '/sessions/users/alice')
            assert admin.locator('h1').inner_text() == 'Sessions of alice'
            assert admin.locator('tbody tr').count() == 3
            admin.screenshot(
                path=str(artifacts / 'user_index_admin.png'), full_page=True
            )
            # a browser that is not signed in is told to sign in
            anonymous = device(FIREFOX, '198.51.100.77', user=None)
            response = anonymous.goto(base + '/sessions')
            assert response.status == 403
            link = anonymous.get_by_role('link', name='Sign in')
            assert link.get_attribute('href') == base + '/login?user=alice'
            anonymous.screenshot(
                path=str(artifacts / 'user_index_sign_in.png'), full_page=True
            )
            # "Sign out everywhere" asks first
            laptop.get_by_role('link', name='Sign out everywhere…').click()
            laptop.wait_for_url(base + '/sessions/revoke-all')
            assert laptop.locator('h1').inner_text() == 'Sign out everywhere?'
            laptop.screenshot(
                path=str(artifacts / 'user_index_confirm.png'), full_page=True
            )
            assert [whoami(p) for p in (phone, desktop, laptop)] == [
                'alice'
            ] * 3
            laptop.get_by_role('button', name='Sign out everywhere').click()
            laptop.wait_for_url(base + '/')
            assert laptop.locator('h1').inner_text() == 'Home'
            assert [whoami(p) for p in (phone, desktop, laptop)] == [None] * 3
            assert whoami(admin) == 'admin'
        finally:
            for context in contexts:
                context.close()
    for name in ('sessions', 'admin', 'sign_in', 'confirm'):
        assert (artifacts / f'user_index_{name}.png').stat().st_size > 5000
