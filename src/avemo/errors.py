"""The one base of avemo's own errors: each message is one line naming the file or setting and what to do.

The CLI prints such an error as it is; anything else that escapes a command is a bug, printed in one line
with a pointer to ``AVEMO_DEBUG=1`` for its traceback.
"""


class AvemoError(Exception):
    """A set-up or input avemo cannot use; the message says which and what to do."""


class SetupError(AvemoError, RuntimeError):
    """Options that cannot work together or on this machine (a backend, device, precision or decoder)."""
