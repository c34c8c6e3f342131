"""Overlapping requests of one browser lose nothing: over real HTTP
(waitress threads), on one Redis server and on a Redis Cluster.

Each run is a new browser session; 40 requests of its cookie, 8 at a time,
each set their own key after a 50 ms pause; then 20 keys are deleted the
same way. Every set survives and no deletion is undone, in every run. The
same requests against ``pyramid_session_redis`` (a session written whole)
lose most of them: the measure can fail.
"""

from concurrent.futures import ThreadPoolExecutor
import time
from pyramid.config import Configurator

from .conftest import SECRET, serve
from .test_faults import Browser
from .usersapp import redis_main

#: where the figures measured are written, under ``test-artifacts/``
FIGURES = 'lost-updates.txt'

RUNS = 50
SETS = 40
DELETES = 20
PARALLEL = 8
PAUSE = 0.05


def tab(request):
    """``/tab?key=&value=``: what one tab (or XHR) does: read the session,
    take a while, set one key."""
    session = request.session
    session.get('seen')
    time.sleep(float(request.params.get('pause', 0)))
    if 'value' in request.params:
        session[request.params['key']] = int(request.params['value'])
    else:
        session.pop(request.params['key'], None)
    return {}


def preset(request):
    """``/preset?n=``: set ``d0`` … ``d<n-1>``."""
    for i in range(int(request.params['n'])):
        request.session[f'd{i}'] = i
    return {}


def dump(request):
    return dict(request.session)


def tabs_app(settings=None, session_factory=None):
    config = Configurator(settings=settings or {})
    if session_factory is not None:
        config.set_session_factory(session_factory)
    else:
        config.include('pyramid_session_suite')
    for name, view in [('tab', tab), ('preset', preset), ('dump', dump)]:
        config.add_route(name, '/' + name)
        config.add_view(view, route_name=name, renderer='json')
    return config.make_wsgi_app()


def overlapping(url, cookies, paths):
    """Send ``paths`` with ``cookies``, ``PARALLEL`` at a time."""

    def send(path):
        browser = Browser(url)
        browser.cookies.update(cookies)
        return browser.get(path)

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(send, paths))


def one_run(url):
    """One browser's overlapping sets and deletions: ``(lost, undone)``."""
    browser = Browser(url)
    assert browser.get('/tab?key=base&value=0').status == 200
    cookies = dict(browser.cookies)
    sets = [f'/tab?key=k{i}&value={i}&pause={PAUSE}' for i in range(SETS)]
    answers = overlapping(url, cookies, sets)
    assert {answer.status for answer in answers} == {200}
    data = browser.get('/dump').json
    lost = sum(1 for i in range(SETS) if data.get(f'k{i}') != i)
    browser.get(f'/preset?n={DELETES}')
    deletes = [f'/tab?key=d{i}&pause={PAUSE}' for i in range(DELETES)]
    answers = overlapping(url, cookies, deletes)
    assert {answer.status for answer in answers} == {200}
    data = browser.get('/dump').json
    undone = sum(1 for i in range(DELETES) if f'd{i}' in data)
    assert data.get('base') == 0
    return lost, undone


def runs(app, count):
    lost = undone = 0
    with serve(app, threads=PARALLEL) as url:
        for _ in range(count):
            run_lost, run_undone = one_run(url)
            lost += run_lost
            undone += run_undone
    return lost, undone


def report(figures, name, count, lost, undone):
    figures.append(
        f'{name}: {count} runs of {SETS} overlapping sets and {DELETES} '
        f'overlapping deletions of one session: {lost} sets lost, '
        f'{undone} deletions undone'
    )


def test_overlapping_requests_of_one_session_lose_nothing(connection, figures):
    app = tabs_app(redis_main(connection))
    name = 'cluster' if isinstance(connection, dict) else 'one server'
    lost, undone = runs(app, RUNS)
    report(figures, f'suite, {name}', RUNS, lost, undone)
    assert (lost, undone) == (0, 0)


def test_a_session_written_whole_loses_them(redis_url, figures):
    from pyramid_session_redis import RedisSessionFactory

    factory = RedisSessionFactory(
        SECRET, redis_url=redis_url, cookie_name='main', timeout=1200
    )
    lost, undone = runs(tabs_app(session_factory=factory), 2)
    report(figures, 'pyramid_session_redis, one server', 2, lost, undone)
    assert lost > SETS // 2
