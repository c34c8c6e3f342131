from typing import Any
from zope.interface import Attribute, Interface


class ISessionMultiManagerConfig(Interface):
    """The registry of session namespaces, one per application registry.

    Registered as a utility by ``config.include('pyramid_session_suite')``.
    """

    namespaces = Attribute('The registered namespace names, in order.')
    discriminators = Attribute('The names of namespaces with a discriminator.')
    namespaces_to_cookienames = Attribute('A dict of namespace: cookie name.')

    def register_session_factory(
        namespace: str,
        session_factory: Any,
        discriminator: Any = None,
        cookie_name: str | None = None,
    ) -> bool:
        """Register ``session_factory`` under ``namespace`` now."""

    def has_namespace(namespace: str) -> bool:
        """Return ``True`` if ``namespace`` is registered."""

    def get_namespace_config(namespace: str) -> Any:
        """Return the session factory registered for ``namespace``."""

    def get_namespace_cookiename(namespace: str) -> str:
        """Return the cookie name registered for ``namespace``."""

    def get_namespace_discriminator(namespace: str) -> Any:
        """Return the discriminator of ``namespace``, or ``None``."""


class ISessionEnded(Interface):
    """A browser came back with the cookie of an ended session."""

    request = Attribute('the request')
    reason = Attribute('why the session ended')


class ISessionRegistered(Interface):
    """A session entered the user index."""

    userid = Attribute('the user id')
    handle = Attribute('the handle of the new session')


class ISessionRevoked(Interface):
    """Sessions of a user were ended."""

    userid = Attribute('the user id')
    reason = Attribute('revoked, logout, displaced, expired …')


class ILoginRefused(Interface):
    """A login was refused by the unique-session policy."""

    userid = Attribute('the user id')
    retry_after = Attribute('seconds until a login may succeed')


class ISessionExpired(Interface):
    """A session reached its absolute or idle timeout."""

    userid = Attribute('the user id')
    kind = Attribute('"absolute" or "idle"')


class IUserIndex(Interface):
    """The per-user session index (:class:`.index.UserIndex`)."""


class ISessionReplaced(Interface):
    """A site adopted another site's session (cross-domain sharing)."""

    src = Attribute('origin of the site the session came from')
    dst = Attribute('origin of the site that adopted it')
    was_empty = Attribute('whether the site had no session of its own')


class ITokenAccepted(Interface):
    """A site accepted a cross-domain token."""

    src = Attribute('origin of the site the token came from')
    dst = Attribute('origin of the site that accepted it')
    flow = Attribute('``redirect`` or ``script``')
    outcome = Attribute('``adopted``, ``replaced`` or ``kept``')


class ITokenRejected(Interface):
    """A cross-domain token was refused."""

    reason = Attribute('a reason code')
