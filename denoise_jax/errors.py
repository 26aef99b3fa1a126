"""The exception types users see.

Anything the user can fix (a bad file, a malformed spec, a missing folder, a full disk)
raises `UserError` with a one-line message that says what is wrong and what to do. The CLI
prints it as `error: <message>` and exits with code 2, without a traceback. A training run
stopped by SIGTERM or SIGINT raises `Interrupted` once its checkpoint is saved.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input; the message is shown as one line."""

    exit_code = 2


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint of the step it was at.

    The CLI prints the message (one line) and exits with 128 + the signal number, as a
    process killed by that signal would.
    """

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def report_user_error(run: Callable[..., int], *args) -> int:
    """`run(*args)`'s exit code, a `UserError` printed as one line `error: <message>` on
    stderr and answered with its exit code (2): the CLI's handling, shared by the commands'
    stand-alone entry points (`python -m denoise_jax.denoise_cmd`, `... .app_cmd`)."""
    try:
        return run(*args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
