"""Cross-domain session sharing: the flows through WebTest, and every
reason a token is refused."""

import json
import os
import time
from urllib.parse import parse_qs, urlsplit
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyramid.exceptions import ConfigurationError
import pytest
from redis.crc import key_slot
from webtest import TestApp

from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY
from pyramid_session_suite.crossdomain.tokens import (
    _AAD,
    BadPayload,
    BadSignature,
    BadSource,
    ExpiredToken,
    FutureToken,
    MalformedToken,
    StateMismatch,
    TokenCodec,
    TokenError,
    UnknownVersion,
    WrongDestination,
    WrongFlow,
    _b64decode,
    _b64encode,
    derive_key,
    state_digest,
)
from pyramid_session_suite.events import SessionReplaced, TokenRejected

from .crossdomainapp import HUB, SITE, XD_SECRET, by_host, make_site

THIRD = 'https://www.site-c.test'


@pytest.fixture
def sites(redis_url):
    hub = make_site(redis_url, flows='redirect push script')
    site = make_site(redis_url, flows='redirect push script')
    return hub, site


@pytest.fixture
def events(sites):
    seen = []
    for app in sites:
        app.registry.registerHandler(seen.append, (SessionReplaced,))
        app.registry.registerHandler(seen.append, (TokenRejected,))
    return seen


@pytest.fixture
def browser(sites):
    hub, site = sites
    return TestApp(
        by_host({'www.site-a.test': hub, 'www.site-b.test': site}),
        extra_environ={'HTTP_ACCEPT': 'text/html'},
    )


def follow_all(res):
    while res.status_int in (302, 303):
        res = res.follow()
    return res


def test_the_redirect_flow_shares_the_login(browser, events):
    browser.get(HUB + '/login?user=alice')
    res = browser.get(SITE + '/page?x=1')
    assert res.status_int == 303
    assert res.location.startswith(HUB + '/_session_suite/xd/export?')
    res = res.follow()
    assert res.location.startswith(SITE + '/_session_suite/xd/import?')
    assert '&t=' in res.location
    res = res.follow()
    assert res.location == SITE + '/page?x=1'
    assert 'main=' in res.headers['Set-Cookie']
    assert res.headers['Referrer-Policy'] == 'no-referrer'
    res = res.follow()
    assert '<p id="user">alice</p>' in res.text
    [event] = [e for e in events if isinstance(e, SessionReplaced)]
    assert (event.src, event.dst, event.was_empty) == (HUB, SITE, True)
    # once shared, the browser may be bounced again later (after a logout)
    assert 'session_suite_xd_tried' not in browser.cookies


def test_no_session_at_the_hub_bounces_once(browser):
    res = follow_all(browser.get(SITE + '/page'))
    assert '<p id="user">anonymous</p>' in res.text
    # the browser is not bounced again for a while
    res = browser.get(SITE + '/page')
    assert res.status_int == 200


def test_requests_that_are_not_page_views_are_not_bounced(browser):
    browser.get(HUB + '/login?user=alice')
    assert browser.post(SITE + '/page', status=200)
    assert browser.get(SITE + '/page', xhr=True).status_int == 200
    res = browser.get(SITE + '/page', headers={'Accept': 'application/json'})
    assert res.status_int == 200
    res = browser.get(SITE + '/page', headers={'Sec-Fetch-Mode': 'cors'})
    assert res.status_int == 200


def test_the_push_flow(browser):
    browser.get(HUB + '/login?user=alice')
    start = SITE + '/_session_suite/xd/begin?next=' + HUB + '/page'
    res = follow_all(browser.get(start))
    assert '<p id="host">www.site-a.test</p>' in res.text
    assert '<p id="user">alice</p>' in browser.get(SITE + '/page').text


@pytest.mark.parametrize(
    'next_url',
    [
        'https://evil.example/',
        '//evil.example/x',
        'https://www.site-a.test@evil.example/',
        '/\\evil.example',
        'javascript:alert(1)',
        'https://www.site-a.test.evil.example/',
    ],
)
def test_next_urls_never_leave_the_group(browser, next_url):
    browser.get(HUB + '/login?user=alice')
    res = browser.get(SITE + '/_session_suite/xd/begin', {'next': next_url})
    while res.status_int in (302, 303):
        assert 'evil' not in res.location.split('?')[0]
        assert not res.location.startswith('javascript')
        last = res.location
        res = res.follow()
    assert last.startswith((SITE + '/', HUB + '/'))


def test_the_export_refuses_foreign_destinations(browser):
    browser.get(HUB + '/login?user=alice')
    for dst in ('https://evil.example', HUB, ''):
        res = browser.get(
            HUB + '/_session_suite/xd/export',
            {'dst': dst, 'state': 'x' * 32},
            status=400,
        )
        assert 'Set-Cookie' not in res.headers


def hijack(browser, events):
    """Take a token out of a redirect, as an eavesdropper would."""
    browser.get(HUB + '/login?user=alice')
    res = browser.get(SITE + '/page').follow()
    return res.location


def test_a_token_is_single_use(sites, browser, events, redis_client):
    """Even in the browser it was made for (two tabs, a double click)."""
    hub, site = sites
    browser.get(HUB + '/login?user=alice')
    [sid] = [k.decode() for k in redis_client.keys('session_suite:main:*')]
    state = 's' * 32
    token = hub.registry[CROSSDOMAIN_KEY].codec.mint(
        sid, HUB, SITE, state=state
    )
    tab = TestApp(site, extra_environ={'HTTP_HOST': 'www.site-b.test'})
    url = SITE + '/_session_suite/xd/import?next=/page&t=' + token
    cookie = {'Cookie': 'session_suite_xd_state=' + state}
    assert tab.get(url, headers=cookie).status_int == 303
    res = tab.get(url, headers=cookie, status=400)
    assert res.headers['X-Session-Suite-Reason'] == 'replayed'
    assert 'Set-Cookie' not in res.headers
    assert [e.reason for e in events if isinstance(e, TokenRejected)] == [
        'replayed'
    ]


def test_a_token_for_another_browser_is_refused(sites, browser, events):
    """Login CSRF: the attacker's token, redeemed in the victim's browser,
    does not sign the victim in as the attacker."""
    url = hijack(browser, events)  # the attacker's own browser
    hub, site = sites
    victim = TestApp(
        by_host({'www.site-a.test': hub, 'www.site-b.test': site}),
        extra_environ={'HTTP_ACCEPT': 'text/html'},
    )
    res = victim.get(url, status=400)
    assert res.headers['X-Session-Suite-Reason'] == 'state-mismatch'
    assert 'Set-Cookie' not in res.headers
    assert 'main' not in victim.cookies


def test_a_tampered_token_changes_nothing(browser, events, redis_client):
    url = hijack(browser, events)
    before = sorted(redis_client.keys('*'))
    token = url.split('&t=')[1].split('&')[0]
    raw = bytearray(_b64decode(token))
    raw[20] ^= 1
    bad = url.replace(token, _b64encode(bytes(raw)))
    res = browser.get(bad, status=400)
    assert res.headers['X-Session-Suite-Reason'] == 'bad-tag'
    assert 'Set-Cookie' not in res.headers
    assert sorted(redis_client.keys('*')) == before
    assert 'Traceback' not in res.text


def test_an_existing_session_is_kept_unless_always_replace(redis_url):
    for always, expected in (('false', 'bob'), ('true', 'alice')):
        hub = make_site(redis_url)
        site = make_site(redis_url, always_replace=always, flows='push')
        browser = TestApp(
            by_host({'www.site-a.test': hub, 'www.site-b.test': site}),
            extra_environ={'HTTP_ACCEPT': 'text/html'},
        )
        browser.get(HUB + '/login?user=alice')
        browser.get(SITE + '/login?user=bob')
        start = SITE + '/_session_suite/xd/begin?next=/page'
        res = follow_all(browser.get(start))
        assert f'<p id="user">{expected}</p>' in res.text


def test_the_script_loader(browser, sites):
    browser.get(HUB + '/login?user=alice')
    page = browser.get(HUB + '/page')
    assert page.headers['Cache-Control'] == 'private, no-store'
    [src] = [
        part.split('"')[0]
        for part in page.text.split('<script src="')[1:]
        if part.startswith(SITE)
    ]
    res = browser.get(src, headers={'Referer': HUB + '/page',
                                     'Sec-Fetch-Dest': 'script'})  # fmt: skip
    assert res.content_type == 'text/javascript'
    cookie = res.headers['Set-Cookie']
    assert 'SameSite=None' in cookie and '; secure' in cookie.lower()
    assert '<p id="user">alice</p>' in browser.get(SITE + '/page').text


def test_the_script_loader_refuses_images_and_strangers(browser, events):
    browser.get(HUB + '/login?user=alice')
    page = browser.get(HUB + '/page')
    src = page.text.split('<script src="')[1].split('"')[0]
    res = browser.get(src, headers={'Referer': HUB + '/',
                                     'Sec-Fetch-Dest': 'image'},
                      status=404)  # fmt: skip
    assert 'Set-Cookie' not in res.headers
    res = browser.get(src, headers={'Referer': 'https://evil.example/'},
                      status=404)  # fmt: skip
    assert res.headers['X-Session-Suite-Reason'] == 'referer'
    res = browser.get(src.replace('https://', 'http://'), status=404)
    assert 'Set-Cookie' not in res.headers
    assert res.headers['X-Session-Suite-Reason'] == 'insecure'
    reasons = [e.reason for e in events if isinstance(e, TokenRejected)]
    assert reasons == ['not-a-script', 'referer', 'insecure']


def test_only_the_hub_renders_the_loader(browser):
    browser.get(HUB + '/login?user=alice')
    page = follow_all(browser.get(SITE + '/page'))
    assert '<p id="user">alice</p>' in page.text
    assert '<script' not in page.text


def test_the_script_loader_is_off_by_default(redis_url):
    hub = make_site(redis_url)
    browser = TestApp(by_host({'www.site-a.test': hub}))
    browser.get(HUB + '/login?user=alice')
    assert '<script' not in browser.get(HUB + '/page').text


# --- a refused token changes nothing in Redis -----------------------------

STATE = 's' * 32


def seal(payload, dst=SITE):
    """A token holding any payload, sealed with the group's key for
    ``dst``."""
    nonce = os.urandom(12)
    data = json.dumps(payload).encode()
    sealed = AESGCM(derive_key(XD_SECRET)).encrypt(
        nonce, data, _AAD + dst.encode()
    )
    return _b64encode(b'\x01' + nonce + sealed)


def valid_payload(sid, flow='redirect'):
    return {
        'sid': sid,
        'src': HUB,
        'dst': SITE,
        'iat': round(time.time(), 3),
        'jti': _b64encode(os.urandom(16)),
        'flow': flow,
        'st': state_digest(STATE) if flow == 'redirect' else '',
    }


#: how each refusal of the import view is made, from a valid payload
REFUSALS = {
    'malformed': lambda p: 'not-a-token',
    'version': lambda p: _b64encode(b'\x02' + _b64decode(seal(p))[1:]),
    'bad-tag': lambda p: seal(p, dst=THIRD),
    'payload': lambda p: seal({k: v for k, v in p.items() if k != 'jti'}),
    'wrong-destination': lambda p: seal(dict(p, dst=THIRD)),
    'bad-source': lambda p: seal(dict(p, src='https://evil.example')),
    'expired': lambda p: seal(dict(p, iat=p['iat'] - 3600)),
    'from-the-future': lambda p: seal(dict(p, iat=p['iat'] + 3600)),
    'wrong-flow': lambda p: seal(dict(p, flow='script', st='')),
    'state-mismatch': lambda p: seal(dict(p, st=state_digest('another'))),
    'replayed': seal,  # redeemed once before
    'session-gone': lambda p: seal(dict(p, sid=p['sid'] + 'x')),
}


def redis_state(client):
    """Every key with its value, and how many changes the server has
    made so far (``rdb_changes_since_last_save``: every write counts, a
    TTL refresh included)."""
    keys = {key: client.dump(key) for key in client.keys('*')}
    return keys, client.info('persistence')['rdb_changes_since_last_save']


@pytest.fixture
def shared(sites, redis_client):
    """Alice's session at the hub (its id), and a tab on the site that has
    a session of its own there and the state cookie."""
    hub, site = sites
    browser = TestApp(hub, extra_environ={'HTTP_HOST': 'www.site-a.test'})
    browser.get(HUB + '/login?user=alice')
    [sid] = [k.decode() for k in redis_client.keys('session_suite:main:*')]
    tab = TestApp(site, extra_environ={'HTTP_HOST': 'www.site-b.test'})
    tab.get(SITE + '/login?user=bob', xhr=True)  # xhr: not bounced
    tab.set_cookie('session_suite_xd_state', STATE)
    return sid, tab


@pytest.mark.parametrize('reason', sorted(REFUSALS))
def test_a_refused_token_writes_nothing(reason, shared, events, redis_client):
    sid, tab = shared
    token = REFUSALS[reason](valid_payload(sid))
    url = f'{SITE}/_session_suite/xd/import?next=/page&t={token}'
    if reason == 'replayed':
        tab.get(url, status=303)
    before = redis_state(redis_client)
    res = tab.get(url, status=400)
    assert res.headers['X-Session-Suite-Reason'] == reason
    assert 'Set-Cookie' not in res.headers
    assert 'Retry-After' not in res.headers  # retrying cannot help
    assert redis_state(redis_client) == before
    rejected = [e.reason for e in events if isinstance(e, TokenRejected)]
    assert rejected == [reason]
    assert '<p id="user">bob</p>' in tab.get(SITE + '/page').text


#: how each refusal of the script loader is made: (payload change, request
#: headers, scheme)
SCRIPT_REFUSALS = {
    'insecure': ({}, {}, 'http'),
    'not-a-script': ({}, {'Sec-Fetch-Dest': 'image'}, 'https'),
    'referer': ({}, {'Referer': 'https://evil.example/'}, 'https'),
    'session-gone': ({'sid': 'session_suite:main:gone'}, {}, 'https'),
    'replayed': ({}, {}, 'https'),  # loaded once before
}


@pytest.mark.parametrize('reason', sorted(SCRIPT_REFUSALS))
def test_a_refused_script_token_writes_nothing(
    reason, shared, events, redis_client
):
    sid, tab = shared
    change, headers, scheme = SCRIPT_REFUSALS[reason]
    token = seal(dict(valid_payload(sid, flow='script'), **change))
    url = f'{scheme}://www.site-b.test/_session_suite/xd/s/{token}.js'
    headers = {'Referer': HUB + '/page', 'Sec-Fetch-Dest': 'script',
               **headers}  # fmt: skip
    if reason == 'replayed':
        tab.get(url, headers=headers, status=200)
    before = redis_state(redis_client)
    res = tab.get(url, headers=headers, status=404)
    assert res.headers['X-Session-Suite-Reason'] == reason
    assert 'Set-Cookie' not in res.headers
    assert 'Retry-After' not in res.headers
    assert redis_state(redis_client) == before
    rejected = [e.reason for e in events if isinstance(e, TokenRejected)]
    assert rejected == [reason]


def test_a_script_token_where_the_flow_is_off_writes_nothing(
    redis_url, redis_client
):
    site = make_site(redis_url)
    tab = TestApp(site, extra_environ={'HTTP_HOST': 'www.site-b.test'})
    token = seal(valid_payload('session_suite:main:x', flow='script'))
    before = redis_state(redis_client)
    res = tab.get(f'{SITE}/_session_suite/xd/s/{token}.js', status=404)
    assert res.headers['X-Session-Suite-Reason'] == 'flow-off'
    assert redis_state(redis_client) == before


def test_the_claim_is_one_script_that_writes_only_a_claim(
    sites, redis_url, round_trips
):
    hub, site = sites
    crossdomain = site.registry[CROSSDOMAIN_KEY]
    crossdomain.factory.redis = round_trips.client(redis_url)
    crossdomain.factory.redis.ping()
    browser = TestApp(
        by_host({'www.site-a.test': hub, 'www.site-b.test': site}),
        extra_environ={'HTTP_ACCEPT': 'text/html'},
    )
    browser.get(HUB + '/login?user=alice')
    res = browser.get(SITE + '/page').follow()  # to the hub and back
    round_trips.reset()
    res = res.follow()
    assert res.location == SITE + '/page'
    assert round_trips.trips == [['EVAL']]
    [(*_, claim, sid, holder, ttl)] = round_trips.raw[0]
    assert claim.startswith(b'session_suite:xd:jti:{')
    assert key_slot(claim) == key_slot(sid)
    assert holder.startswith(SITE.encode() + b' ')


def test_a_claim_sent_again_by_the_client_is_still_ours(redis_client):
    from pyramid_session_suite.crossdomain.views import CLAIM

    redis_client.set('session', 'data')
    claim = ('claim', 'session', 'holder', 40)
    assert redis_client.eval(CLAIM, 2, *claim) == 1
    assert redis_client.ttl('claim') == 40
    # the reply was lost and the client sent it again: still claimed
    assert redis_client.eval(CLAIM, 2, *claim) == 1
    assert redis_client.eval(CLAIM, 2, 'claim', 'session', 'thief', 40) == 0
    assert redis_client.eval(CLAIM, 2, 'other', 'gone', 'holder', 40) == -1
    assert redis_client.exists('other') == 0


# --- the token itself -----------------------------------------------------

SITES = (HUB, SITE, THIRD)


def codec(**kw):
    return TokenCodec([XD_SECRET], SITES, **kw)


def test_a_token_opens_at_its_destination_only():
    token = codec().mint('sid', HUB, SITE, state='s' * 20)
    payload = codec().open(token, SITE, state='s' * 20)
    assert payload['sid'] == 'sid' and payload['src'] == HUB
    with pytest.raises(BadSignature):
        codec().open(token, THIRD, state='s' * 20)


@pytest.mark.parametrize(
    'mutate, error',
    [
        (lambda t: '', MalformedToken),
        (lambda t: t + '!', MalformedToken),
        (lambda t: 'A' * 3000, MalformedToken),
        (lambda t: t[:10], MalformedToken),
        (lambda t: _b64encode(b'\x02' + _b64decode(t)[1:]), UnknownVersion),
        (
            lambda t: t[:-4] + ('AAAA' if t[-4:] != 'AAAA' else 'BBBB'),
            BadSignature,
        ),  # fmt: skip
    ],
)
def test_malformed_and_tampered_tokens(mutate, error):
    token = codec().mint('sid', HUB, SITE, state='s' * 20)
    with pytest.raises(error) as info:
        codec().open(mutate(token), SITE, state='s' * 20)
    assert isinstance(info.value, TokenError)
    assert info.value.reason == error.reason


def test_another_secret_cannot_open_it_and_rotation_can():
    token = TokenCodec(['o' * 40], SITES).mint('sid', HUB, SITE, state='s')
    with pytest.raises(BadSignature):
        codec().open(token, SITE, state='s')
    rotated = TokenCodec([XD_SECRET, 'o' * 40], SITES)
    assert rotated.open(token, SITE, state='s')['sid'] == 'sid'


def test_expired_and_future_tokens():
    now = time.time()
    token = codec(clock=lambda: now).mint('sid', HUB, SITE, state='s')
    assert codec(clock=lambda: now + 34).open(token, SITE, state='s')
    with pytest.raises(ExpiredToken):
        codec(clock=lambda: now + 36).open(token, SITE, state='s')
    assert codec(clock=lambda: now - 4).open(token, SITE, state='s')
    with pytest.raises(FutureToken):
        codec(clock=lambda: now - 6).open(token, SITE, state='s')


def test_state_flow_source_and_destination_checks():
    c = codec()
    with pytest.raises(StateMismatch):
        c.open(c.mint('sid', HUB, SITE, state='a'), SITE, state='b')
    with pytest.raises(StateMismatch):
        c.open(c.mint('sid', HUB, SITE, state='a'), SITE, state=None)
    with pytest.raises(WrongFlow):
        c.open(c.mint('sid', HUB, SITE, flow='script'), SITE, state='a')
    with pytest.raises(WrongFlow):
        c.open(c.mint('sid', HUB, SITE, state='a'), SITE, flow='script')
    with pytest.raises(BadSource):
        c.open(c.mint('sid', 'https://evil.example', SITE, state='a'),
               SITE, state='a')  # fmt: skip
    with pytest.raises(BadSource):
        c.open(c.mint('sid', SITE, SITE, state='a'), SITE, state='a')
    evil = TokenCodec([XD_SECRET], SITES + ('https://evil.example',))
    with pytest.raises(WrongDestination):
        codec().open(
            evil.mint('sid', HUB, 'https://evil.example', state='a'),
            'https://evil.example',
            state='a',
        )


def test_an_unreadable_payload():
    nonce = os.urandom(12)
    sealed = AESGCM(derive_key(XD_SECRET)).encrypt(
        nonce, b'{"sid": 1}', _AAD + SITE.encode()
    )
    token = _b64encode(b'\x01' + nonce + sealed)
    with pytest.raises(BadPayload):
        codec().open(token, SITE, state='s')


#: issue times that are not a number of seconds
NOT_NUMBERS = {
    'string': '1700000000',
    'list': [1700000000],
    'object': {},
    'bool': True,
    'null': None,
    'NaN': float('nan'),
    'Infinity': float('inf'),
    'beyond floats': 10**400,
}


@pytest.mark.parametrize('name', list(NOT_NUMBERS))
def test_an_issue_time_that_is_not_a_number_is_malformed(name):
    token = seal(dict(valid_payload('sid'), iat=NOT_NUMBERS[name]))
    with pytest.raises(MalformedToken) as info:
        codec().open(token, SITE, state=STATE)
    assert info.value.reason == 'malformed'


@pytest.mark.parametrize('name', list(NOT_NUMBERS))
def test_an_issue_time_that_is_not_a_number_is_a_400(
    name, shared, events, redis_client
):
    sid, tab = shared
    token = seal(dict(valid_payload(sid), iat=NOT_NUMBERS[name]))
    before = redis_state(redis_client)
    res = tab.get(
        SITE + '/_session_suite/xd/import',
        {'next': '/page', 't': token},
        status=400,
    )
    assert res.headers['X-Session-Suite-Reason'] == 'malformed'
    assert 'Traceback' not in res.text
    assert [e.reason for e in events] == ['malformed']
    assert redis_state(redis_client) == before


@pytest.mark.parametrize(
    'change, message',
    [
        ({'sites': HUB}, 'list at least two sites'),
        ({'sites': 'ftp://x.test https://y.test'}, 'is not a site origin'),
        ({'secret': 'short'}, 'crossdomain.secret is too short'),
        ({'hub': 'https://elsewhere.test'}, 'is not one of the sites'),
        ({'flows': 'redirect teleport'}, "unknown flow 'teleport'"),
    ],
)
def test_bad_settings_name_the_key(redis_url, change, message):
    sites = change.pop('sites', None)
    args = (sites.split(),) if sites else ()
    with pytest.raises(ConfigurationError, match=message):
        make_site(redis_url, *args, **change)


def test_a_client_without_cookies_is_not_bounced_in_a_loop(browser):
    res = browser.get(SITE + '/page')
    for _ in range(5):
        browser.cookiejar.clear()
        if res.status_int not in (302, 303):
            break
        res = res.follow()
    assert res.status_int == 200
    assert '<p id="user">anonymous</p>' in res.text


@pytest.mark.parametrize('next_url', ['http://[x', 'https://[', 'http://a:b'])
def test_a_malformed_next_url_is_not_an_error(browser, next_url):
    res = browser.get(
        SITE + '/_session_suite/xd/import', {'none': '1', 'next': next_url}
    )
    assert res.status_int == 303
    assert res.location.startswith(SITE + '/')


def test_retry_after_zero_is_refused(redis_url):
    with pytest.raises(ConfigurationError, match='retry_after'):
        make_site(redis_url, retry_after='0')


# --- the hops are invisible -------------------------------------------------


@pytest.fixture
def accounts(redis_url):
    """Two sites with user index logins (``/signin``), and a browser."""
    hub = make_site(redis_url, accounts=True, flows='redirect push')
    site = make_site(redis_url, accounts=True, flows='redirect push')
    browser = TestApp(
        by_host({'www.site-a.test': hub, 'www.site-b.test': site}),
        extra_environ={'HTTP_ACCEPT': 'text/html'},
    )
    return hub, site, browser


def test_the_hop_leaves_the_hubs_cookie_of_an_ended_session(accounts):
    """Signed out elsewhere: the other site's bounce through the hub does
    not consume what the hub's next page view has to tell."""
    from pyramid_session_suite.events import SessionEnded
    from pyramid_session_suite.interfaces import IUserIndex

    hub, site, browser = accounts
    browser.get(HUB + '/signin?user=alice')
    hub.registry.getUtility(IUserIndex).index.end_all('alice')
    ended = []
    hub.registry.registerHandler(ended.append, (SessionEnded,))

    res = browser.get(SITE + '/page').follow()  # the hub's export
    assert res.location.endswith('&none=1')
    assert 'Set-Cookie' not in res.headers  # the hub's cookie stays
    res = res.follow()  # the import: this browser keeps cookies
    assert res.location == SITE + '/page'  # no marker in the URL
    assert '<p id="user">anonymous</p>' in res.follow().text

    res = browser.get(HUB + '/page')
    assert res.headers['Set-Cookie'].startswith('main=;')  # now it goes
    assert [event.reason for event in ended] == ['revoked', 'revoked']


def test_a_browser_keeping_no_cookies_gets_the_marker(browser):
    res = browser.get(SITE + '/page').follow().follow()
    assert res.location == SITE + '/page'
    browser.cookiejar.clear()
    res = browser.get(SITE + '/page').follow()
    browser.cookiejar.clear()  # the state cookie is lost
    res = res.follow()
    assert res.location == SITE + '/page?session_suite_xd=0'
    assert res.follow().status_int == 200


def test_push_url_chains_every_other_site(redis_url):
    from pyramid.request import Request
    from pyramid.scripting import prepare

    from pyramid_session_suite.crossdomain.views import push_url

    def next_of(url):
        return parse_qs(urlsplit(url).query)['next'][0]

    begin = '/_session_suite/xd/begin?next='
    hub = make_site(redis_url, (HUB, SITE, THIRD), flows='redirect push')
    with prepare(Request.blank('/', base_url=HUB), hub.registry) as env:
        request = env['request']
        url = push_url(request, '/page?x=1')  # a path is on this site
        assert url.startswith(SITE + begin)
        assert next_of(url).startswith(THIRD + begin)
        assert next_of(next_of(url)) == HUB + '/page?x=1'
        # a site the target already goes through is left out
        to_site = SITE + begin + '%2F'
        url = push_url(request, to_site)
        assert url.startswith(THIRD + begin)
        assert next_of(url) == to_site
        assert push_url(request, HUB + '/', sites=[]) == HUB + '/'
    plain = make_site(redis_url, flows='redirect')  # no push flow
    with prepare(Request.blank('/', base_url=HUB), plain.registry) as env:
        assert push_url(env['request'], '/x') == HUB + '/x'
