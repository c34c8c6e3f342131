from zope.interface import Attribute, Interface


class ISessionMultiManagerConfig(Interface):
    """The registry of session namespaces, one per application registry.

    Registered as a utility by ``config.include('pyramid_session_suite')``.
    """

    namespaces = Attribute('The registered namespace names, in order.')
    discriminators = Attribute('The names of namespaces with a discriminator.')
    namespaces_to_cookienames = Attribute('A dict of namespace: cookie name.')

    def register_session_factory(
        namespace, session_factory, discriminator=None, cookie_name=None
    ):
        """Register ``session_factory`` under ``namespace`` now."""

    def has_namespace(namespace):
        """Return ``True`` if ``namespace`` is registered."""

    def get_namespace_config(namespace):
        """Return the session factory registered for ``namespace``."""

    def get_namespace_cookiename(namespace):
        """Return the cookie name registered for ``namespace``."""

    def get_namespace_discriminator(namespace):
        """Return the discriminator of ``namespace``, or ``None``."""
