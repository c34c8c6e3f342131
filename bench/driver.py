"""The cheapest honest WSGI driver: a prebuilt environ, copied per request
(or one prebuilt environ per request, for requests that consume state), and
a ``start_response`` that does nothing (or, untimed, keeps the answer); and
how interleaved batches are ordered and compared."""

import gc
import io
import statistics
import sys
import time
import urllib.parse

#: the client of every request: one browser, one address (the user index
#: records them at login and compares them on every request)
REMOTE_ADDR = '198.51.100.7'
USER_AGENT = (
    'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
)


def make_environ(path, cookie=None, form=None):
    """The environ of ``GET path``, or of ``POST path`` with ``form`` (a
    dict, URL-encoded), with an optional ``Cookie`` header."""
    body = b''
    if form is not None:
        body = urllib.parse.urlencode(form).encode('ascii')
    environ = {
        'REQUEST_METHOD': 'GET' if form is None else 'POST',
        'SCRIPT_NAME': '',
        'PATH_INFO': path,
        'QUERY_STRING': '',
        'SERVER_NAME': 'localhost',
        'SERVER_PORT': '80',
        'SERVER_PROTOCOL': 'HTTP/1.1',
        'HTTP_HOST': 'localhost',
        'REMOTE_ADDR': REMOTE_ADDR,
        'HTTP_USER_AGENT': USER_AGENT,
        'wsgi.version': (1, 0),
        'wsgi.url_scheme': 'http',
        'wsgi.input': io.BytesIO(body),
        'wsgi.errors': sys.stderr,
        'wsgi.multithread': False,
        'wsgi.multiprocess': False,
        'wsgi.run_once': False,
    }
    if form is not None:
        environ['CONTENT_TYPE'] = 'application/x-www-form-urlencoded'
        environ['CONTENT_LENGTH'] = str(len(body))
    if cookie:
        environ['HTTP_COOKIE'] = cookie
    return environ


class Response:
    """What one request returned."""

    def __init__(self):
        self.status = None
        self.headers = []
        self.body = b''

    def start_response(self, status, headers, exc_info=None):
        self.status = status
        self.headers = headers

    @property
    def set_cookies(self):
        """The cookie names this response sets or deletes."""
        return sorted(
            value.split('=', 1)[0]
            for name, value in self.headers
            if name.lower() == 'set-cookie'
        )

    def cookie_header(self):
        """A ``Cookie`` header sending back the cookies set here."""
        return '; '.join(
            value.split(';', 1)[0]
            for name, value in self.headers
            if name.lower() == 'set-cookie'
        )


def call(app, environ):
    """Run one request through ``app``; return its :class:`Response`."""
    response = Response()
    app_iter = app(dict(environ), response.start_response)
    try:
        response.body = b''.join(app_iter)
    finally:
        close = getattr(app_iter, 'close', None)
        if close is not None:
            close()
    return response


def _start_response(status, headers, exc_info=None):
    pass


def time_requests(app, environ, count):
    """Run ``count`` requests; return the elapsed wall time in seconds."""
    copy = environ.copy
    start_response = _start_response
    join = b''.join
    gc.collect()
    start = time.perf_counter()
    for _ in range(count):
        app_iter = app(copy(), start_response)
        join(app_iter)
        close = getattr(app_iter, 'close', None)
        if close is not None:
            close()
    return time.perf_counter() - start


def time_limit(app, environ, client, key, ttl, write, count):
    """Run ``count`` requests, each followed by a raw ``GETEX key EX ttl``
    (and, with ``write``, a raw ``SET key <value read> EX ttl``) through
    the redis-py ``client``; return the elapsed wall time in seconds."""
    copy = environ.copy
    start_response = _start_response
    join = b''.join
    getex = client.getex
    set_ = client.set
    gc.collect()
    start = time.perf_counter()
    for _ in range(count):
        app_iter = app(copy(), start_response)
        join(app_iter)
        close = getattr(app_iter, 'close', None)
        if close is not None:
            close()
        value = getex(key, ex=ttl)
        if write:
            set_(key, value, ex=ttl)
    return time.perf_counter() - start


def time_each(app, environs):
    """Run one request per environ of ``environs`` (each is used once:
    they are not copied); return the elapsed wall time in seconds."""
    start_response = _start_response
    join = b''.join
    gc.collect()
    start = time.perf_counter()
    for environ in environs:
        app_iter = app(environ, start_response)
        join(app_iter)
        close = getattr(app_iter, 'close', None)
        if close is not None:
            close()
    return time.perf_counter() - start


def time_calls(function, count):
    """Call ``function()`` ``count`` times; return the elapsed wall time in
    seconds."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(count):
        function()
    return time.perf_counter() - start


def rotated(items, by):
    """``items`` starting at ``by`` (modulo their number): the order of the
    stacks in one repetition of interleaved batches."""
    by %= len(items)
    return items[by:] + items[:by]


def paired_ratio(rates, base_rates):
    """The median of ``rate / base rate`` over the repetitions: batches of
    one repetition run back to back, so a slow spell cancels out."""
    return statistics.median(
        rate / base for rate, base in zip(rates, base_rates, strict=True)
    )
