"""Following the kernel log on the target, from now on, for the first report
(and, when asked, for how long the kernel has been quiet since)."""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from typing import Any


class KmsgWatch(threading.Thread):
    """Follows /dev/kmsg from now on; remembers the first line that starts a report.

    `keep_following`: go on reading after that line, noting when the kernel
    last printed anything (`quiet_for()`), so a caller can tell a report that
    is still being printed, or followed by another, from a kernel gone quiet.
    """

    def __init__(self, pattern: re.Pattern[str], keep_following: bool = False):
        super().__init__(name="kmsg-watch", daemon=True)
        self.pattern = pattern
        self.keep_following = keep_following
        self.first: dict[str, Any] | None = None
        self.fired = threading.Event()
        self.stopped = False
        self.last_record = time.monotonic()
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)
        # Readable after each record from the report on: a caller can wait on
        # it together with its own files (`wake_fd`). This thread is woken by
        # the kernel's printing, not by a timer.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)

    @property
    def wake_fd(self) -> int:
        return self._wake_r

    def drain(self) -> None:
        """Empty `wake_fd`."""
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def run(self) -> None:
        try:
            self._follow()
        finally:
            os.close(self.fd)

    def _follow(self) -> None:
        import select

        while not ((self.fired.is_set() and not self.keep_following) or self.stopped):
            select.select([self.fd], [], [], 0.5)
            while True:
                try:
                    record = os.read(self.fd, 8192).decode(errors="replace")
                except BlockingIOError:
                    break
                except OSError as e:  # EPIPE: overwritten records; go on
                    if e.errno == errno.EPIPE:
                        continue
                    return
                head, _, message = record.partition(";")
                if "v4l2-unplug:" in message:
                    continue
                self.last_record = time.monotonic()
                if self.fired.is_set():
                    self._wake()
                    continue
                if self.pattern.search(message):
                    fields = head.split(",")
                    self.first = {"kernel_time": int(fields[2]) / 1e6,
                                  "message": message.strip()}
                    self.fired.set()
                    self._wake()
                    if not self.keep_following:
                        break

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:
            pass  # full: the caller has wake-ups enough to read

    def quiet_for(self) -> float:
        """Seconds since the kernel last printed a record (the harness's own
        markers aside); meaningful while following."""
        return time.monotonic() - self.last_record

    def stop(self) -> None:
        """Stop following (the thread ends within half a second)."""
        self.stopped = True

