"""The one exception type users see.

Anything the user can fix (a bad file, a malformed spec, a missing folder) raises
`UserError` with a one-line message that says what is wrong and what to do. The CLI
prints it as `error: <message>` and exits with code 2, without a traceback.
"""


class UserError(Exception):
    """A problem with the user's input; the message is shown as one line."""

    exit_code = 2
