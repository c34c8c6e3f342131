"""Plain Python templates: every value goes through :func:`e`."""

from html import escape as e

THEMES = ('light', 'dark')
DEFAULT_THEME = 'light'

CSS = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; }
body.light { background: #fafafa; color: #222; }
body.dark { background: #1d1f21; color: #e6e6e6; }
body.dark a { color: #8ab4f8; }
main { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
nav a { margin-right: 1rem; }
form { display: inline-block; margin: 0 .5rem .5rem 0; }
button { font: inherit; padding: .3rem .8rem; cursor: pointer; }
.accessed { opacity: .75; font-size: .9rem; }
"""


def layout(request, title, body, theme=DEFAULT_THEME):
    """A whole page, ``body`` being trusted HTML."""
    if theme not in THEMES:
        theme = DEFAULT_THEME
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(title)} - pyramid_session_suite demo</title>
<style>{CSS}</style>
</head>
<body class="{theme}">
<main>
<nav>
<a href="{e(request.route_url('home'))}">Home</a>
<a href="{e(request.route_url('about'))}">About</a>
</nav>
<h1>{e(title)}</h1>
{body}
</main>
</body>
</html>
"""


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


def home(request, visits, theme, csrf_token, accessed):
    other = 'dark' if theme == 'light' else 'light'
    body = f"""
<p>You have loaded this page <strong id="visits">{visits}</strong>
time{'' if visits == 1 else 's'}. The counter lives in the
<code>main</code> namespace, stored in Redis.</p>
<p>Your theme is <strong id="theme">{e(theme)}</strong>, kept in the
<code>prefs</code> namespace, a signed cookie.</p>
{post_button(request, 'theme', f'Switch to {other}', csrf_token, theme=other)}
{post_button(request, 'forget', 'Forget me', csrf_token)}
{accessed_line(accessed)}
"""
    return layout(request, 'Home', body, theme)


def about(request, accessed):
    body = f"""
<p>This page reads no session: no namespace is loaded, Redis is not asked
anything and the response sets no cookie. (So it shows the default theme.)
</p>
{accessed_line(accessed)}
"""
    return layout(request, 'About', body)
