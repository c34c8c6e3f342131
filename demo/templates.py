"""Plain Python templates: every value goes through :func:`e`."""

from html import escape as e

from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY
from pyramid_session_suite.interfaces import IUserIndex

THEMES = ('light', 'dark')
DEFAULT_THEME = 'light'

CSS = """
body.light { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --bg: #f6f8fa; --card: #fff; --accent: #0969da; --accent-fg: #fff;
  --ok-bg: #dafbe1; --ok-line: #4ac26b; --info-bg: #ddf4ff;
  --info-line: #54aeff; --err-bg: #ffebe9; --err-line: #ff8182;
  --warn-bg: #fff8c5; --warn-line: #d4a72c; --code-bg: #eff2f5; }
body.dark { --fg: #e6edf3; --muted: #9198a1; --line: #3d444d;
  --bg: #0d1117; --card: #151b23; --accent: #4493f8; --accent-fg: #fff;
  --ok-bg: #12261e; --ok-line: #2ea043; --info-bg: #0c2d4b;
  --info-line: #1f6feb; --err-bg: #25171c; --err-line: #f85149;
  --warn-bg: #272115; --warn-line: #9e6a03; --code-bg: #212830; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto,
             sans-serif; }
a { color: var(--accent); }
code, .site { font: .88em ui-monospace, SFMono-Regular, Menlo, Consolas,
              monospace; background: var(--code-bg); padding: .1em .35em;
              border-radius: 4px; }
header { background: var(--card); border-bottom: 1px solid var(--line); }
header > nav, main { max-width: 56rem; margin: 0 auto; padding: 0 1.25rem; }
nav { display: flex; flex-wrap: wrap; align-items: center; gap: .3rem 1.1rem;
      min-height: 3.4rem; }
nav a { font-weight: 500; text-decoration: none; }
nav a:hover { text-decoration: underline; }
nav .brand { color: var(--fg); font-weight: 650; margin-right: .4rem; }
nav .who { margin-left: auto; color: var(--muted); }
nav a.who { color: var(--accent); }
nav .where { font-size: .8rem; color: var(--muted); background: var(--code-bg);
             border: 1px solid var(--line); border-radius: 999px;
             padding: 0 .6rem; margin-right: .6rem; }
nav .who strong { color: var(--fg); }
nav form { margin: 0; }
main { margin: 2rem auto 3rem; }
h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 1rem; }
h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
.card { background: var(--card); border: 1px solid var(--line);
        border-radius: 12px; padding: 1.1rem 1.4rem; margin: 0 0 1.25rem; }
.card > :last-child { margin-bottom: 0; }
form { display: inline-block; margin: 0 .5rem .5rem 0; }
button { font: inherit; font-size: .92rem; font-weight: 500;
         padding: .4rem .95rem; border-radius: 6px; cursor: pointer;
         border: 1px solid var(--line); background: var(--card);
         color: var(--fg); }
button:hover { border-color: var(--muted); }
button.primary { background: var(--accent); border-color: var(--accent);
                 color: var(--accent-fg); }
form.signin { display: block; max-width: 20rem; }
label { display: block; margin: 0 0 .8rem; font-weight: 500; }
label input { display: block; width: 100%; margin-top: .25rem; font: inherit;
              padding: .4rem .6rem; color: var(--fg); background: var(--bg);
              border: 1px solid var(--line); border-radius: 6px; }
button:focus-visible, a:focus-visible, input:focus-visible {
  outline: 2px solid var(--accent); outline-offset: 2px; }
.notice, .error, .flash, .demo-only { padding: .6rem 1rem; margin: 0 0 1.25rem;
                                      border-radius: 8px; }
.flash { background: var(--ok-bg); border: 1px solid var(--ok-line); }
.notice { background: var(--info-bg); border: 1px solid var(--info-line); }
.error { background: var(--err-bg); border: 1px solid var(--err-line); }
.error p { margin: .3rem 0; }
.demo-only { background: var(--warn-bg); border: 1px dashed var(--warn-line);
             font-size: .9rem; }
ul { padding-left: 1.2rem; }
ul.try li, ul.sites li { margin-bottom: .55rem; }
.accessed { color: var(--muted); font-size: .88rem; margin-top: 1rem; }
"""

#: what a browser whose session ended is told, by reason: the policy's
#: reasons come in the ``session_ended`` parameter of the sign-in page (the
#: policy redirects there), the others in the ``session_suite.ended``
#: environ key of the next request
ENDED_MESSAGES = {
    'displaced': (
        'You were signed out because your account signed in somewhere '
        'else (another browser, or a private window): this demo allows '
        '{limit} per account.'
    ),
    'idle': 'You were signed out after {idle} without activity.',
    'expired': 'Your session expired after {idle} without activity.',
    'absolute': 'Your session reached its time limit.',
    'logout': 'You signed out (in another tab, or on the other site).',
    'revoked': 'This session was signed out from a "Your sessions" page.',
    'admin': 'An administrator signed this session out.',
    'operator': 'This session was ended from the command line.',
}


def duration(seconds):
    """``'30 seconds'``, ``'2 minutes'``."""
    if seconds and seconds % 60 == 0:
        minutes = seconds // 60
        return f'{minutes} minute{"" if minutes == 1 else "s"}'
    return f'{seconds} second{"" if seconds == 1 else "s"}'


def sessions(count):
    """``'one session'``, ``'2 sessions'``."""
    return 'one session' if count == 1 else f'{count} sessions'


def ended_message(reason, policy):
    """What to tell a browser whose session ended for ``reason``."""
    message = ENDED_MESSAGES.get(reason)
    if message is None:
        return None
    return message.format(
        idle=duration(policy.idle_timeout or 0),
        limit=sessions(policy.max_sessions),
    )


def layout(request, title, body, theme=DEFAULT_THEME, visitor=None):
    """A whole page, ``body`` being trusted HTML; the navigation shows who
    is signed in when ``visitor`` is given (pages that read no session
    cannot know)."""
    if theme not in THEMES:
        theme = DEFAULT_THEME
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} - pyramid_session_suite demo</title>
<style>{CSS}</style>
</head>
<body class="{theme}">
<header>{nav(request, visitor)}</header>
<main>
<h1>{e(title)}</h1>
{body}
</main>
</body>
</html>
"""


def nav(request, visitor):
    """The demo's name (its home page), the site, the user index's pages,
    About; who is signed in."""
    links = [
        link('Session suite demo', request.route_url('home'), **BRAND),
        where(request),
    ]
    who = ''
    if visitor is not None and visitor.userid is not None:
        sessions_url = request.route_url('session_suite.sessions')
        links.append(link('Your sessions', sessions_url))
        if visitor.is_admin:
            # the user index's admin pages, one per (demo) user
            users = ' '.join(
                link(
                    user, request.route_url('session_suite.admin', userid=user)
                )
                for user in visitor.users
                if user != visitor.userid
            )
            links.append(f'<span>Sessions of {users}</span>')
        who = (
            '<span class="who">Signed in as '
            f'<strong id="nav-user">{e(visitor.userid)}</strong></span>'
            + post_button(request, 'logout', 'Sign out', csrf_of(request))
        )
    elif visitor is not None:
        login_url = request.route_url('login')
        who = (
            f'<a class="who" id="nav-login" href="{e(login_url)}">Sign in</a>'
        )
    links.append(link('About', request.route_url('about')))
    return f'<nav>{"".join(links)}{who}</nav>'


def where(request):
    """Which site of the demo this page is on, as a small label."""
    crossdomain = request.registry.get(CROSSDOMAIN_KEY)
    here = request.host_url
    if crossdomain is None or here not in crossdomain.sites:
        return ''
    role = 'hub' if here == crossdomain.hub else 'other site'
    host = here.split('://', 1)[1]
    return f'<span class="where" id="where">{e(host)} · {role}</span>'


def link(text, url, **attributes):
    extra = ''.join(
        f' {name}="{e(value)}"' for name, value in attributes.items()
    )
    return f'<a href="{e(url)}"{extra}>{e(text)}</a>'


def csrf_of(request):
    return request.session.get_csrf_token()


def post_button(request, route_name, label, csrf_token, **fields):
    """A one-button POST form carrying the CSRF token."""
    inputs = ''.join(
        f'<input type="hidden" name="{e(name)}" value="{e(value)}">'
        for name, value in (('csrf_token', csrf_token), *fields.items())
    )
    action = request.route_url(route_name)
    return (
        f'<form id="{e(route_name)}" method="post" action="{e(action)}">'
        f'{inputs}<button type="submit">{e(label)}</button></form>'
    )


def accessed_line(namespaces):
    names = ', '.join(namespaces) or 'none'
    return (
        '<p class="accessed">Namespaces accessed by this request: '
        f'<span id="accessed">{e(names)}</span></p>'
    )


def notices(request, visitor, reasons=()):
    """The flash messages, then why the previous session ended (``reasons``
    and the visitor's own, said once)."""
    parts = [
        f'<p class="flash" role="status">{e(message)}</p>'
        for message in visitor.flashes
    ]
    policy = policy_of(request)
    messages = []
    for reason in (*reasons, visitor.ended):
        message = ended_message(reason, policy)
        if message is not None and message not in messages:
            messages.append(message)
    parts.extend(
        f'<p class="notice" role="status">{e(message)}</p>'
        for message in messages
    )
    return '\n'.join(parts)


def demo_users_note():
    return (
        '<p class="demo-only"><strong>Demo only:</strong> the users '
        '<code>alice</code>, <code>bob</code> and <code>admin</code> have '
        'their name as password, written in <code>demo/security.py</code>. '
        'Never do this in a real application.</p>'
    )


def site_section(site):
    """Where the browser is, and the links of the cross-domain flows."""
    here = f'<span class="site" id="site">{e(site.here)}</span>'
    if not site.in_group:
        sites = ' or '.join(link(f'{url}/', f'{url}/') for url in site.sites)
        return (
            f'<p>You are on {here}, which is not one of the demo\'s sites: '
            f'open {sites}.</p>'
        )
    items = []
    if site.is_hub:
        others = ', '.join(e(other) for other in site.others)
        intro = (
            f'You are on {here}, the hub, where people sign in. The same '
            f'server also answers on {others}: to your browser a different '
            'site, with its own cookies.'
        )
        for other in site.others:
            items.append(
                link(f'Open {other}/', f'{other}/', **OTHER_SITE)
                + ': a sign-in here goes through it, so it shares your '
                'session; a browser without a session there is sent here '
                'and straight back with yours (the <em>redirect</em> flow).'
            )
        push_text, what, whose = (
            'Push your session to {}',
            'the same hand-off',
            'that',
        )
    else:
        intro = (
            f'You are on {here}: to your browser a different site from the '
            f'hub, {e(site.hub)}, with its own cookies. "Sign in" here takes '
            'you to the hub and back.'
        )
        items.append(
            link(f'Open {site.hub}/', f'{site.hub}/', **OTHER_SITE)
            + ': the hub.'
        )
        push_text, what, whose = (
            "Get the hub's session again",
            'the hand-off from the hub',
            'this',
        )
    for target, url in site.push:
        items.append(
            link(push_text.format(target), url, **PUSH)
            + f': {what} on demand (the <em>push</em> flow), replacing any '
            f'session {whose} site has.'
        )
    lines = ''.join(f'<li>{item}</li>\n' for item in items)
    return f"""<p>{intro} The sites share one login through the
<code>main</code> session in Redis.</p>
<ul class="sites">
{lines}</ul>
"""


OTHER_SITE = {'class': 'other-site'}
BRAND = {'class': 'brand'}
PUSH = {'class': 'push'}


def home(request, visitor, site, visits, theme, csrf_token, accessed):
    other = 'dark' if theme == 'light' else 'light'
    policy = policy_of(request)
    if visitor.userid is not None:
        you = (
            '<p>You are signed in as <strong id="user">'
            f'{e(visitor.userid)}</strong>.</p>'
        )
    else:
        you = (
            '<p>You are <strong id="user">not signed in</strong>. '
            f'{link("Sign in", request.route_url("login"))} as '
            '<code>alice</code>, <code>bob</code> or <code>admin</code>: '
            'demo-only users whose password is their name.</p>'
        )
    idle = duration(policy.idle_timeout or 0)
    hub = e(site.hub)
    body = f"""
{notices(request, visitor)}
{you}
<section class="card">
<h2>Try it</h2>
<ul class="try">
{limit_item(policy)}
<li><strong>Idle timeout.</strong> Leave a signed-in window alone for
{idle}, then click anything: it is sent to the sign-in page, signed
out.</li>
<li><strong>Your sessions.</strong> Signed in, "Your sessions" lists the
browsers signed in to your account (device, IP address, last activity) and
signs them out. Signed in as admin, "Sessions of" shows alice's and bob's,
and ends them: that browser's next click says so.</li>
<li><strong>Two sites, one sign-in.</strong> Sign in on {hub}, then open
the other site below: you are signed in there too. Sign out on either:
both are signed out, and the other one says so. Sign in again: both are
signed in again.</li>
<li><strong>The debug toolbar.</strong> On pages opened from this computer,
the red tab at the right edge of the page opens it in a new tab; its
SessionMulti panel shows what each request did to every namespace.</li>
</ul>
</section>
<section class="card">
<h2>Two sites</h2>
{site_section(site)}
</section>
<section class="card">
<h2>Session namespaces</h2>
<p>You have loaded this page <strong id="visits">{visits}</strong>
time{'' if visits == 1 else 's'}. The counter lives in the
<code>main</code> namespace, stored in Redis.</p>
<p>Your theme is <strong id="theme">{e(theme)}</strong>, kept in the
<code>prefs</code> namespace, a signed cookie.</p>
{post_button(request, 'theme', f'Switch to {other}', csrf_token, theme=other)}
{post_button(request, 'forget', 'Forget me', csrf_token)}
{accessed_line(accessed)}
</section>
"""
    return layout(request, 'Home', body, theme, visitor)


NUMBERS = {2: 'Two', 3: 'Three', 4: 'Four'}


def limit_item(policy):
    """The "try it" item of the login limit."""
    limit = policy.max_sessions
    lock = duration(policy.lock_seconds)
    if limit == 1:
        return f"""<li><strong>One session per account.</strong> Sign in as
alice, then as alice in a private window or another browser: that second
sign-in is refused while the first window was active in the last {lock}.
Leave the first window alone for {lock} and the second sign-in succeeds; the
first window's next click says why it was signed out.</li>"""
    return f"""<li><strong>{NUMBERS.get(limit, limit)} sessions per account.
</strong> Sign in as
alice here and in a private window: "Your sessions" lists both. Then sign in
as alice in another browser (or a guest window): that sign-in is refused
while the least recently active of the two was active in the last {lock}.
Leave it alone for {lock} and the new sign-in succeeds; the window it signed
out says why at its next click.</li>"""


def login(
    request,
    visitor,
    site,
    csrf_token,
    next_url,
    theme=DEFAULT_THEME,
    ended=None,
    username='',
    error=None,
    refused=None,
):
    """The sign-in page: ``ended`` is the ``session_ended`` parameter the
    policy redirects with, ``refused`` the seconds to wait after a login
    refused by the policy."""
    policy = policy_of(request)
    parts = [notices(request, visitor, [ended])]
    if error:
        parts.append(
            f'<p class="error" id="error" role="alert">{e(error)}</p>'
        )
    if refused is not None:
        limit = policy.max_sessions
        where, that = (
            ('somewhere else', 'that session')
            if limit == 1
            else (f'in {limit} other places', 'the least recently used one')
        )
        parts.append(
            f'<div class="error" id="refused" role="alert"><p><strong>'
            f'{e(username)} is already signed in {where}</strong>, '
            f'active less than {duration(policy.lock_seconds)} ago, and '
            f'this demo allows {sessions(limit)} per account.</p><p>Try '
            f'again in <strong id="retry-after">{refused}</strong> '
            f'second{"" if refused == 1 else "s"}: once {that} has been '
            f'idle for {duration(policy.lock_seconds)}, signing in here '
            'signs it out. Or sign out there.</p></div>'
        )
    if visitor.userid is not None:
        parts.append(
            f'<p>You are signed in as <strong id="user">'
            f'{e(visitor.userid)}</strong>. Signing in as someone else '
            'signs you out first.</p>'
        )
    hidden = {'csrf_token': csrf_token}
    if next_url:
        hidden['next'] = next_url
    inputs = ''.join(
        f'<input type="hidden" name="{e(name)}" value="{e(value)}">'
        for name, value in hidden.items()
    )
    back = ''
    if next_url and not next_url.startswith(('/', site.here + '/')):
        back = (
            '<p>After signing in you go back to the site you came from, '
            'signed in there too.</p>'
        )
    parts.append(
        '<section class="card">'
        f'<form id="login" class="signin" method="post" '
        f'action="{e(request.route_url("login"))}">{inputs}'
        '<label>User name <input name="username" autocomplete="username" '
        f'required value="{e(username)}"></label>'
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button class="primary" type="submit">Sign in</button></form>'
        f'{back}</section>'
    )
    parts.append(demo_users_note())
    return layout(request, 'Sign in', '\n'.join(parts), theme, visitor)


def policy_of(request):
    """The policy's settings (``lock_seconds``, ``idle_timeout`` ...)."""
    return request.registry.getUtility(IUserIndex).policy


def about(request, accessed):
    body = f"""
<p>This page reads no session: no namespace is loaded, Redis is not asked
anything and the response sets no cookie. (So it shows the default theme.)
</p>
<p>A browser that has been to the home page carries the <code>main</code>
cookie, and the policy's tween reads that session on every request that
carries it (to check its deadlines, and to tell a signed-out browser why).
This page is listed in <code>session_suite.policy.skip_paths</code>, so even
then nothing is read.</p>
{accessed_line(accessed)}
"""
    return layout(request, 'About', body)
