"""The SessionMulti debug toolbar panel: it shows every namespace and
changes nothing about the application."""

import re
from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory
import pytest
from webtest import TestApp

from pyramid_session_suite import RedisSessionFactory

from .conftest import SECRET

TOOLBAR_LINK = re.compile(r'/_debug_toolbar/[0-9a-f]+')
LOCAL = {'REMOTE_ADDR': '127.0.0.1'}


def view(request):
    multi = request.session_multi
    action = request.params.get('do')
    if action == 'write':
        multi['r']['greeting'] = request.params.get('value', 'hello')
        multi['r']['count'] = multi['r'].get('count', 0) + 1
        multi['c']['theme'] = 'dark'
    elif action == 'drop':
        multi['r'].pop('greeting', None)
        multi['d']  # discriminated out
    elif action == 'invalidate':
        multi.invalidate()
    elif action == 'mix':  # one key of each kind, and a long value
        multi['r'].pop('greeting', None)
        multi['r']['count'] = multi['r'].get('count', 0) + 1
        multi['r']['cart'] = {'items': ['tea', 'scones'], 'total': 7.5}
        multi['r']['notes'] = 'A long note. ' * 60
        multi['d']  # discriminated out
    body = f'<html><body>{sorted(multi)}</body></html>'
    return Response(body, content_type='text/html')


def make_app(redis_client, toolbar=True, active=False):
    settings = {}
    if toolbar:
        settings = {
            'debugtoolbar.includes': 'pyramid_session_suite.debugtoolbar',
            'debugtoolbar.hosts': '127.0.0.1',
            'debugtoolbar.intercept_redirects': 'false',
        }
        if active:
            settings['debugtoolbar.active_panels'] = 'session_multi'
    config = Configurator(settings=settings)
    if toolbar:
        config.include('pyramid_debugtoolbar')
    config.include('pyramid_session_suite')
    config.register_session_factory(
        'r',
        RedisSessionFactory(
            SECRET, redis_client=redis_client, cookie_name='r'
        ),
    )
    config.register_session_factory(
        'c', SignedCookieSessionFactory(SECRET, cookie_name='c')
    )
    config.register_session_factory(
        'd',
        SignedCookieSessionFactory(SECRET, cookie_name='d'),
        discriminator=lambda request: False,
    )
    config.register_session_factory(
        'u', SignedCookieSessionFactory(SECRET, cookie_name='u')
    )
    config.add_route('view', '/')
    config.add_view(view, route_name='view')
    return TestApp(config.make_wsgi_app(), extra_environ=LOCAL)


def panel(app, response):
    """The panel of the request of ``response`` (of the latest request, for
    responses the toolbar does not inject itself into)."""
    links = set(TOOLBAR_LINK.findall(response.text))
    page = app.get(links.pop() if links else '/_debug_toolbar/').text
    return panel_of(page)


def panel_of(page):
    """The content of the panel in a toolbar page, up to the next panel."""
    start = page.index('id="pDebugPanel-session_multi-content"')
    end = page.find('class="panelContent"', start + 50)
    return page[start:] if end == -1 else page[start:end]


def labels(html, namespace):
    """The labels shown for a namespace in the "Session Accessed" table."""
    start = html.index(f'<code>request.session_multi["{namespace}"]</code>')
    end = html.index('</td>', start)
    return re.findall(r'<span class="label [^"]+">([^<]+)</span>',
                      html[start:end])  # fmt: skip


def test_panel_shows_accessed_untouched_discriminated_and_invalidated(
    counted,
):
    app = make_app(counted)
    html = panel(app, app.get('/?do=write'))
    assert '<h3>SessionMulti</h3>' in html
    assert labels(html, 'r') == ['accessed']
    assert labels(html, 'u') == ['not accessed']
    assert "<code>'hello'</code>" in html  # egress of r
    assert 'RedisSessionFactory' in html and '<td>redis</td>' in html
    assert '<td>cookie</td>' in html

    html = panel(app, app.get('/?do=drop'))
    assert labels(html, 'd') == ['accessed', 'discriminated out']
    # "greeting" was removed: ingress only, marked as removed
    assert key_statuses(html, 'r') == {'count': '', 'greeting': 'removed'}
    assert html.count("<code>'hello'</code>") == 1

    html = panel(app, app.get('/?do=invalidate'))
    assert 'invalidated' in labels(html, 'r')
    assert 'invalidated' in labels(html, 'c')
    assert labels(html, 'u') == ['not accessed']


def key_statuses(html, namespace):
    """``{key: status}`` of a namespace's data table (status ``''`` for an
    unchanged key)."""
    start = html.index(f'<h6><code>request.session_multi["{namespace}"]')
    end = html.index('</table>', start)
    rows = re.findall(
        r'<tr class="(?:ssm-(\w+))?">\s*<th class="ssm-key">\s*'
        r'(?:<span class="label [^"]+">\w+</span>\s*)?([^<]*?)\s*</th>',
        html[start:end],
    )
    return {key: status for status, key in rows}


def test_added_changed_and_removed_keys_are_told_apart(counted):
    app = make_app(counted)
    html = panel(app, app.get('/?do=write'))
    assert key_statuses(html, 'r') == {'count': 'added', 'greeting': 'added'}
    assert key_statuses(html, 'c') == {'theme': 'added'}
    # the legend says what the marks mean, in words
    legend = re.search(r'<p class="ssm-legend">(.*?)</p>', html, re.S)
    words = re.sub(r'<[^>]+>|\s+', ' ', legend.group(1)).split()
    assert ' '.join(words) == (
        'Before: as loaded; after: as stored at the end of the request. '
        'added set by this request changed given another value '
        'removed deleted by this request'
    )

    html = panel(app, app.get('/?do=write&value=hi'))
    assert key_statuses(html, 'r') == {
        'count': 'changed',
        'greeting': 'changed',
    }
    assert key_statuses(html, 'c') == {'theme': ''}
    assert '1 changed' not in html and '2 changed' in html

    html = panel(app, app.get('/?do=drop'))
    assert key_statuses(html, 'r') == {'count': '', 'greeting': 'removed'}
    assert '<span class="ssm-summary">1 removed</span>' in html


def test_the_tab_summarizes_the_changes(counted):
    app = make_app(counted)
    # count and greeting in r, theme in c
    assert tab_badge(app, app.get('/?do=write')) == (
        '<span class="badge pull-right progress-bar-info">3 changed</span>'
    )
    # nothing changed: how many namespaces the request read (r and d)
    assert tab_badge(app, app.get('/?do=drop&value=x')) == (
        '<span class="badge pull-right progress-bar-info">1 changed</span>'
    )
    assert tab_badge(app, app.get('/?do=drop')) == (
        '<span class="badge pull-right ">2 read</span>'
    )
    assert tab_badge(app, app.get('/')) is None  # read nothing


def tab_badge(app, response):
    """The badge of the panel's tab in the toolbar, or ``None``."""
    page = toolbar_page(app, response)
    start = page.index('id="pDebugPanel-session_multi">')
    tab = page[start : page.index('</li>', start)]
    found = re.search(r'<span class="badge[^"]*">[^<]*</span>', tab)
    return found.group(0) if found else None


def toolbar_page(app, response):
    [link] = set(TOOLBAR_LINK.findall(response.text))
    return app.get(link).text


def test_names_are_readable(counted):
    app = make_app(counted)
    html = panel(app, app.get('/?do=write'))
    # no backticks, no memory addresses, no <locals>
    assert '`' not in html
    assert not re.search(r'0x[0-9a-f]{6,}', html)
    assert '&lt;locals&gt;' not in html and '<locals>' not in html
    assert (
        'Configured by <code>SessionMultiManagerConfig</code> '
        '(<code>pyramid_session_suite.multi</code>): 4 namespaces.'
    ) in html
    assert (
        '<code>CookieSession from BaseCookieSessionFactory()</code>'
        '<span class="ssm-module">pyramid.session</span>'
    ) in html
    factory = "&lt;RedisSessionFactory cookie='r' prefix='session:'&gt;"
    assert f'<code>{factory}</code>' in html
    assert (
        '<code>a lambda in make_app()</code>'
        '<span class="ssm-module">tests.test_debugtoolbar</span>'
    ) in html


@pytest.mark.parametrize(
    'qualname, name',
    [
        ('Factory.<locals>.Session', 'Session from Factory()'),
        ('make_app.<locals>.<lambda>', 'a lambda in make_app()'),
        ('<lambda>', 'a lambda'),
        ('Policy.<lambda>', 'a lambda in Policy'),
        ('a.<locals>.b.<locals>.C', 'C from b()'),
        ('Plain.method', 'Plain.method'),
    ],
)
def test_readable_name(qualname, name):
    from pyramid_session_suite.debugtoolbar.panel import readable_name

    assert readable_name(qualname) == name


def test_the_normal_state_is_not_an_alarm(counted):
    app = make_app(counted)
    html = panel(app, app.get('/?do=write'))
    assert 'label-danger">was not active' not in html
    mode = re.search(r'<p class="ssm-mode">(.*?)</p>', html, re.S).group(1)
    assert 'label' not in mode
    assert 'switch this panel on' in mode

    app = make_app(counted, active=True)
    html = panel(app, app.get('/?do=write'))
    mode = re.search(r'<p class="ssm-mode">(.*?)</p>', html, re.S).group(1)
    assert '<span class="label label-info">panel active</span>' in mode


def test_no_empty_data_heading(counted):
    app = make_app(counted)
    html = panel(app, app.get('/'))  # reads no namespace
    assert labels(html, 'r') == ['not accessed']
    assert 'Session data' not in html and '<p class="ssm-legend">' not in html
    assert '<h6>' not in html


def test_long_values_are_cut_and_wrapped(counted):
    app = make_app(counted)
    value = 'x' * 5000
    html = panel(app, app.get('/', params={'do': 'write', 'value': value}))
    assert value[:1000] not in html
    assert "'" + 'x' * 399 in html
    assert '… 2,000 characters in all' in html  # reprlib kept 2,000
    assert 'white-space: pre-wrap' in html and 'table-layout: fixed' in html


def test_values_are_escaped(counted):
    app = make_app(counted)
    res = app.get('/', params={'do': 'write', 'value': '<script>x</script>'})
    html = panel(app, res)
    assert '<script>x' not in html
    assert '&lt;script&gt;x&lt;/script&gt;' in html


def test_keys_are_escaped(counted):
    from pyramid_session_suite.debugtoolbar.panel import key_rows

    [row] = key_rows({}, {'<b>k': "'<img src=x onerror=alert(1)>'"})
    assert row['after'] == "'&lt;img src=x onerror=alert(1)&gt;'"

    config = Configurator(
        settings={
            'debugtoolbar.includes': 'pyramid_session_suite.debugtoolbar',
            'debugtoolbar.hosts': '127.0.0.1',
        }
    )
    config.include('pyramid_debugtoolbar')
    config.include('pyramid_session_suite')
    config.register_session_factory(
        'c', SignedCookieSessionFactory(SECRET, cookie_name='c')
    )

    def write(request):
        request.session_multi['c']['<img src=x onerror=alert(1)>'] = 1
        return Response('<html><body>ok</body></html>')

    config.add_route('view', '/')
    config.add_view(write, route_name='view')
    app = TestApp(config.make_wsgi_app(), extra_environ=LOCAL)
    html = panel(app, app.get('/'))
    assert '<img src=x' not in html
    assert '&lt;img src=x onerror=alert(1)&gt;' in html


def test_suite_activity_is_shown(counted):
    app = make_app(counted)
    html = panel(app, app.get('/?do=write'))
    assert '<h5>Suite activity</h5>' in html
    assert '<td>redis</td><td>created</td>' in html


def exchange(app, round_trips):
    """Run a scenario; return what the application did."""
    seen = []
    for query in ('do=write', '', 'do=write', 'do=drop', '', 'do=invalidate'):
        round_trips.reset()
        res = app.get('/?' + query)
        headers = sorted(
            (k, re.sub(r'^([^=]+)=[^;]+', r'\1=<value>', v))
            for k, v in res.headerlist
            if k in ('Set-Cookie', 'Vary', 'Content-Type')
        )
        body = re.search(r'<body>([^<]*)', res.text).group(1)
        seen.append((headers, body, list(round_trips.trips)))
    return seen


@pytest.mark.parametrize('active', [False, True])
def test_the_app_behaves_the_same_with_and_without_the_toolbar(
    redis_url, round_trips, active
):
    client = round_trips.client(redis_url)
    client.ping()
    without = exchange(make_app(client, toolbar=False), round_trips)
    with_toolbar = exchange(make_app(client, active=active), round_trips)
    if not active:
        assert with_toolbar == without
        return
    # an active panel reads untouched namespaces after the view: the app's
    # headers and bodies are the same, Redis sees extra plain GETs only
    for (h1, b1, trips1), (h2, b2, trips2) in zip(
        without, with_toolbar, strict=True
    ):
        assert (h1, b1) == (h2, b2)
        assert [t for t in trips2 if t != ['GET']] == trips1


def test_an_active_panel_shows_untouched_namespaces_without_touching_them(
    counted, round_trips, redis_client
):
    app = make_app(counted, active=True)
    app.get('/?do=write')
    [key] = redis_client.keys('session:*')
    redis_client.expire(key, 100)
    round_trips.reset()
    res = app.get('/?do=none')  # touches nothing
    assert round_trips.commands == ['GET']
    assert redis_client.ttl(key) <= 100  # not refreshed
    assert 'Set-Cookie' not in res.headers
    html = panel(app, res)
    assert 'read by the panel' in labels(html, 'r')
    assert html.count("<code>'hello'</code>") == 2  # ingress and egress
    assert "<code>'dark'</code>" in html  # the cookie namespace


def test_without_the_core_the_panel_says_so():
    config = Configurator(
        settings={
            'debugtoolbar.includes': 'pyramid_session_suite.debugtoolbar',
            'debugtoolbar.hosts': '127.0.0.1',
        }
    )
    config.include('pyramid_debugtoolbar')
    config.add_route('view', '/')
    config.add_view(
        lambda request: Response('<html><body>hi</body></html>'),
        route_name='view',
    )
    app = TestApp(config.make_wsgi_app(), extra_environ=LOCAL)
    html = panel(app, app.get('/'))
    assert (
        '<p>No session namespaces: this application did not include '
        '<code>pyramid_session_suite</code>.</p>'
    ) in html


def test_the_panel_in_a_real_browser(counted, browser, artifacts):
    from .conftest import serve

    app = make_app(counted).app
    with serve(app) as url:
        page = browser.new_page(viewport={'width': 1280, 'height': 900})
        page.goto(url + '/?do=write&value=hello%20browser')
        page.goto(url + '/?do=mix')
        link = page.locator(
            '#pDebugToolbarHandle a, a[href*="_debug_toolbar"]'
        )
        toolbar_url = link.first.get_attribute('href')
        page.goto(toolbar_url)
        tab = page.locator('#pDebugPanel-session_multi a')
        assert tab.inner_text().split() == ['4', 'changed', 'SessionMulti']
        tab.click()
        content = page.locator('#pDebugPanel-session_multi-content')
        content.wait_for(state='visible')
        text = content.inner_text()
        assert 'discriminated out' in text
        assert "'hello browser'" in text
        assert 'characters in all' in text
        for status in ('added', 'changed', 'removed'):
            assert content.locator(f'tr.ssm-{status}').count() >= 1
        # long values wrap inside their column: nothing wider than the panel
        widths = content.evaluate(
            'el => [el.clientWidth, Math.max(...Array.from('
            'el.querySelectorAll("table"), t => t.scrollWidth))]'
        )
        assert widths[1] <= widths[0], widths
        page.screenshot(
            path=str(artifacts / 'session_multi_panel.png'), full_page=True
        )
        page.close()
    assert (artifacts / 'session_multi_panel.png').stat().st_size > 10_000


def test_the_panel_shows_what_the_index_and_policy_did(redis_url):
    from .usersapp import make_config

    config = make_config(
        redis_url,
        include='pyramid_session_suite.policy',
        **{
            'debugtoolbar.includes': 'pyramid_session_suite.debugtoolbar',
            'debugtoolbar.hosts': '127.0.0.1',
            'debugtoolbar.intercept_redirects': 'false',
        },
    )
    config.include('pyramid_debugtoolbar')
    config.add_route('page', '/page')
    config.add_view(
        lambda request: Response('<html><body>page</body></html>'),
        route_name='page',
    )
    wsgi = config.make_wsgi_app()
    first = TestApp(wsgi, extra_environ=LOCAL)
    second = TestApp(wsgi, extra_environ=LOCAL)
    first.get('/login?user=alice')
    html = panel(first, first.get('/page'))
    assert 'Suite activity' not in html  # steady state: nothing happened
    res = second.get('/login?user=alice', status=409)
    html = panel(second, res)
    assert '<td>policy</td><td>login refused</td>' in html
    html = panel(second, second.get('/login?user=bob'))
    assert '<td>user_index</td><td>registered</td>' in html
    assert 'Suite activity' not in panel(second, second.get('/page'))


def test_the_panel_shows_cross_domain_hand_offs(redis_url):
    from pyramid.config import Configurator

    from .crossdomainapp import (
        HUB,
        SITE,
        by_host,
        login,
        page,
        site_settings,
    )

    def site():
        settings = site_settings(redis_url)
        settings.update(
            {
                'debugtoolbar.includes': 'pyramid_session_suite.debugtoolbar',
                'debugtoolbar.hosts': '127.0.0.1',
                'debugtoolbar.intercept_redirects': 'false',
            }
        )
        config = Configurator(settings=settings)
        config.include('pyramid_debugtoolbar')
        config.include('pyramid_session_suite.crossdomain')
        config.add_route('login', '/login')
        config.add_view(login, route_name='login')
        config.add_route('page', '/page')
        config.add_view(page, route_name='page')
        return config.make_wsgi_app()

    hub, other = site(), site()
    app = TestApp(
        by_host({'www.site-a.test': hub, 'www.site-b.test': other}),
        extra_environ={'HTTP_ACCEPT': 'text/html', **LOCAL},
    )
    app.get(HUB + '/login?user=alice')
    exported = app.get(SITE + '/page').follow()
    assert '<td>token minted</td>' in latest_panel(app, HUB)
    exported.follow()
    assert '<td>token redeemed</td>' in latest_panel(app, SITE)


def latest_panel(app, origin):
    """The panel of the latest request to the site at ``origin``."""
    return panel_of(app.get(origin + '/_debug_toolbar/').text)
