"""Settings under ``session_suite.``: the tables and their parser.

Every feature declares a table of ``(name, converter, default)`` and calls
:func:`parse_settings` once, at configuration time. Converters raise
``ValueError``; the parser turns that into a ``ConfigurationError`` naming
the setting, and writes the coerced values back into the settings.
"""

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TypeAlias
from pyramid.exceptions import ConfigurationError
from pyramid.settings import asbool, aslist

from .exceptions import WeakSecret

PREFIX = 'session_suite.'

#: a row of a table: ``(name, converter, default)``
Setting: TypeAlias = tuple[str, Callable[[Any], Any], Any]

REQUIRED = object()

MIN_SECRET_BYTES = 32


def check_secret(secret: str | bytes | None, name: str = 'secret') -> None:
    """Raise :class:`WeakSecret` naming ``name`` unless ``secret`` has 32
    bytes or more."""
    if not secret:
        raise WeakSecret(f'{name} is required')
    size = len(secret.encode('utf-8') if isinstance(secret, str) else secret)
    if size < MIN_SECRET_BYTES:
        raise WeakSecret(
            f'{name} is too short ({size} bytes); use at least '
            f'{MIN_SECRET_BYTES} random bytes, e.g. the output of '
            '"python -c \'import secrets; print(secrets.token_urlsafe(48))\'"'
        )


def as_str(value: Any) -> str | None:
    value = str(value).strip()
    return value or None


def as_seconds(value: Any) -> int | None:
    """Whole seconds; empty or ``0`` means off (``None``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    seconds = int(value)
    if seconds < 0:
        raise ValueError(f'must be 0 or more seconds, not {value!r}')
    return seconds or None


def as_float(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)


def as_positive_float(value: Any) -> float | None:
    """A number of seconds above 0 (a timeout: 0 would fail every call)."""
    seconds = as_float(value)
    if seconds is not None and not seconds > 0:
        raise ValueError(f'must be more than 0 seconds, not {seconds!r}')
    return seconds


def as_nonnegative_float(value: Any) -> float | None:
    """A number of seconds, 0 or more."""
    seconds = as_float(value)
    if seconds is not None and seconds < 0:
        raise ValueError(f'must be 0 seconds or more, not {seconds!r}')
    return seconds


def as_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return int(value)


def as_bool(value: Any) -> bool:
    result: bool = asbool(value)
    return result


def as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    result: list[Any] = aslist(value)
    return result


def one_of(*choices: Any) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        value = as_str(value)
        for choice in choices:
            if value is not None and value.lower() == str(choice).lower():
                return choice
        if value is None and None in choices:
            return None
        raise ValueError(
            f'must be one of {", ".join(repr(c) for c in choices)}, '
            f'not {value!r}'
        )

    return convert


def parse_settings(
    settings: MutableMapping[str, Any],
    table: Iterable[Setting],
    prefix: str = PREFIX,
    strict: bool = False,
) -> dict[str, Any]:
    """Return ``{name: value}`` for each row of ``table``, read from
    ``settings[prefix + name]`` and coerced; write the results back.

    With ``strict``, any other key under ``prefix`` is an error (a typo).
    """
    result: dict[str, Any] = {}
    for name, convert, default in table:
        key = prefix + name
        if key in settings:
            raw = settings[key]
            try:
                value = convert(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f'{key}: {exc}') from None
        elif default is REQUIRED:
            raise ConfigurationError(f'{key} is required')
        else:
            value = default
        if default is REQUIRED and (value is None or value == []):
            raise ConfigurationError(f'{key} is required')
        if value is None and convert is as_str:
            value = default  # an empty string setting means its default
        result[name] = value
        settings[key] = value
    if strict:
        known = {prefix + name for name, _, _ in table}
        for key in settings:
            if key.startswith(prefix) and key not in known:
                raise ConfigurationError(f'unknown setting {key}')
    return result
