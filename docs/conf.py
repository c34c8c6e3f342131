"""Sphinx configuration of the pyramid_session_suite documentation."""

import importlib.metadata

project = 'pyramid_session_suite'
author = 'pyramid_session_suite contributors'
copyright = 'pyramid_session_suite contributors'
release = importlib.metadata.version('pyramid_session_suite')
version = release

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.doctest',
    'sphinx.ext.viewcode',
]

html_theme = 'furo'
html_title = 'pyramid_session_suite'
exclude_patterns = ['_build']

autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
autodoc_default_options = {'undoc-members': False}
