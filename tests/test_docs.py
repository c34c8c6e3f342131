"""The README is the manual: it renders, and documents every setting."""

import pathlib
import docutils.core
import docutils.utils

from pyramid_session_suite.config import CORE_SETTINGS
from pyramid_session_suite.crossdomain import CROSSDOMAIN_SETTINGS
from pyramid_session_suite.namespaces import NAMESPACE_SETTINGS
from pyramid_session_suite.policy import POLICY_SETTINGS
from pyramid_session_suite.user_index import USER_INDEX_SETTINGS

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / 'README.rst').read_text()


def test_readme_renders_without_warnings():
    docutils.core.publish_doctree(
        README,
        settings_overrides={
            'halt_level': docutils.utils.Reporter.WARNING_LEVEL
        },
    )


def test_every_setting_is_documented():
    for name, _, _ in CORE_SETTINGS:
        assert f'``session_suite.{name}``' in README, name
    for table in (
        NAMESPACE_SETTINGS,
        USER_INDEX_SETTINGS,
        POLICY_SETTINGS,
        CROSSDOMAIN_SETTINGS,
    ):
        for name, _, _ in table:
            assert f'``{name}``' in README, name


def test_readme_has_the_two_commands():
    assert 'make demo' in README and 'make test' in README
    ci = (ROOT / '.ci' / 'run').read_text()
    assert 'make test' in ci
