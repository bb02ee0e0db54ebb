"""The one base of avemo's own errors: each message is one line naming the file or setting and what to do.

The CLI prints such an error as it is; anything else that escapes a command is a bug, printed in one line
with a pointer to ``AVEMO_DEBUG=1`` for its traceback.
"""


class AvemoError(Exception):
    """A set-up or input avemo cannot use; the message says which and what to do.

    Every error a user can cause is one of these (or a subclass), so one ``except`` catches them all:

    >>> try:
    ...     avemo.Run("no/such/run")
    ... except avemo.AvemoError as error:
    ...     print(error)
    no/such/run: no such folder; give a run folder written by avemo train
    """


class SetupError(AvemoError, RuntimeError):
    """Options that cannot work together or on this machine (a backend, device, precision or decoder).

    >>> avemo.extract(None, cache=tmp / "c", dataset="manifest")
    Traceback (most recent call last):
    avemo.errors.SetupError: --dataset manifest needs --manifest FILE (a CSV or JSONL of path,label,speaker)
    """
