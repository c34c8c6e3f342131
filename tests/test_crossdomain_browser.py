"""Cross-domain session sharing in a real browser: headless Chromium
against two HTTPS sites on different registrable domains
(``www.site-a.test``, the hub, and ``www.site-b.test``) served on
loopback.

Every scenario gets a fresh Chromium profile whose third-party cookie
policy is pinned, and runs twice: with third-party cookies allowed (the
default of Google Chrome) and blocked (the default of Debian's Chromium, of
Incognito windows, and of users who turned them off). The redirect and
push flows must work in both; the script loader works only in the first.
"""

import json
from urllib.parse import quote
import pytest

from pyramid_session_suite.crossdomain.views import STATE_COOKIE

from .conftest import CHROMIUM, CHROMIUM_ARGS
from .crossdomainapp import by_host, make_site
from .tlsserver import make_certificate, serve_https

HOSTS = ('www.site-a.test', 'www.site-b.test')
PREFIX = '/_session_suite/xd'
#: ``profile.cookie_controls_mode``, the setting behind "Third-party
#: cookies" in chrome://settings: 2 allows them outside Incognito (Chrome's
#: default), 1 blocks them (Debian's default)
ALLOWED, BLOCKED = 2, 1
COOKIE_MODES = {'3pc-allowed': ALLOWED, '3pc-blocked': BLOCKED}
ARGS = CHROMIUM_ARGS + [
    '--ignore-certificate-errors',
    '--host-resolver-rules='
    + ', '.join(f'MAP {host} 127.0.0.1' for host in HOSTS),
]


@pytest.fixture(scope='module')
def chromium(browser):
    """Playwright's Chromium launcher, taken from conftest's ``browser``
    (skipped when no Chromium is installed): the sync API runs only one
    Playwright at a time."""
    return browser.browser_type


@pytest.fixture(scope='module')
def https_server(tmp_path_factory):
    certfile, keyfile = make_certificate(HOSTS, tmp_path_factory.mktemp('tls'))
    with serve_https(certfile, keyfile) as server:
        yield server


class Group:
    """The sites, as served: ``hub`` and ``site`` are their origins."""

    def __init__(self, server, redis_url, flows, accounts=False):
        port = server.server_port
        self.hub, self.site = (f'https://{host}:{port}' for host in HOSTS)
        sites = (self.hub, self.site)
        apps = {
            host: make_site(redis_url, sites, accounts, flows=flows)
            for host in HOSTS
        }
        server.set_app(by_host(apps))


@pytest.fixture
def group(https_server, redis_url):
    """``group(flows=..., accounts=...)`` serves a fresh pair of sites."""
    yield lambda flows='redirect push', accounts=False: Group(
        https_server, redis_url, flows, accounts
    )
    https_server.set_app(by_host({}))


@pytest.fixture(params=list(COOKIE_MODES), ids=list(COOKIE_MODES))
def cookie_mode(request):
    return COOKIE_MODES[request.param]


@pytest.fixture
def launch(chromium, tmp_path, cookie_mode):
    """``launch(name)`` starts Chromium with a new profile ``name`` whose
    third-party cookie policy is pinned to ``cookie_mode`` (not left to the
    build's default); returns its context. The script loader test shows
    that the pin takes effect."""
    contexts = []

    def launch(name='profile'):
        profile = tmp_path / name
        (profile / 'Default').mkdir(parents=True)
        preferences = {'profile': {'cookie_controls_mode': cookie_mode}}
        (profile / 'Default' / 'Preferences').write_text(
            json.dumps(preferences)
        )
        context = chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS
        )
        contexts.append(context)
        context.set_default_timeout(10_000)
        return context

    yield launch
    for context in contexts:
        context.close()


def cookie(context, origin, name='main'):
    """The cookie ``name`` in ``context``'s jar for ``origin``, or None."""
    found = [c for c in context.cookies(origin) if c['name'] == name]
    assert len(found) <= 1
    return found[0] if found else None


def shown(page):
    """(user, host) as the test app's page shows them."""
    return tuple(
        page.evaluate(
            "() => ['user', 'host'].map(id => "
            "document.getElementById(id).textContent)"
        )
    )


def record(context, part, navigations=False):
    """The URLs of the requests ``context`` makes whose URL has ``part``
    (redirect targets included; only navigations if ``navigations``)."""
    urls = []

    def seen(request):
        if navigations and not request.is_navigation_request():
            return
        if part in request.url:
            urls.append(request.url)

    context.on('request', seen)
    return urls


def log_in(page, group):
    page.goto(group.hub + '/login?user=alice')
    assert 'hello alice' in page.text_content('body')


def test_the_redirect_flow(
    group, launch, cookie_mode, artifacts, redis_client
):
    """Logged in at the hub, a first visit to B bounces once through the
    hub and lands on the page asked for, signed in, with B's own
    first-party cookie."""
    sites = group()
    context = launch()
    page = context.pages[0]
    requests = record(context, '://', navigations=True)
    log_in(page, sites)
    del requests[:]

    response = page.goto(sites.site + '/page?x=1')

    assert [url.split('?')[0] for url in requests] == [
        sites.site + '/page',
        sites.hub + PREFIX + '/export',
        sites.site + PREFIX + '/import',
        sites.site + '/page',
    ]
    assert response.status == 200
    assert page.url == sites.site + '/page?x=1'
    assert shown(page) == ('alice', 'www.site-b.test')
    mine = cookie(context, sites.site)
    assert mine['domain'] == 'www.site-b.test'  # host-only, B's own
    assert mine['secure'] and mine['httpOnly']
    assert mine['sameSite'] == 'Lax'
    assert not mine.get('partitionKey')  # first-party, not partitioned
    # one session, shared: B adopted the hub's rather than making one
    assert len(redis_client.keys('session_suite:main:*')) == 1
    # the state cookie is gone, and later visits stay on B
    state = cookie(context, sites.site + PREFIX + '/', STATE_COOKIE)
    assert state is None
    del requests[:]
    page.goto(sites.site + '/')
    assert shown(page) == ('alice', 'www.site-b.test')
    assert requests == [sites.site + '/']
    if cookie_mode == BLOCKED:
        page.goto(sites.site + '/page?x=1')
        screenshot(page, artifacts / 'crossdomain_redirect.png', mine)


def screenshot(page, path, mine):
    """Save ``page`` with a caption (headless Chromium has no address
    bar): its URL and the site's own session cookie."""
    flags = [k for k in ('secure', 'httpOnly') if mine[k]]
    caption = (
        f'[caption added by the test]\nURL: {page.url}\n'
        f'third-party cookies: blocked\n'
        f'cookie jar of this site: {mine["name"]} on {mine["domain"]} '
        f'({", ".join(flags)}, SameSite={mine["sameSite"]})'
    )
    page.evaluate(
        """text => {
            const pre = document.createElement('pre');
            pre.textContent = text;
            pre.style = 'border-top: 1px solid #999; color: #555';
            document.body.append(pre);
        }""",
        caption,
    )
    page.set_viewport_size({'width': 800, 'height': 200})
    page.screenshot(path=str(path))
    assert path.stat().st_size > 1000


def test_the_push_flow(group, launch):
    """A link on the hub to B's ``begin`` ends back on the hub, and B
    knows the user from then on."""
    sites = group()
    context = launch()
    page = context.pages[0]
    log_in(page, sites)
    back = sites.hub + '/page'
    start = f'{sites.site}{PREFIX}/begin?next={quote(back, safe="")}'
    imports = record(context, PREFIX + '/import')

    # a link on the hub's page
    with page.expect_navigation(url=back):
        page.evaluate('url => { window.location.href = url }', start)

    assert shown(page) == ('alice', 'www.site-a.test')
    assert len(imports) == 1 and '&t=' in imports[0]
    assert cookie(context, sites.site)['domain'] == 'www.site-b.test'
    exports = record(context, PREFIX + '/export')
    page.goto(sites.site + '/page')
    assert shown(page) == ('alice', 'www.site-b.test')
    assert exports == []  # B knew alice already


def test_the_script_loader(group, launch, cookie_mode):
    """The loader works only where third-party cookies are allowed; where
    they are blocked, the redirect flow still shares the session."""
    sites = group(flows='redirect push script')
    context = launch()
    page = context.pages[0]
    log_in(page, sites)

    with page.expect_response(lambda r: PREFIX + '/s/' in r.url) as info:
        hub_page = page.goto(sites.hub + '/page')  # waits for the script
    # the tokens in it are for this browser only
    assert hub_page.header_value('cache-control') == 'private, no-store'
    script = info.value
    assert script.url.startswith(sites.site + PREFIX + '/s/')
    assert script.status == 200  # B redeemed the token and sent a cookie
    assert 'samesite=none' in script.header_value('set-cookie').lower()
    assert shown(page) == ('alice', 'www.site-a.test')

    # B's jar right after the hub's page, before any visit to B
    mine = cookie(context, sites.site)
    if cookie_mode == ALLOWED:
        assert mine is not None, 'the script loader set no cookie on B'
        assert mine['sameSite'] == 'None' and mine['secure']
        assert mine['domain'] == 'www.site-b.test'
    else:
        # the script loader does not work where third-party cookies are
        # blocked: the browser drops the cookie of B's script response
        assert mine is None

    exports = record(context, PREFIX + '/export')
    page.goto(sites.site + '/page')
    assert shown(page) == ('alice', 'www.site-b.test')
    if cookie_mode == ALLOWED:
        assert exports == []  # the script loader did it
    else:
        assert len(exports) == 1  # the redirect flow did it


def test_a_replayed_token_is_refused(group, launch):
    """A hand-off URL seen by someone else (logs, a shoulder) is useless
    in another browser: 400, no cookie."""
    sites = group()
    context = launch('alice')
    page = context.pages[0]
    imports = record(context, PREFIX + '/import')
    log_in(page, sites)
    page.goto(sites.site + '/page')
    assert shown(page) == ('alice', 'www.site-b.test')
    [url] = imports
    assert '&t=' in url

    other = launch('eavesdropper')
    response = other.pages[0].goto(url)

    assert response.status == 400
    assert response.header_value('set-cookie') is None
    assert response.header_value('x-session-suite-reason') == (
        'state-mismatch'
    )
    assert 'cannot be used' in other.pages[0].text_content('body')
    assert other.cookies() == []
    other.pages[0].goto(sites.site + '/page')
    assert shown(other.pages[0]) == ('anonymous', 'www.site-b.test')


def test_no_session_at_the_hub_bounces_once(group, launch):
    """Nobody logged in: B bounces through the hub once, then leaves the
    browser alone (no redirect loop)."""
    sites = group()
    context = launch()
    page = context.pages[0]
    exports = record(context, PREFIX + '/export')
    imports = record(context, PREFIX + '/import')

    page.goto(sites.site + '/page')
    # the browser kept the flow's cookies: no marker in its address
    assert page.url == sites.site + '/page'
    assert shown(page) == ('anonymous', 'www.site-b.test')
    assert len(exports) == 1
    assert [url.split('?')[1].split('&')[-1] for url in imports] == ['none=1']
    page.reload()
    page.goto(sites.site + '/')
    page.goto(sites.site + '/page?again=1')
    assert shown(page) == ('anonymous', 'www.site-b.test')
    assert len(exports) == 1
    assert cookie(context, sites.site) is None


def test_a_password_change_signs_the_other_devices_out_of_every_site(
    group, launch
):
    """Two devices of alice share her login with site B; a password change
    on the laptop, at the hub, signs the phone out of both sites at once,
    and the laptop stays signed in on both."""
    sites = group(accounts=True)
    laptop, phone = launch('laptop'), launch('phone')
    pages = {}
    for name, context in (('laptop', laptop), ('phone', phone)):
        page = pages[name] = context.pages[0]
        page.goto(sites.hub + '/signin?user=alice')
        assert 'hello alice' in page.text_content('body')
        page.goto(sites.site + '/page')
        assert shown(page) == ('alice', 'www.site-b.test')

    pages['laptop'].goto(sites.hub + '/password')
    assert 'ended 1' in pages['laptop'].text_content('body')

    phone = pages['phone']
    phone.goto(sites.site + '/page')
    assert shown(phone)[0] == 'anonymous'
    phone.goto(sites.hub + '/')
    assert shown(phone)[0] == 'anonymous'
    laptop = pages['laptop']
    laptop.goto(sites.hub + '/')
    assert shown(laptop) == ('alice', 'www.site-a.test')
    # on B, its former id is gone: cleared at the first page view, the new
    # one fetched from the hub at the next
    laptop.goto(sites.site + '/page')
    laptop.goto(sites.site + '/page')
    assert shown(laptop) == ('alice', 'www.site-b.test')
