"""Users upgrade in place: sessions and user index entries written by the
previous releases (:mod:`.previous_release`) keep working beside the
sessions this release writes: nobody is logged out, the index lists,
counts and revokes them, and their browsers are told why they ended."""

import pytest
from webtest import TestApp

from pyramid_session_suite.interfaces import IUserIndex
from pyramid_session_suite.redis import login_records as lr
from pyramid_session_suite.redis.stored import unpack

from . import previous_release as previous
from .conftest import ended_reason, live_keys, stored
from .test_policy import policy_app
from .usersapp import FIREFOX, IPHONE, add_plain_views, make_config

FORMS = ['records', 'json']


def browser(app, ua=FIREFOX, ip='198.51.100.7'):
    return TestApp(
        app, extra_environ={'HTTP_USER_AGENT': ua, 'REMOTE_ADDR': ip}
    )


def signed_in(app, sid, **kw):
    """A browser holding the cookie of the session ``sid``."""
    tracker = app.registry.getUtility(IUserIndex)
    old = browser(app, **kw)
    old.set_cookie('main', tracker.factory.cookie_signer.dumps(sid).decode())
    return old


@pytest.fixture
def app(redis_url):
    return make_config(redis_url).make_wsgi_app()


@pytest.mark.parametrize('form', FORMS)
def test_a_user_logged_in_before_the_upgrade_stays_logged_in(
    app, redis_client, form
):
    sid = previous.login(redis_client, 'alice', data={'n': 4}, form=form)
    old = signed_in(app, sid)
    assert old.get('/whoami').json == {'user': 'alice', 'n': 4, 'ended': None}
    mine = old.get('/mine').json
    [entry] = mine['sessions']
    assert mine['current'] == entry['handle'] == previous.handle_of(sid)
    assert (entry['label'], entry['ip']) == (
        'Firefox on Linux',
        '198.51.100.7',
    )
    # its writes keep the session where it is, and its cookie
    res = old.get('/whoami?write=1')
    assert 'Set-Cookie' not in res.headers
    assert stored(redis_client, sid)['m']['n'] == 5
    assert old.get('/whoami').json['user'] == 'alice'


def test_its_activity_is_recorded_where_it_was(redis_url, redis_client):
    app = make_config(
        redis_url, **{'session_suite.user_index.touch_interval': '0'}
    ).make_wsgi_app()
    sid = previous.login(redis_client, 'alice', age=120)
    before = previous.handle_of(sid)
    moved = signed_in(app, sid, ip='203.0.113.9')
    moved.get('/whoami')
    [entry] = moved.get('/mine').json['sessions']
    assert entry['handle'] == before
    assert entry['ip'] == '203.0.113.9'
    assert entry['last_seen'] > entry['created'] + 100


@pytest.mark.parametrize('form', FORMS)
def test_old_and_new_sessions_are_listed_and_revoked_together(
    app, redis_client, form
):
    sid = previous.login(redis_client, 'alice', form=form)
    old = signed_in(app, sid)
    iphone = browser(app, ua=IPHONE, ip='198.51.100.9')
    iphone.get('/login?user=alice')
    listing = iphone.get('/mine').json
    labels = [e['label'] for e in listing['sessions']]
    assert labels == ['Safari on iPhone', 'Firefox on Linux']
    assert listing['current'] == listing['sessions'][0]['handle']
    # from the new session, the old one is revoked and told why
    res = iphone.get(f'/mine?do=revoke&handle={previous.handle_of(sid)}')
    assert res.json == {'count': 1}
    assert old.get('/whoami').json == {
        'user': None,
        'n': None,
        'ended': 'revoked',
    }
    assert [e['label'] for e in iphone.get('/mine').json['sessions']] == [
        'Safari on iPhone'
    ]


def test_sign_out_everywhere_ends_old_sessions_too(app, redis_client):
    olds = [previous.login(redis_client, 'alice') for _ in range(2)]
    new = browser(app)
    new.get('/login?user=alice')
    assert len(new.get('/mine').json['sessions']) == 3
    assert new.get('/mine?do=all').json == {'count': 3}
    for sid in olds:
        assert ended_reason(redis_client, sid) == 'revoked'
    assert live_keys(redis_client, 'session_suite:main:*') == []
    assert redis_client.keys('session_suite:users:*') == []


def test_a_session_ended_before_the_upgrade_says_why(app, redis_client):
    sid = previous.login(redis_client, 'alice')
    previous.ended(redis_client, sid, 'displaced')
    old = signed_in(app, sid)
    res = old.get('/whoami')
    assert res.json['ended'] == 'displaced'
    assert 'Max-Age=0' in res.headers['Set-Cookie']


def test_logging_out_of_an_old_session(app, redis_client):
    sid = previous.login(redis_client, 'alice')
    old = signed_in(app, sid)
    old.get('/logout')
    assert ended_reason(redis_client, sid) == 'logout'
    assert old.get('/whoami').json['user'] is None
    assert redis_client.keys('session_suite:users:*') == []


def test_logging_in_again_moves_an_old_session_to_this_releases_form(
    app, redis_client
):
    sid = previous.login(redis_client, 'alice', data={'cart': [1, 2]})
    old = signed_in(app, sid)
    old.get('/login?user=alice')
    assert redis_client.exists(sid) == 0
    [key] = live_keys(redis_client, 'session_suite:main:*')
    assert key.endswith(':0')
    data = stored(redis_client, key)['m']
    assert data['cart'] == [1, 2] and '_session_suite' not in data
    [entry] = old.get('/mine').json['sessions']
    assert entry['current']
    # the old index entry went with it
    assert redis_client.keys('session_suite:users:*') == []


def test_old_sessions_count_toward_the_limit(redis_url, redis_client):
    app, tracker = policy_app(redis_url, lock_seconds='0')
    sid = previous.login(redis_client, 'alice', age=30)
    old = signed_in(app, sid)
    new = browser(app)
    new.get('/login?user=alice')
    assert tracker.index.count('alice') == 1
    assert ended_reason(redis_client, sid) == 'displaced'
    res = old.get('/', status=401)
    assert res.headers['X-Session-Ended'] == 'displaced'


def test_a_recent_old_session_locks_out_a_new_login(redis_url, redis_client):
    app, tracker = policy_app(redis_url)
    sid = previous.login(redis_client, 'alice')
    res = browser(app).get('/login?user=alice', status=409)
    assert 0 < int(res.headers['Retry-After']) <= 300
    assert stored(redis_client, sid)['m']['auth.userid'] == 'alice'
    assert tracker.index.count('alice') == 1


def test_the_absolute_timeout_of_an_old_session_holds(redis_url, redis_client):
    app, tracker = policy_app(redis_url, absolute_timeout='100')
    sid = previous.login(redis_client, 'alice', absolute=100, age=200)
    res = signed_in(app, sid).get('/', status=401)
    assert res.headers['X-Session-Ended'] == 'absolute'
    assert ended_reason(redis_client, sid) == 'expired'


# -- the release before: a login's facts in records of their own ------------


def session_key(app, browser):
    tracker = app.registry.getUtility(IUserIndex)
    sid = tracker.factory.session_id_from_cookie(browser.cookies['main'])
    return lr.redis_key(sid)


def listed(browser):
    """The one session listed to ``browser``, but for its seconds left."""
    [entry] = browser.get('/mine').json['sessions']
    del entry['expires_in']
    return entry


def stored_names(client, key):
    return set(unpack(client.get(key))[1])


def test_a_login_stored_fact_by_fact_keeps_working(app, redis_client):
    firefox = browser(app)
    firefox.get('/login?user=alice')
    firefox.get('/whoami?write=1')
    key = session_key(app, firefox)
    before = listed(firefox)
    facts = previous.fact_by_fact(redis_client, key)
    assert lr.LOGIN_RECORD not in stored_names(redis_client, key)
    assert {lr.LOGIN, lr.ACTIVE, lr.SECRET} <= stored_names(redis_client, key)
    # read as before: the same user, data, handle and listing
    res = firefox.get('/whoami')
    assert res.json == {'user': 'alice', 'n': 1, 'ended': None}
    assert 'Set-Cookie' not in res.headers
    assert listed(firefox) == before
    # a write of the session's data leaves its facts as they are
    firefox.get('/whoami?write=1')
    assert stored_names(redis_client, key) >= set(facts)
    # a change of a fact stores the login as one record
    moved = browser(app, ip='203.0.113.9')
    moved.set_cookie('main', firefox.cookies['main'])
    assert moved.get('/whoami').json == {
        'user': 'alice',
        'n': 2,
        'ended': None,
    }
    names = stored_names(redis_client, key)
    assert lr.LOGIN_RECORD in names
    assert not names & {lr.SECRET, *lr.INDEX_RECORDS}
    [entry] = moved.get('/mine').json['sessions']
    assert entry['ip'] == '203.0.113.9'
    assert entry['handle'] == before['handle']
    assert entry['created'] == before['created']
    assert moved.get('/whoami').json['n'] == 2


def test_a_login_stored_fact_by_fact_is_listed_and_revoked(app, redis_client):
    firefox = browser(app)
    firefox.get('/login?user=alice')
    key = session_key(app, firefox)
    iphone = browser(app, ua=IPHONE, ip='198.51.100.9')
    iphone.get('/login?user=alice')
    previous.fact_by_fact(redis_client, key)
    listing = iphone.get('/mine').json
    assert [e['label'] for e in listing['sessions']] == [
        'Safari on iPhone',
        'Firefox on Linux',
    ]
    old = listing['sessions'][1]['handle']
    assert iphone.get(f'/mine?do=revoke&handle={old}').json == {'count': 1}
    assert firefox.get('/whoami').json == {
        'user': None,
        'n': None,
        'ended': 'revoked',
    }


def test_a_forgotten_login_keeps_its_secret_alone(redis_url, redis_client):
    config = make_config(redis_url)
    add_plain_views(config)  # forget() alone, no logout()
    app = config.make_wsgi_app()
    firefox = browser(app)
    firefox.get('/login?user=alice')
    key = session_key(app, firefox)
    previous.fact_by_fact(redis_client, key)
    firefox.get('/plain-logout')
    own = {
        name for name in stored_names(redis_client, key) if name[:1] == b'\xff'
    }
    assert own == {lr.SECRET}
    assert firefox.get('/whoami').json['user'] is None
