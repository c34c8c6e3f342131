"""The "SessionMulti" debug toolbar panel.

Enable it with ``debugtoolbar.includes = pyramid_session_suite.debugtoolbar``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .panel import SessionMultiDebugPanel

if TYPE_CHECKING:
    from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    config.add_debugtoolbar_panel(SessionMultiDebugPanel)
