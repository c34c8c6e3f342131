from pyramid.exceptions import ConfigurationError


class UnregisteredSession(KeyError):
    """Raised when a namespace that was never registered is looked up."""


class SessionSuiteNotIncluded(ConfigurationError, AttributeError):
    """Raised when a namespace is registered before
    ``config.include('pyramid_session_suite')``.

    It is an ``AttributeError`` too, as pyramid_session_multi raised one.
    """


class WeakSecret(ConfigurationError, ValueError):
    """Raised when a secret is missing or shorter than 32 bytes."""
