"""Drop-in compatibility: pyramid_session_multi 0.4.0's own tests, run
against pyramid_session_suite.

The upstream sdist is downloaded once with pip and kept in pytest's cache
directory. Its ``tests/test_config.py``, ``tests/test_session_multi.py`` and
``tests/test_debugtoolbar_panel.py`` run in a separate pytest process where
``tests/upstream_shim`` comes first on ``PYTHONPATH``, so
``import pyramid_session_multi`` finds the shim that re-exports our objects
(and ``pyramid_session_multi.debugtoolbar`` our panel), even when the real
package is installed.

Upstream's panel tests check the panel's English word for word, backticks
included. Our panel words things differently (issue #20: no literal
backticks, no red label for the normal state), so before they run, the
expected strings of ``tests/test_debugtoolbar_panel.py`` are reworded by
``PANEL_WORDING``: wording and label colours only. The markup those tests
check (the panel's tab and content, the namespace's ``<code>`` followed
by its labels, in that order, one per line), the values shown and every
behaviour are upstream's.
"""

import hashlib
import importlib.util
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tarfile

import pyramid_session_suite

UPSTREAM_REQUIREMENT = 'pyramid-session-multi==0.4.0'
SDIST_NAME = 'pyramid_session_multi-0.4.0.tar.gz'
SDIST_SHA256 = (
    '4bdbd55a4c941e48dfb89143b300c397dcee09c364fb3f83e895f2037a60a91a'
)
SDIST_TESTS = 'pyramid_session_multi-0.4.0/tests/'
#: upstream test modules we run: 9, 6 and 17 tests
UPSTREAM_TEST_MODULES = (
    'test_config.py',
    'test_session_multi.py',
    'test_debugtoolbar_panel.py',
)
EXPECTED_PASSED = 32
#: never extracted, so never run
LEFT_OUT = frozenset()

#: the panel test module whose expected wording is rewritten
PANEL_TESTS = 'test_debugtoolbar_panel.py'
#: (upstream's expected text, ours), applied in order to its source; each
#: must be found, so that a change upstream is noticed
PANEL_WORDING = (
    (
        '<p>Using `ISessionMultiConfiguration`: <code>',
        '<p>Configured by <code>',
    ),
    (
        '<p>No `ISessionMultiConfiguration` Configured</p>',
        '<p>No session namespaces: this application did not include '
        '<code>pyramid_session_suite</code>.</p>',
    ),
    # "not accessed during ..." too
    ('accessed during the main `Request` handler', 'accessed'),
    # not accessing a namespace is the normal state: grey, not orange
    (
        '<span class="label label-warning">not accessed</span>',
        '<span class="label label-default">not accessed</span>',
    ),
    (
        '<span class="label label-danger">Session Discriminator Fail</span>',
        '<span class="label label-warning">discriminated out</span>',
    ),
)

#: what pyramid_session_multi 0.4.0 exports and its tests import
UPSTREAM_API = (
    'ISessionMultiManagerConfig',
    'SessionMultiManager',
    'UnregisteredSession',
    'includeme',
    'new_session_multi',
    'register_session_factory',
)

SHIM_DIR = Path(__file__).resolve().parent / 'upstream_shim'
SHIM_MODULE = SHIM_DIR / 'pyramid_session_multi' / '__init__.py'
#: the ``-p`` plugin in SHIM_DIR that reports what the run imported
SHIM_CHECK_PLUGIN = 'upstream_shim_check'
SHIM_CHECK_MARKER = 'upstream-shim-check'

#: Pyramid's own cookie-session tests (``TestSignedCookieSession``, with
#: the tests it shares with ``TestBaseCookieSession``), run against
#: ``CookieSessionFactory`` through ``upstream_shim/pyramid_cookie_shim``
PYRAMID_REQUIREMENT = 'pyramid==2.1'
PYRAMID_SDIST = 'pyramid-2.1.tar.gz'
PYRAMID_SHA256 = (
    '5a24bc1b5f9e0f0d1c0b6ddd1111e84c15dac44a07e3c1d24e74dd9bb4fc22eb'
)
PYRAMID_TESTS = 'pyramid-2.1/tests/test_session.py'
PYRAMID_CLASS = 'TestSignedCookieSession'
PYRAMID_EXPECTED_PASSED = 45
#: a 32-byte secret in place of the tests' ``'secret'``, which we refuse
PYRAMID_SECRET = 'pyramid-tests-secret-of-32-bytes'
#: (their text, ours) in Pyramid's test module, applied in order; each must
#: be found. The secrets only: ours must have 32 bytes.
PYRAMID_REWORDING = (
    (
        'from pyramid.session import SignedCookieSessionFactory',
        'from pyramid_cookie_shim import SignedCookieSessionFactory',
    ),
    ("kw.setdefault('secret', 'secret')",
     f"kw.setdefault('secret', {PYRAMID_SECRET!r})"),
    ("salt + b'secret'", f"salt + {PYRAMID_SECRET.encode()!r}"),
    ("b'pyramid.session.secret'",
     f"b'pyramid.session.' + {PYRAMID_SECRET.encode()!r}"),
    ("secret='evilsecret'", "secret='evil-' + 'x' * 32"),
)  # fmt: skip
#: Pyramid's tests of what we deliberately do differently, and why
PYRAMID_DESELECTED = {
    'test__set_cookie_cookieval_too_long': (
        'a write that makes the cookie too big for a browser raises '
        'SessionTooLarge (a ValueError and a 413) at the write itself, not '
        'when the response is made (tests/test_cookie.py)'
    ),
}

PIP_TIMEOUT = 300
PYTEST_TIMEOUT = 120


def test_shim_reexports_our_objects():
    spec = importlib.util.spec_from_file_location(
        '_upstream_shim_pyramid_session_multi', SHIM_MODULE
    )
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)

    assert sorted(shim.__all__) == sorted(UPSTREAM_API)
    for name in UPSTREAM_API:
        assert getattr(shim, name) is getattr(pyramid_session_suite, name), (
            name
        )


def test_upstream_tests_pass(request, tmp_path):
    sdist = upstream_sdist(request.config, tmp_path / 'download')
    upstream = tmp_path / 'upstream'
    extract_tests(sdist, upstream)
    test_files = [upstream / 'tests' / name for name in UPSTREAM_TEST_MODULES]
    for path in test_files:
        assert path.is_file(), f'{SDIST_NAME} has no tests/{path.name}'
    reword(upstream / 'tests' / PANEL_TESTS)

    env = shim_environ()
    command = [
        sys.executable,
        '-m',
        'pytest',
        '-q',
        '--color=no',
        '-p',
        'no:cacheprovider',
        '-p',
        SHIM_CHECK_PLUGIN,
        '-c',
        os.devnull,
        '--rootdir',
        str(upstream),
        *map(str, test_files),
    ]
    result = subprocess.run(
        command,
        cwd=upstream,
        env=env,
        capture_output=True,
        text=True,
        timeout=PYTEST_TIMEOUT,
    )
    output = f'{result.stdout}\n{result.stderr}'

    report = shim_report(result.stdout)
    assert report.get('module-file') == str(SHIM_MODULE), output
    assert report.get('suite-file') == pyramid_session_suite.__file__, output
    assert report.get('reexports-suite') == 'True', output

    assert result.returncode == 0, output
    assert outcomes(result.stdout) == {'passed': EXPECTED_PASSED}, output


def test_pyramid_cookie_session_tests_pass(request, tmp_path):
    """Pyramid's own tests of ``SignedCookieSessionFactory`` pass against
    ``CookieSessionFactory``: every option they use is accepted and does
    what Pyramid's does."""
    sdist = sdist_of(
        request.config,
        tmp_path / 'download',
        PYRAMID_REQUIREMENT,
        PYRAMID_SDIST,
        PYRAMID_SHA256,
    )
    test_file = tmp_path / 'pyramid' / 'tests' / 'test_session.py'
    test_file.parent.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        source = tar.extractfile(PYRAMID_TESTS).read().decode('utf-8')
    for theirs, ours in PYRAMID_REWORDING:
        assert theirs in source, f'{PYRAMID_TESTS} no longer has {theirs!r}'
        source = source.replace(theirs, ours)
    test_file.write_text(source)

    env = shim_environ()
    deselect = [
        f'--deselect=tests/test_session.py::{PYRAMID_CLASS}::{name}'
        for name in PYRAMID_DESELECTED
    ]
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pytest',
            '-q',
            '--color=no',
            '-p',
            'no:cacheprovider',
            '-c',
            os.devnull,
            '--rootdir',
            str(test_file.parent.parent),
            *deselect,
            f'tests/test_session.py::{PYRAMID_CLASS}',
        ],
        cwd=test_file.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=PYTEST_TIMEOUT,
    )
    output = f'{result.stdout}\n{result.stderr}'
    assert result.returncode == 0, output
    assert outcomes(result.stdout) == {
        'passed': PYRAMID_EXPECTED_PASSED,
        'deselected': len(PYRAMID_DESELECTED),
    }, output


def upstream_sdist(config, download_dir):
    """The pyramid_session_multi sdist (see :func:`sdist_of`)."""
    return sdist_of(
        config, download_dir, UPSTREAM_REQUIREMENT, SDIST_NAME, SDIST_SHA256
    )


def sdist_of(config, download_dir, requirement, name, digest):
    """The sdist ``name`` of ``requirement``, from pytest's cache or
    downloaded into it with pip, checked against its sha256 ``digest``.

    A failed download fails the test: compatibility must not go unchecked.
    """
    cache = getattr(config, 'cache', None)
    folder = 'upstream-' + name.removesuffix('.tar.gz')
    if cache is not None:
        cache_dir = cache.mkdir(folder)
    else:  # -p no:cacheprovider: keep it for this run only
        cache_dir = download_dir.parent / 'upstream-cache'
        cache_dir.mkdir(exist_ok=True)
    sdist = cache_dir / name
    if sdist.is_file() and sha256(sdist) == digest:
        return sdist

    download_dir.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'download',
            '--no-deps',
            '--no-binary',
            ':all:',
            requirement,
            '-d',
            str(download_dir),
        ],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
    )
    downloaded = download_dir / name
    assert result.returncode == 0 and downloaded.is_file(), (
        f'could not download the {requirement} sdist with pip '
        f'(exit code {result.returncode}); its tests are what prove the '
        f'drop-in claim, so this test needs it.\n'
        f'{result.stdout}\n{result.stderr}'
    )
    found = sha256(downloaded)
    assert found == digest, f'{name}: sha256 {found}, expected {digest}'
    partial = cache_dir / f'{name}.partial'
    shutil.copyfile(downloaded, partial)
    os.replace(partial, sdist)
    return sdist


def shim_environ():
    """The environment of an upstream test run: our shim first on the
    path, none of this run's pytest settings or plugins."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith('PYTEST_') and key != 'PYTHONPATH'
    }
    env.update(
        PYTHONPATH=str(SHIM_DIR),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD='1',
        PYTHONDONTWRITEBYTECODE='1',
    )
    return env


def extract_tests(sdist, destination):
    """Extract the sdist's ``tests/`` folder, less LEFT_OUT, as
    ``destination/tests``."""
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            name = member.name
            if not name.startswith(SDIST_TESTS) or not member.isfile():
                continue
            if Path(name).name in LEFT_OUT or '..' in Path(name).parts:
                continue
            member.name = 'tests/' + name[len(SDIST_TESTS) :]
            members.append(member)
        safe = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
        tar.extractall(destination, members=members, **safe)


def reword(path):
    """Apply ``PANEL_WORDING`` to the upstream test module at ``path``."""
    source = path.read_text()
    for theirs, ours in PANEL_WORDING:
        assert theirs in source, f'{path.name} no longer expects {theirs!r}'
        source = source.replace(theirs, ours)
    path.write_text(source)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shim_report(stdout):
    """The ``key=value`` lines the shim check plugin wrote."""
    report = {}
    for line in stdout.splitlines():
        marker, _, rest = line.partition(' ')
        if marker == SHIM_CHECK_MARKER:
            key, _, value = rest.partition('=')
            report[key] = value
    return report


SUMMARY = re.compile(r'^=*\s*(?P<counts>\d+ \w+.*?) in [\d.]+s\b')
COUNT = re.compile(r'(\d+) (\w+)')
PLURALS = {'error': 'errors', 'warning': 'warnings'}


def outcomes(stdout):
    """The outcome counts in pytest's summary line, without warnings:
    ``{'passed': 15}`` for ``15 passed, 1 warning in 0.64s``."""
    for line in reversed(stdout.splitlines()):
        match = SUMMARY.match(line.strip())
        if match:
            counts = {
                PLURALS.get(word, word): int(number)
                for number, word in COUNT.findall(match['counts'])
            }
            counts.pop('warnings', None)
            return counts
    return None
