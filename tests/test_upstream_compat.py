"""Drop-in compatibility: pyramid_session_multi 0.4.0's own tests, run
against pyramid_session_suite.

The upstream sdist is downloaded once with pip and kept in pytest's cache
directory. Its ``tests/test_config.py``, ``tests/test_session_multi.py`` and
``tests/test_debugtoolbar_panel.py`` run in a separate pytest process where
``tests/upstream_shim`` comes first on ``PYTHONPATH``, so
``import pyramid_session_multi`` finds the shim that re-exports our objects
(and ``pyramid_session_multi.debugtoolbar`` our panel), even when the real
package is installed.
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


def upstream_sdist(config, download_dir):
    """The upstream sdist, from the cache or downloaded into it.

    A failed download fails the test: compatibility must not go unchecked.
    """
    cache = getattr(config, 'cache', None)
    if cache is not None:
        cache_dir = cache.mkdir('upstream-pyramid_session_multi-0.4.0')
    else:  # -p no:cacheprovider: keep it for this run only
        cache_dir = download_dir.parent / 'upstream-cache'
        cache_dir.mkdir(exist_ok=True)
    sdist = cache_dir / SDIST_NAME
    if sdist.is_file() and sha256(sdist) == SDIST_SHA256:
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
            UPSTREAM_REQUIREMENT,
            '-d',
            str(download_dir),
        ],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
    )
    downloaded = download_dir / SDIST_NAME
    assert result.returncode == 0 and downloaded.is_file(), (
        f'could not download the {UPSTREAM_REQUIREMENT} sdist with pip '
        f'(exit code {result.returncode}); its tests are what prove the '
        f'drop-in claim, so this test needs it.\n'
        f'{result.stdout}\n{result.stderr}'
    )
    digest = sha256(downloaded)
    assert digest == SDIST_SHA256, (
        f'{SDIST_NAME}: sha256 {digest}, expected {SDIST_SHA256}'
    )
    partial = cache_dir / f'{SDIST_NAME}.partial'
    shutil.copyfile(downloaded, partial)
    os.replace(partial, sdist)
    return sdist


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
