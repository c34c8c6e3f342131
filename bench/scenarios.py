"""The scenarios: which request (or call) a stack gets, and what a correct
answer looks like."""

from dataclasses import dataclass

from .apps import LIMIT, PARSER_STACKS, STACKS, base_stack, python_stack
from .counting import default_parser
from .driver import call, make_environ

#: the user the logged-in visitor of ``user read`` and ``user write`` (and
#: of ``plain user read`` and ``plain user write``) is
USER = 'alice'

#: the users of ``index user read`` and ``policy user read``: users of
#: their own (the applications share the user index, whose policy refuses
#: a second recent login of a user), as long as :data:`USER` (the sessions
#: are the same size)
INDEX_USER = 'irene'
POLICY_USER = 'paula'

#: the logged-in read, one feature added at a time: each scenario, and the
#: feature it adds to the scenario before it
READ_FEATURES = (
    ('plain user read', None),
    ('index user read', 'user index'),
    ('policy user read', 'policy'),
    ('user read', 'cross-domain'),
)

#: how many sessions the user of the listing scenario has (the listing is
#: one round trip whatever the number; registering them one by one costs
#: the index a pruning pass over the user's entries each time, so the
#: setup grows with the square of the number: the smoke run lists fewer)
LIST_SIZE = 1000
SMOKE_LIST_SIZE = 100

#: the user ids of the ``login`` scenario: a new one per login
LOGIN_PREFIX = 'user'


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    #: ``request``: the same WSGI request again and again; ``login``: one
    #: WSGI request per new anonymous visitor; ``list``: a Python call,
    #: no WSGI
    kind: str = 'request'
    path: str = '/'
    #: the cookies the request carries: ``returning`` (an anonymous
    #: returning visitor), ``user`` (a logged-in one, logged in on the
    #: suite's ``users`` variant), ``plain user`` (the same logged-in
    #: visitor, logged in on the suite's ``plain`` variant), ``index
    #: user`` and ``policy user`` (logged in on the suite's ``index`` and
    #: ``index+policy`` variants) or ``None``
    visitor: str | None = None
    #: the user id of a logged-in visitor (and the one the read answers)
    user: str = USER
    #: which variant of the applications serves it (see :mod:`.apps`)
    variant: str = 'plain'
    #: the stacks it runs on (the others have no equivalent)
    stacks: tuple = STACKS
    #: the cookies a session stack must set (floor sets none)
    sets_cookies: tuple = ()
    #: requests per timed batch and per warm-up, relative to the others
    scale: float = 1.0
    #: ``list``: how many sessions are listed
    size: int = 0
    #: the scenario whose ``limit`` cells bound this one (the same
    #: operation on a bare request), if any
    limit: str | None = None
    #: for a logged-in scenario of the ``users`` variant, the scenario of
    #: the same operation by the same logged-in visitor on the suite
    #: without the user index, policy and cross-domain sharing: what the
    #: goal compares it with (the cost of the features)
    plain: str | None = None
    #: for a logged-in scenario, the scenario of the same operation by an
    #: anonymous returning visitor (an informative comparison: the two
    #: visitors' sessions differ too)
    anonymous: str | None = None


def make_scenarios(list_size=LIST_SIZE, both_parsers=None):
    """The scenarios of a run whose listed user has ``list_size``
    sessions. The read and write scenarios have the limit stack too and,
    with ``both_parsers`` (default: if hiredis is installed), the stacks
    of :data:`.apps.PARSER_STACKS` again with the pure-Python parser.
    The logged-in read and write of the suite's ``users`` variant have
    twins on its ``plain`` variant (``plain user read``, ``plain user
    write``: the same visitor, without the features), which their goal
    compares them with. The logged-in read has more twins, on the
    suite variants in between (see :data:`READ_FEATURES`)."""
    if both_parsers is None:
        both_parsers = default_parser() == 'hiredis'
    limited = (*STACKS, LIMIT)
    if both_parsers:
        limited += tuple(map(python_stack, PARSER_STACKS))
    return (
        Scenario(
            'untouched',
            'returning visitor; the view touches no namespace',
            path='/untouched',
            visitor='returning',
        ),
        Scenario(
            'read',
            'returning visitor; the view reads a key of the Redis namespace',
            path='/read',
            visitor='returning',
            stacks=limited,
            limit='read',
        ),
        Scenario(
            'write',
            'returning visitor; the view writes a key of the Redis namespace',
            path='/write',
            visitor='returning',
            stacks=limited,
            limit='write',
        ),
        Scenario(
            'new',
            'no cookie; the view writes a key, so a Redis session is created',
            path='/write',
            sets_cookies=('r',),
        ),
        Scenario(
            'user read',
            'logged-in returning visitor (suite: policy, user index and '
            'cross-domain sharing on the Redis namespace, defaults, '
            'touch_interval 60 s); the view reads a key of the Redis '
            'namespace',
            path='/read',
            visitor='user',
            variant='users',
            limit='read',
            plain='plain user read',
            anonymous='read',
        ),
        Scenario(
            'user write',
            'logged-in returning visitor, same stacks; the view writes a key '
            'of the Redis namespace',
            path='/write',
            visitor='user',
            variant='users',
            limit='write',
            plain='plain user write',
            anonymous='write',
        ),
        Scenario(
            'plain user read',
            'the logged-in visitor of user read (an anonymous visitor with '
            'a CSRF token and a few keys, then a login the application '
            'keeps in its session: a new id, its user id, as the plain '
            'application\'s login view does) on the suite without the user '
            'index, policy and cross-domain sharing; the view reads a key '
            'of the Redis namespace',
            path='/read',
            visitor='plain user',
            stacks=('suite',),
        ),
        Scenario(
            'plain user write',
            'the same logged-in visitor on the suite without the user '
            'index, policy and cross-domain sharing; the view writes a key '
            'of the Redis namespace',
            path='/write',
            visitor='plain user',
            stacks=('suite',),
        ),
        Scenario(
            'index user read',
            'the visitor of plain user read, logged in by the suite\'s '
            'login() as a user of its own, on the suite with the user index '
            'alone (defaults, touch_interval 60 s; no policy, no '
            'cross-domain sharing); the view reads a key of the Redis '
            'namespace',
            path='/read',
            visitor='index user',
            variant='index',
            stacks=('suite',),
            user=INDEX_USER,
        ),
        Scenario(
            'policy user read',
            'the same on the suite with the user index and the policy '
            '(defaults; no cross-domain sharing); the view reads a key of '
            'the Redis namespace',
            path='/read',
            visitor='policy user',
            variant='index+policy',
            stacks=('suite',),
            user=POLICY_USER,
        ),
        Scenario(
            'login',
            'an anonymous visitor (a Redis session with a CSRF token and a '
            'few keys, made untimed through the application) posts a login '
            'of a new user id: suite login() with policy and index '
            '(defaults); anchor invalidate() and write. us/req is the cost '
            'of one login',
            kind='login',
            path='/login',
            variant='users',
            sets_cookies=('r',),
            scale=0.2,
        ),
        Scenario(
            f'list {list_size}',
            f'a user with {list_size:,} sessions: the user index lists them '
            '(tracker.index.list(userid), no WSGI); req/s is listings per '
            'second. The anchor has no equivalent',
            kind='list',
            variant='users',
            stacks=('suite',),
            scale=0.02,
            size=list_size,
        ),
        Scenario(
            'token',
            'a cross-domain hand-off: TokenCodec.mint() on the hub, then '
            '.open() on site B (the codec the crossdomain include builds: '
            '2 sites, one 48-byte secret; redirect flow, bound to a state '
            'cookie), no Redis, no WSGI; us/req is microseconds per '
            'hand-off',
            kind='token',
            variant='crossdomain',
            stacks=('suite',),
        ),
        Scenario(
            'token redeem',
            'mint, then the full redeem of site B\'s import view: open() and '
            'the single-use claim (one EVAL: the token id is claimed only '
            'if the session exists; one round trip); no WSGI',
            kind='redeem',
            variant='crossdomain',
            stacks=('suite',),
        ),
    )


def after(cookie, response):
    """The ``Cookie`` header a browser sends once ``response`` answered a
    request that carried ``cookie``: the cookies it sets replace those of
    the same name."""
    jar = dict(
        pair.split('=', 1) for pair in (cookie or '').split('; ') if pair
    )
    for name, value in response.headers:
        if name.lower() == 'set-cookie':
            key, value = value.split(';', 1)[0].split('=', 1)
            jar[key] = value
    return '; '.join(f'{key}={value}' for key, value in jar.items())


def returning_visitor(app):
    """Make an anonymous returning visitor through ``app``: return the
    ``Cookie`` header of a Redis session and a cookie session."""
    response = call(app, make_environ('/visitor'))
    check(response, 'visitor', '200 OK')
    return response.cookie_header()


def anonymous_visitor(app):
    """Make an anonymous visitor through ``app`` (``GET /anon``): return
    its ``Cookie`` header and CSRF token."""
    response = call(app, make_environ('/anon'))
    check(response, 'anon', '200 OK')
    return response.cookie_header(), response.body.decode('ascii')


def login_environ(cookie, token, userid):
    """The environ of the login form of ``userid`` posted by a visitor."""
    return make_environ(
        '/login', cookie, form={'user': userid, 'csrf_token': token}
    )


def logged_in_visitor(app, userid=USER):
    """Make a visitor through ``app`` and log ``userid`` in: return the
    ``Cookie`` header it then sends."""
    cookie, token = anonymous_visitor(app)
    response = call(app, login_environ(cookie, token, userid))
    check(response, 'login', '200 OK')
    return after(cookie, response)


def environ_for(scenario, cookies):
    """The environ of a ``request`` scenario; ``cookies`` maps a visitor
    kind to its ``Cookie`` header."""
    cookie = cookies[scenario.visitor] if scenario.visitor else None
    return make_environ(scenario.path, cookie)


def check_result(stack, scenario, result):
    """Raise ``AssertionError`` unless ``result`` (a response, or the
    entries listed) is right for ``scenario`` on ``stack``."""
    label = f'{stack}/{scenario.name}'
    if scenario.kind in ('token', 'redeem'):
        if not isinstance(result, dict) or not result.get('sid'):
            raise AssertionError(f'{label}: opened {result!r}')
        return
    if scenario.kind == 'list':
        if len(result) != scenario.size:
            raise AssertionError(f'{label}: listed {len(result)} sessions')
        if any('sid' in entry for entry in result):
            raise AssertionError(f'{label}: a session id was listed')
        return
    response = result
    check(response, label, '200 OK')
    bare = base_stack(stack) in ('floor', LIMIT)
    if bare:
        expected_cookies = []
    else:
        expected_cookies = sorted(scenario.sets_cookies)
    if response.set_cookies != expected_cookies:
        raise AssertionError(
            f'{label}: set cookies {response.set_cookies}, expected '
            f'{expected_cookies}'
        )
    if bare:
        return
    body = response.body
    if scenario.path == '/read':
        if body != scenario.user.encode():
            raise AssertionError(f'{label}: read {body!r}')
    if scenario.path == '/write':
        if not body.isdigit():
            raise AssertionError(f'{label}: wrote {body!r}')
        if scenario.visitor is None and body != b'1':
            raise AssertionError(f'{label}: new session {body!r}')
    if scenario.kind == 'login':
        if not body.startswith(LOGIN_PREFIX.encode()):
            raise AssertionError(f'{label}: logged in {body!r}')


def check(response, label, status):
    if response.status != status:
        raise AssertionError(
            f'{label}: {response.status}, expected {status}: '
            f'{response.body[:300]!r}'
        )
