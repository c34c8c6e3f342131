"""The "Your sessions" and admin views of the user index, against a real
Redis server: every test checks what Redis holds or what later requests
see, not only status codes."""

import re
from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.exceptions import ConfigurationError
import pytest
from webtest import TestApp

from pyramid_session_suite.events import SessionRevoked
from pyramid_session_suite.index import user_tag
from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.login_records import redis_key, split_id
from pyramid_session_suite.user_index_views import (
    ago,
    duration,
    wants_json,
)

from .conftest import ended_reason, live_keys
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
    # every form carries the CSRF token of the session
    token = token_of(firefox)
    assert len(res.forms) == 4
    assert all(f['csrf_token'].value == token for f in res.forms.values())
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
        ('application/json, text/plain, */*', True),
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


def test_wants_json_without_a_header():
    from pyramid.request import Request

    assert wants_json(Request.blank('/')) is False


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
    if 'handle' in fields:
        fields = {'handle': handle_of(browser)}
    form = form_with(browser.get('/sessions'), **fields)
    cookies = form.submit().headers.getall('Set-Cookie')
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
    res = form_with(page, scope='all').submit()
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
    form_with(page, scope='all').submit()
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
    res = form_with(page, scope='all').submit()
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
        {'scope': 'all', 'csrf_token': token_of(bob)},
    )
    assert user_of(alice) is None


def test_the_views_need_the_user_index():
    config = Configurator()
    config.include('pyramid_session_suite.user_index_views')
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
