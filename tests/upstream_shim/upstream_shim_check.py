"""pytest plugin (``-p upstream_shim_check``) for the upstream test run.

At the end of the run it reports which ``pyramid_session_multi`` the tests
actually imported, so that the calling test can check it was the shim
next to this file and not an installed copy.
"""

import sys

MARKER = 'upstream-shim-check'


def pytest_terminal_summary(terminalreporter):
    write = terminalreporter.write_line
    module = sys.modules.get('pyramid_session_multi')
    write(f'{MARKER} module-file={getattr(module, "__file__", None)}')
    suite = sys.modules.get('pyramid_session_suite')
    write(f'{MARKER} suite-file={getattr(suite, "__file__", None)}')
    same = (
        module is not None
        and suite is not None
        and module.includeme is suite.includeme
        and module.register_session_factory is suite.register_session_factory
        and module.SessionMultiManager is suite.SessionMultiManager
    )
    write(f'{MARKER} reexports-suite={same}')
