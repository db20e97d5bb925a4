"""What user space may expect after an unplug, each with where it is written.

A contract result is reported apart from kernel findings: a kernel can be
free of oopses and still leave a DQBUF blocked forever.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from harness.scenarios.model import NodeKind


@dataclass(frozen=True)
class Contract:
    id: str
    expectation: str
    source: str


CONTRACTS: dict[str, Contract] = {
    c.id: c
    for c in (
        Contract(
            "blocked-call-returns",
            "a DQBUF, poll, select or read blocked at unbind returns within the bound",
            "seed RFC 'V4L2: Handle the race condition between device access and unbind': "
            "blocking calls such as VIDIOC_DQBUF must be woken at unbind; "
            "v4l2-dev.c video_unregister_device() wakes vb2 waiters via the disconnect path",
        ),
        Contract(
            "stale-ioctl-errno",
            "an ioctl on a file descriptor whose device is gone fails with the documented "
            "error: ENODEV for video and subdev nodes, EIO for the media node",
            "drivers/media/v4l2-core/v4l2-dev.c v4l2_ioctl(): '!video_is_registered -> "
            "-ENODEV'; drivers/media/mc/mc-devnode.c media_ioctl(): "
            "'!media_devnode_is_registered -> -EIO'; "
            "Documentation/userspace-api/media/v4l/func-ioctl.rst (ENODEV)",
        ),
        Contract(
            "close-succeeds",
            "close() of a file descriptor whose device is gone returns 0",
            "Documentation/userspace-api/media/v4l/func-close.rst; "
            "seed RFC: every file operation, not only ioctl, must be safe after unbind",
        ),
        Contract(
            "mmap-survives",
            "touching buffers mmapped before the unplug does not kill the process",
            "videobuf2-core.c: a mapped buffer holds its memory until the last vm_close "
            "(vb2_common_vm_close / vb2_vmalloc_put), so a mapping outlives the device",
        ),
        Contract(
            "rebind-restores",
            "after bind the same set of nodes (by entity) comes back and streams again",
            "v4l-utils contrib/test/test-media (unbind, bind, then stream again); "
            "Documentation/driver-api/driver-model/binding.rst",
        ),
        Contract(
            "rmmod-refuses-or-completes",
            "removing the module while a node is open is refused with EBUSY/EAGAIN, "
            "or completes without a kernel report",
            "kernel/module/main.c delete_module(): try_stop_module() fails with "
            "-EWOULDBLOCK while references are held; v4l2 fops hold the owner module",
        ),
        Contract(
            "nothing-left-behind",
            "after unbind and close no device node, media entity or module reference of "
            "the driver is left",
            "'Use Media Dev Allocator to fix vimc dev lifetime bugs': the top-level struct "
            "is freed when the last reference to the media/v4l2 device drops",
        ),
        Contract(
            "rmmod-after-close",
            "once every file descriptor is closed, the unbound (or still bound) driver's "
            "module can be removed",
            "v4l-utils contrib/test/test-media (rmmod after the holders of the unbound "
            "vimc exit); kernel/module/main.c: the module's refcount drops with the last "
            "fops_put() in v4l2_release()/media_release()",
        ),
        Contract(
            "driver-recovers",
            "after the scenario, binding the device (and loading the module) again brings "
            "back the same set of nodes",
            "Documentation/driver-api/driver-model/binding.rst (a device can be bound "
            "again after unbind); the seed RFC's goal that unbind leaves no stale state",
        ),
        Contract(
            "disruption-completes",
            "the unbind/bind/rmmod itself returns within the bound",
            "Documentation/ABI/testing/sysfs-bus (unbind); a sysfs write that never "
            "returns is a hung task",
        ),
    )
}

# Errors an ioctl on a stale fd may return, by node kind (see stale-ioctl-errno).
STALE_IOCTL_ERRNOS: dict[NodeKind, frozenset[int]] = {
    NodeKind.VIDEO: frozenset({errno.ENODEV}),
    NodeKind.SUBDEV: frozenset({errno.ENODEV}),
    NodeKind.MEDIA: frozenset({errno.EIO}),
}

RMMOD_REFUSALS = frozenset({errno.EBUSY, errno.EAGAIN})

# Seconds a blocked call, an unbind or a bind may take; generous under TCG.
BLOCKED_CALL_BOUND = 5.0
DISRUPTION_BOUND = 30.0


@dataclass
class ContractResult:
    contract: str
    passed: bool
    detail: str
    subject: str = ""  # which fd / node / step
    measured: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        cited = CONTRACTS.get(self.contract)
        return {
            "contract": self.contract,
            "passed": self.passed,
            "detail": self.detail,
            "subject": self.subject,
            "measured": self.measured,
            "expectation": cited.expectation if cited else "",
            "source": cited.source if cited else "",
        }
