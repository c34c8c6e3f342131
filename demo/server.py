"""The demo's server: waitress on the addresses of ``[server:main]``,
announcing the two sites by the addresses a browser must use.

Waitress's own "Serving on" lines name the sockets it listens on, and
``localhost:6544`` listens on ``127.0.0.1:6544``: a browser sent there
would be on the hub's site (127.0.0.1), not on the other one.
"""

import logging
import waitress

from pyramid_session_suite.crossdomain import CROSSDOMAIN_KEY

log = logging.getLogger(__name__)


def serve(global_config, **settings):
    """``use = call:demo.server:serve``: a server for ``pserve``; every
    setting but ``use`` goes to waitress, as with ``egg:waitress#main``."""

    def run(app):
        server = waitress.create_server(app, **settings)
        for line in announcement(app):
            log.info('%s', line)
        server.run()

    return run


def announcement(app):
    """What to open: the sites of the cross-domain group, the hub first,
    and the debug toolbar."""
    registry = getattr(app, 'registry', None)
    crossdomain = registry.get(CROSSDOMAIN_KEY) if registry else None
    if crossdomain is None:
        return ['Serving the demo (no cross-domain group configured)']
    hub = crossdomain.hub
    lines = ['Serving the demo on two sites (one server, two addresses):']
    lines.append(f'  {hub}/  the hub, where people sign in')
    for site in crossdomain.other_sites(hub):
        lines.append(f'  {site}/  another site, with its own cookies')
    lines.append(
        f'Debug toolbar: the red tab at the right edge of each page, or '
        f'{hub}/_debug_toolbar/'
    )
    return lines
