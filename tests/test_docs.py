"""The README renders and says the two commands; the documentation in
``docs/`` documents every setting (its build and its examples run in
``make test``)."""

import pathlib
import docutils.core
import docutils.utils

from pyramid_session_suite._namespaces import NAMESPACE_SETTINGS
from pyramid_session_suite.config import CORE_SETTINGS
from pyramid_session_suite.crossdomain import CROSSDOMAIN_SETTINGS
from pyramid_session_suite.metrics import METRICS_SETTINGS
from pyramid_session_suite.policy import POLICY_SETTINGS
from pyramid_session_suite.tracing import TRACING_SETTINGS
from pyramid_session_suite.user_index import USER_INDEX_SETTINGS

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / 'README.rst').read_text()
DOCS = {path.name: path.read_text() for path in (ROOT / 'docs').glob('*.rst')}


def test_readme_renders_without_warnings():
    docutils.core.publish_doctree(
        README,
        settings_overrides={
            'halt_level': docutils.utils.Reporter.WARNING_LEVEL
        },
    )


def test_every_setting_is_documented():
    reference = DOCS['settings.rst']
    for name, _, _ in CORE_SETTINGS:
        assert f'``session_suite.{name}``' in reference, name
    for table in (
        NAMESPACE_SETTINGS,
        USER_INDEX_SETTINGS,
        POLICY_SETTINGS,
        CROSSDOMAIN_SETTINGS,
    ):
        for name, _, _ in table:
            assert f'``{name}``' in reference, name
    operations = DOCS['operations.rst']
    for prefix, table in (
        ('metrics', METRICS_SETTINGS),
        ('tracing', TRACING_SETTINGS),
    ):
        for name, _, _ in table:
            assert f'``session_suite.{prefix}.{name}``' in operations, name


def test_the_readme_is_a_front_page():
    assert len(README.splitlines()) <= 250
    for chapter in DOCS:
        if chapter not in ('index.rst', 'changes.rst', 'api.rst'):
            assert chapter in DOCS['index.rst'].replace('\n   ', ' ') or (
                chapter[:-4] in DOCS['index.rst']
            ), chapter


def test_readme_has_the_two_commands():
    assert 'make demo' in README and 'make test' in README
    ci = (ROOT / '.ci' / 'run').read_text()
    assert 'make test' in ci
