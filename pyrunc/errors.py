"""Exceptions for expected failures.

Every failure a user can cause (bad bundle, wrong state, missing container)
is a PyruncError with a one-line, actionable message. `cli` maps them to an
exit code and a log line; anything else is a bug and keeps its traceback.
"""


class PyruncError(Exception):
    """An expected failure, reported as one line and exit status 1."""

    exit_code = 1


class UsageError(PyruncError):
    """The command line is wrong (unknown flag, missing argument)."""


class ConfigError(PyruncError):
    """config.json, process.json or the bundle is invalid; nothing was done."""


class NotExistError(PyruncError):
    """The container ID is unknown under --root."""

    def __init__(self, msg="container does not exist"):
        super().__init__(msg)


class ExistsError(PyruncError):
    """The container ID is already taken under --root."""


class StateError(PyruncError):
    """The operation is not legal in the container's current state."""


class ContainerError(PyruncError):
    """A kernel-facing step failed; the message names the step and the errno text."""
