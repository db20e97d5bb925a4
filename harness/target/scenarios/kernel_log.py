"""Following the kernel log on the target, from now on, for the first report."""

from __future__ import annotations

import errno
import os
import re
import threading
from typing import Any


class KmsgWatch(threading.Thread):
    """Follows /dev/kmsg from now on; remembers the first line that starts a report."""

    def __init__(self, pattern: re.Pattern[str]):
        super().__init__(name="kmsg-watch", daemon=True)
        self.pattern = pattern
        self.first: dict[str, Any] | None = None
        self.fired = threading.Event()
        self.stopped = False
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def run(self) -> None:
        try:
            self._follow()
        finally:
            os.close(self.fd)

    def _follow(self) -> None:
        import select

        while not (self.fired.is_set() or self.stopped):
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
                if self.pattern.search(message):
                    fields = head.split(",")
                    self.first = {"kernel_time": int(fields[2]) / 1e6,
                                  "message": message.strip()}
                    self.fired.set()
                    break

    def stop(self) -> None:
        """Stop following (the thread ends within half a second)."""
        self.stopped = True

