"""Redis clients that count their round trips (see
:class:`pyramid_session_suite.testing.RoundTrips`)."""

from pyramid_session_suite.testing import RoundTrips, command_names

__all__ = ['RoundTrips', 'command_names', 'warm_up']


def warm_up(client):
    """Open the client's connection, so that the commands of the connection
    handshake (``HELLO``, ``CLIENT SETINFO``) are not counted later."""
    client.ping()
