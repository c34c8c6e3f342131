"""The application of the soak (:mod:`bench.soak`), and the server process
that serves it.

Two sites of one cross-domain group, ``http://hub.soak.test`` (the hub)
and ``http://site.soak.test``, each a Pyramid application with every
feature on: a Redis namespace ``main`` that is also ``request.session``,
the user index and the policy on it (three sessions per account, no lock),
cross-domain sharing (redirect and push flows) and a signed cookie
namespace ``prefs``. One waitress server answers for both; the ``Host``
header picks the site. Routes of each site (JSON answers):

``/about``
    touches no session;
``/state``, ``/page``
    the user, the counters ``k*`` of ``main``, the counter of ``prefs``,
    and why the session named by the cookie ended, if it did;
``/write`` (``POST key=…``)
    increments ``main[key]`` and ``prefs['w']``; answers the state;
``/login`` (``POST user=…``), ``/logout`` (``POST``)
    :func:`pyramid_session_suite.login` and ``logout``;
``/mine``
    this session's handle and every handle of its user; ``POST handle=…``
    revokes one.

``/_soak/memory`` (any host) reports the server process's memory, once
its garbage is collected.

``python -m bench.soakapp REDIS_URL [--threads N]`` serves them with
waitress on a free loopback port and prints ``port N`` once it listens;
:class:`ServerProcess` runs that in a child process.
"""

import argparse
import collections
import gc
import importlib
import json
import logging
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import threading
from pyramid.authentication import SessionAuthenticationHelper
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.security import Allowed, Denied

from pyramid_session_suite import login, logout
from pyramid_session_suite.redis import ENDED_KEY
from pyramid_session_suite.testing import _die_with_parent

HUB_HOST = 'hub.soak.test'
SITE_HOST = 'site.soak.test'
HUB = f'http://{HUB_HOST}'
SITE = f'http://{SITE_HOST}'

SECRET = 'soak-only-session-secret-never-deployed-anywhere'
INDEX_SECRET = 'soak-only-user-index-secret-never-deployed-anywhere'
PREFS_SECRET = 'soak-only-cookie-namespace-secret-never-deployed'
XD_SECRET = 'soak-only-cross-domain-secret-never-deployed-anywhere'

#: the policy of the soak: three sessions per account, no lock, so that a
#: fourth login always succeeds and ends the least recently active one
MAX_SESSIONS = 3
#: idle timeout of ``main`` (seconds): longer than any soak, so that every
#: session that ends was ended by a request
TIMEOUT = 1200
#: seconds between activity records of an indexed session
TOUCH_INTERVAL = 5

MEMORY_PATH = '/_soak/memory'


def settings(redis_url):
    """The settings of each site."""
    return {
        'session_suite.namespaces': 'main prefs',
        'session_suite.request_session': 'main',
        'session_suite.redis_url': redis_url,
        'session_suite.namespace.main.backend': 'redis',
        'session_suite.namespace.main.secret': SECRET,
        'session_suite.namespace.main.timeout': str(TIMEOUT),
        'session_suite.namespace.prefs.secret': PREFS_SECRET,
        'session_suite.user_index.secret': INDEX_SECRET,
        'session_suite.user_index.touch_interval': str(TOUCH_INTERVAL),
        'session_suite.policy.max_sessions': str(MAX_SESSIONS),
        'session_suite.policy.lock_seconds': '0',
        'session_suite.crossdomain.sites': f'{HUB} {SITE}',
        'session_suite.crossdomain.secret': XD_SECRET,
        'session_suite.crossdomain.flows': 'redirect push',
    }


class SessionSecurityPolicy:
    """The user id lives in ``request.session``."""

    def __init__(self):
        self.helper = SessionAuthenticationHelper()

    def identity(self, request):
        return self.helper.authenticated_userid(request)

    def authenticated_userid(self, request):
        return self.helper.authenticated_userid(request)

    def permits(self, request, context, permission):
        if self.authenticated_userid(request):
            return Allowed('signed in')
        return Denied('anonymous')

    def remember(self, request, userid, **kw):
        return self.helper.remember(request, userid, **kw)

    def forget(self, request, **kw):
        return self.helper.forget(request, **kw)


def state(request):
    session = request.session
    prefs = request.session_multi['prefs']
    return {
        'user': request.authenticated_userid,
        'ended': request.environ.get(ENDED_KEY),
        'counters': {k: v for k, v in session.items() if k[:1] == 'k'},
        'prefs': prefs.get('w', 0),
    }


def about_view(request):
    return {'about': 'soak'}


def write_view(request):
    key = request.POST['key']
    session = request.session
    session[key] = session.get(key, 0) + 1
    prefs = request.session_multi['prefs']
    prefs['w'] = prefs.get('w', 0) + 1
    return state(request)


def login_view(request):
    request.response.headerlist.extend(login(request, request.POST['user']))
    return dict(state(request), handle=request.user_sessions.current)


def logout_view(request):
    request.response.headerlist.extend(logout(request))
    return state(request)


def mine_view(request):
    sessions = request.user_sessions
    if sessions.userid is None:
        raise HTTPForbidden()
    if request.method == 'POST':
        return {'count': sessions.revoke(request.POST['handle'])}
    return {
        'current': sessions.current,
        'handles': [entry.handle for entry in sessions.list()],
    }


VIEWS = {
    '/about': about_view,
    '/state': state,
    '/page': state,
    '/write': write_view,
    '/login': login_view,
    '/logout': logout_view,
    '/mine': mine_view,
}
POST_ONLY = ('/write', '/login', '/logout')


def make_site(redis_url):
    config = Configurator(settings=settings(redis_url))
    config.set_security_policy(SessionSecurityPolicy())
    config.include('pyramid_session_suite.policy')
    config.include('pyramid_session_suite.crossdomain')
    for path, view in VIEWS.items():
        name = path.strip('/')
        config.add_route(name, path)
        method = 'POST' if path in POST_ONLY else None
        config.add_view(
            view, route_name=name, renderer='json', request_method=method
        )
    return config.make_wsgi_app()


def memory():
    """The memory of this process once garbage was collected: resident
    bytes, allocated Python blocks (every live object, strings included)
    and objects tracked by the garbage collector."""
    gc.collect()
    try:
        with open('/proc/self/statm') as statm:
            rss = int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except OSError:  # not Linux: the peak, in KiB
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        'rss': rss,
        'blocks': sys.getallocatedblocks(),
        'objects': len(gc.get_objects()),
        'threads': threading.active_count(),
    }


def make_app(redis_url):
    """Both sites behind one WSGI callable (the ``Host`` header picks)."""
    sites = {HUB_HOST: make_site(redis_url), SITE_HOST: make_site(redis_url)}

    def dispatch(environ, start_response):
        if environ['PATH_INFO'] == MEMORY_PATH:
            body = json.dumps(memory()).encode('ascii')
            start_response('200 OK', [('Content-Type', 'application/json')])
            return [body]
        host = environ.get('HTTP_HOST', '').split(':')[0]
        app = sites.get(host)
        if app is None:
            start_response('404 Not Found', [('Content-Type', 'text/plain')])
            return [b'unknown host']
        return app(environ, start_response)

    return dispatch


#: where ``bench`` is importable from
ROOT = pathlib.Path(__file__).resolve().parent.parent
#: the application served by default
APP = 'bench.soakapp:make_app'


class ServerProcess:
    """``python -m bench.soakapp`` in a child process, for a ``with``
    block; its log (warnings and errors) goes to a temporary file. The
    child is stopped by Linux if the thread that started it dies."""

    def __init__(self, redis_url, threads=8, app=APP):
        self.command = [
            sys.executable, '-m', 'bench.soakapp', redis_url,
            '--threads', str(threads), '--app', app,
        ]  # fmt: skip
        self.process = None
        self.port = None
        self.log = None

    def __enter__(self):
        self.log = tempfile.TemporaryFile(mode='w+')
        paths = [str(ROOT), os.environ.get('PYTHONPATH', '')]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, paths)))
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            preexec_fn=_die_with_parent,
        )
        line = self.process.stdout.readline()
        if not line.startswith('port '):
            self.stop()
            raise RuntimeError(f'the soak server did not start:\n{self.text}')
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc_info):
        self.stop()
        self.log.close()

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()

    @property
    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def log_summary(self):
        """``(error lines, {logger: warning lines})``."""
        errors = []
        warnings = collections.Counter()
        for line in self.text.splitlines():
            level, _, rest = line.partition(' ')
            if level == 'WARNING':
                warnings[rest.partition(' ')[0]] += 1
            elif level in ('ERROR', 'CRITICAL') or 'Traceback' in line:
                errors.append(line)
        return errors, warnings


def resolve(dotted):
    """``module:attribute`` -> the attribute."""
    module, _, name = dotted.partition(':')
    return getattr(importlib.import_module(module), name)


def main(argv=None):
    import waitress

    parser = argparse.ArgumentParser(
        prog='python -m bench.soakapp',
        description='Serve the soak application on a free loopback port.',
    )
    parser.add_argument('redis_url')
    parser.add_argument('--threads', type=int, default=8)
    parser.add_argument(
        '--app',
        default=APP,
        help='factory of the WSGI application, f(redis_url), as module:name',
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format='%(levelname)s %(name)s %(message)s',
    )
    app = resolve(args.app)(args.redis_url)
    server = waitress.create_server(
        app, host='127.0.0.1', port=0, threads=args.threads
    )
    print(f'port {server.effective_port}', flush=True)
    server.run()


if __name__ == '__main__':
    main()
