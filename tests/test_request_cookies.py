"""The suite reads the ``Cookie`` header itself when every cookie in it is
plain, and gets the same cookies WebOb would."""

import random
import string
from pyramid.request import Request
from webob.cookies import parse_cookie

from pyramid_session_suite._request_cookies import (
    plain_cookies,
    readable_cookies,
)

#: characters of names and values, some that WebOb treats specially
CHARS = (
    string.ascii_letters[:4]
    + string.digits[:3]
    + '!#$%&\'*+-.^_`|~:/(){}<>?@=" \\,\t[]é\x7f'
)
SEPARATORS = (';', '; ', ' ;', ';  ')


def webob_cookies(header):
    return {
        name.decode('utf-8'): value.decode('utf-8')
        for name, value in parse_cookie(header)
    }


def random_header(rng):
    segments = []
    for _ in range(rng.randint(1, 4)):
        name = ''.join(rng.choice(CHARS) for _ in range(rng.randint(0, 4)))
        if rng.random() < 0.3:
            name = rng.choice(['path', 'Max-Age', '$v', 'r', 'session'])
        value = ''.join(rng.choice(CHARS) for _ in range(rng.randint(0, 6)))
        segments.append(f'{name}={value}')
    return rng.choice(SEPARATORS).join(segments)


def test_a_header_read_here_gives_what_webob_gives():
    rng = random.Random(6)
    read_here = 0
    for _ in range(40_000):
        header = random_header(rng)
        cookies = plain_cookies(header)
        if cookies is not None:
            read_here += 1
            assert cookies == webob_cookies(header), header
    # the comparison covered many headers, not only the trivial ones
    assert read_here > 1000


def test_a_browser_header_is_read_here():
    header = 'r=YWJj.ZGVm-_x; c=eyJhIjoxfQ==.sig; theme=dark'
    assert plain_cookies(header) == {
        'r': 'YWJj.ZGVm-_x',
        'c': 'eyJhIjoxfQ==.sig',
        'theme': 'dark',
    }


def test_the_later_cookie_of_a_name_wins_as_in_webob():
    header = 'r=first; r=second'
    assert plain_cookies(header) == webob_cookies(header) == {'r': 'second'}


def test_quoted_values_attribute_names_and_spaces_are_left_to_webob():
    for header in ('r="a b"', 'r=a\\054b', 'path=/; r=a', 'r = a', '$r=a'):
        assert plain_cookies(header) is None


def test_request_cookies_see_the_same_parse():
    request = Request.blank('/', headers={'Cookie': 'r=abc; c=def'})
    assert dict(readable_cookies(request)) == {'r': 'abc', 'c': 'def'}
    assert dict(request.cookies) == {'r': 'abc', 'c': 'def'}
    request.cookies['c'] = 'changed'
    assert readable_cookies(request)['c'] == 'changed'
    assert request.headers['Cookie'] == 'r=abc; c=changed'


def test_a_header_with_a_quoted_value_is_parsed_by_webob():
    request = Request.blank('/', headers={'Cookie': 'r=abc; q="x y"'})
    assert dict(readable_cookies(request)) == {'r': 'abc', 'q': 'x y'}
