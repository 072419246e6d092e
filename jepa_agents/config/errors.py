"""The error every config problem ends in."""


class ConfigError(ValueError):
    """A config that cannot be composed or does not match its schema (one line naming the key and the
    valid choices)."""
