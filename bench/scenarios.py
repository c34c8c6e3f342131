"""The scenarios: which request a stack gets, and what a correct answer
looks like."""

from dataclasses import dataclass

from .driver import call, make_environ


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    #: ``True``: the request carries the cookies of a returning visitor
    returning: bool
    #: the cookies a session stack must set (floor sets none)
    sets_cookies: tuple
    description: str


SCENARIOS = (
    Scenario(
        'untouched',
        '/untouched',
        True,
        (),
        'returning visitor; the view touches no namespace',
    ),
    Scenario(
        'read',
        '/read',
        True,
        (),
        'returning visitor; the view reads a key of the Redis namespace',
    ),
    Scenario(
        'write',
        '/write',
        True,
        (),
        'returning visitor; the view writes a key of the Redis namespace',
    ),
    Scenario(
        'new',
        '/write',
        False,
        ('r',),
        'no cookie; the view writes a key, so a Redis session is created',
    ),
)

SCENARIO_NAMES = tuple(scenario.name for scenario in SCENARIOS)


def returning_visitor(app):
    """Log in once through ``app``; return the ``Cookie`` header of the
    visitor it made (a Redis session and a cookie session)."""
    response = call(app, make_environ('/login'))
    check(response, 'login', '200 OK')
    return response.cookie_header()


def environ_for(scenario, cookie):
    return make_environ(scenario.path, cookie if scenario.returning else None)


def check_response(stack, scenario, response):
    """Raise ``AssertionError`` unless ``response`` is right for
    ``scenario`` on ``stack``."""
    label = f'{stack}/{scenario.name}'
    check(response, label, '200 OK')
    if stack == 'floor':
        expected_cookies = []
    else:
        expected_cookies = sorted(scenario.sets_cookies)
    if response.set_cookies != expected_cookies:
        raise AssertionError(
            f'{label}: set cookies {response.set_cookies}, expected '
            f'{expected_cookies}'
        )
    if stack != 'floor' and scenario.name == 'read':
        if response.body != b'alice':
            raise AssertionError(f'{label}: read {response.body!r}')
    if stack != 'floor' and scenario.name in ('write', 'new'):
        if not response.body.isdigit():
            raise AssertionError(f'{label}: wrote {response.body!r}')
        if scenario.name == 'new' and response.body != b'1':
            raise AssertionError(f'{label}: new session {response.body!r}')


def check(response, label, status):
    if response.status != status:
        raise AssertionError(
            f'{label}: {response.status}, expected {status}: '
            f'{response.body[:300]!r}'
        )
