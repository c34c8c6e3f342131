from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPRequestEntityTooLarge


class UnregisteredSession(KeyError):
    """Raised when a namespace that was never registered is looked up."""


class SessionSuiteNotIncluded(ConfigurationError, AttributeError):
    """Raised when a namespace is registered before
    ``config.include('pyramid_session_suite')``.

    It is an ``AttributeError`` too, as pyramid_session_multi raised one.
    """


class WeakSecret(ConfigurationError, ValueError):
    """Raised when a secret is missing or shorter than 32 bytes."""


class SessionTooLarge(HTTPRequestEntityTooLarge, ValueError):
    """413: a write would make a cookie session bigger than a browser keeps;
    none of the request's changes to that session are saved.

    Raised where the session is written to, so that the application can
    catch it; unhandled, it renders like any Pyramid HTTP exception.
    """

    def __init__(self, cookie_name: str, size: int, limit: int) -> None:
        # (mypy takes ValueError's __init__: Pyramid's classes are untyped)
        super().__init__(  # type: ignore[call-arg]
            detail=(
                f'The session cannot hold this much data: its cookie '
                f'{cookie_name!r} would have {size} bytes (at most {limit}).'
            )
        )
        self.cookie_name = cookie_name
        self.size = size
        self.limit = limit
