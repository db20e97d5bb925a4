"""Errors a user can act on.

A HarnessError is a problem with the user's input or machine (no QEMU, a
kernel path that is not a kernel, a full disk, a guest that never came up).
The CLI prints it as one line and exits; a traceback is only for bugs in the
harness itself.
"""


class HarnessError(Exception):
    """A failure the user can fix; str() is the whole message."""


class SetupError(HarnessError):
    """The host lacks something the harness needs (a package, disk space)."""


class KernelError(HarnessError):
    """A kernel could not be found, fetched or built."""


class GuestError(HarnessError):
    """The guest did not come up, hung, or its agent failed."""

    def __init__(self, message: str, console_tail: str = "", report_dir: str | None = None):
        super().__init__(message)
        self.console_tail = console_tail
        self.report_dir = report_dir
