"""The "SessionMulti" debug toolbar panel.

Enable it with ``debugtoolbar.includes = pyramid_session_suite.debugtoolbar``.
"""

from .panel import SessionMultiDebugPanel


def includeme(config):
    config.add_debugtoolbar_panel(SessionMultiDebugPanel)
