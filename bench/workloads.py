"""What one cell (a scenario on a stack) runs.

A workload has three methods: ``prepare(count)`` (untimed: whatever the
next ``count`` operations need), ``run(prepared)`` (timed: the operations;
returns the elapsed seconds) and ``once(prepared)`` (one operation, whose
result is checked and whose Redis commands are counted).
"""

import functools
from pyramid.interfaces import IRequestFactory
from pyramid.request import Request, apply_request_extensions

from .apps import TIMEOUT, XD_SITES, crossdomain_of, fill_anonymous, tracker_of
from .counting import evalsha_stats
from .driver import (
    REMOTE_ADDR,
    USER_AGENT,
    call,
    time_calls,
    time_each,
    time_limit,
    time_requests,
)
from .scenarios import LOGIN_PREFIX, anonymous_visitor, login_environ


class Requests:
    """The same WSGI request, again and again."""

    def __init__(self, app, environ):
        self.app = app
        self.environ = environ

    def prepare(self, count):
        return count

    def run(self, count):
        return time_requests(self.app, self.environ, count)

    def once(self, count):
        return call(self.app, self.environ)


class Limit:
    """The physical limit of a session read (or, with ``write``, of a
    session write): the floor's request, then one raw redis-py ``GETEX``
    of a session-sized ``key`` (and one raw ``SET`` of the value read),
    back to back, on the limit's own client. No session machinery, no
    signing, no serialization: what is left is Pyramid's dispatch, redis-py
    and the round trips."""

    def __init__(self, app, environ, client, key, write=False):
        self.app = app
        self.environ = environ
        self.client = client
        self.key = key
        self.write = write
        #: the session's TTL, in seconds (as the suite refreshes it)
        self.ttl = TIMEOUT

    def prepare(self, count):
        return count

    def run(self, count):
        return time_limit(
            self.app,
            self.environ,
            self.client,
            self.key,
            self.ttl,
            self.write,
            count,
        )

    def once(self, count):
        response = call(self.app, self.environ)
        value = self.client.getex(self.key, ex=self.ttl)
        if not value:
            raise AssertionError(f'limit: {self.key!r} is gone')
        if self.write:
            self.client.set(self.key, value, ex=self.ttl)
        return response


class Logins:
    """One login per request: each by a new user id (from ``ids``, shared
    by the stacks), each from a new anonymous session made through the
    application (``GET /anon``) while preparing. The floor gets the same
    form without a session."""

    def __init__(self, app, ids, sessions=True):
        self.app = app
        self.ids = ids
        self.sessions = sessions

    def environ(self):
        userid = f'{LOGIN_PREFIX}{next(self.ids):06d}'
        if self.sessions:
            cookie, token = anonymous_visitor(self.app)
        else:
            cookie, token = None, 'no-session'
        return login_environ(cookie, token, userid)

    def prepare(self, count):
        return [self.environ() for _ in range(count)]

    def run(self, environs):
        return time_each(self.app, environs)

    def once(self, environs):
        (environ,) = environs
        return call(self.app, environ)


class Listings:
    """The sessions of one user, listed by the user index (a Python call:
    what a "your sessions" page or an administrator's tool does). The
    time Redis spends running the listing script during the timed batches
    is read from ``INFO commandstats`` (the script blocks the server)."""

    def __init__(self, index, userid):
        self.client = index.client
        self.list = functools.partial(index.list, userid)
        #: Redis time (microseconds) and script calls of the timed batches
        self.server_micros = 0
        self.server_calls = 0

    def prepare(self, count):
        return count

    def run(self, count):
        micros, calls = evalsha_stats(self.client)
        elapsed = time_calls(self.list, count)
        after_micros, after_calls = evalsha_stats(self.client)
        self.server_micros += after_micros - micros
        self.server_calls += after_calls - calls
        return elapsed

    def once(self, count):
        return self.list()

    def server_time(self):
        """Microseconds Redis spent per listing, or ``None``."""
        if not self.server_calls:
            return None
        return self.server_micros / self.server_calls


def blank_request(app):
    """A request of ``app``'s class and extensions, from the benchmark's
    browser, outside of any WSGI call: its callbacks never run."""
    registry = app.registry
    factory = registry.queryUtility(IRequestFactory, default=Request)
    request = factory.blank(
        '/',
        environ={'REMOTE_ADDR': REMOTE_ADDR},
        headers={'User-Agent': USER_AGENT},
    )
    request.registry = registry
    apply_request_extensions(request)
    return request


def add_sessions(app, userid, count):
    """Give ``userid`` ``count`` sessions on the suite ``users`` application
    ``app``, directly: each the session of an anonymous visitor plus
    ``user``, logged in through the user index (unlimited), with what the
    benchmark's browser would be described as. Return their ids."""
    tracker = tracker_of(app)
    sids = []
    for _ in range(count):
        request = blank_request(app)
        session = tracker.session(request)
        fill_anonymous(session)
        session['user'] = userid
        tracker.register(request, session, userid, limits=False)
        sids.append(session.session_id)
    return sids


class HandOffs:
    """Cross-domain hand-offs, as the redirect flow makes them: the hub
    mints a token for site B (bound to the browser's state cookie), site B
    opens it. With ``redeem``, site B redeems it in full, as its import
    view does: it opens it and claims it (one ``EVAL``: the token's id is
    claimed only if the session exists, one round trip). The session
    handed off exists (made while preparing)."""

    #: the browser's state cookie
    STATE = 'benchmark-state-cookie-value'

    def __init__(self, app, redeem=False):
        from pyramid.request import Request

        self.crossdomain = crossdomain_of(app)
        self.codec = self.crossdomain.codec
        self.src, self.dst = XD_SITES
        self.redeem = redeem
        self.request = Request.blank(self.dst + '/')
        self.request.registry = app.registry
        factory = self.crossdomain.factory
        self.session_id = factory.new_session_id()
        factory.redis.set(self.session_id, b'{}', ex=TIMEOUT)

    def handoff(self):
        """One hand-off; return the payload site B got."""
        token = self.codec.mint(
            self.session_id, self.src, self.dst, state=self.STATE
        )
        if self.redeem:
            from pyramid_session_suite.crossdomain.views import _redeem

            return _redeem(
                self.request, self.crossdomain, token, 'redirect', self.STATE
            )
        return self.codec.open(token, self.dst, state=self.STATE)

    def prepare(self, count):
        return count

    def run(self, count):
        return time_calls(self.handoff, count)

    def once(self, count):
        return self.handoff()
