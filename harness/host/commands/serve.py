"""`v4l2-unplug serve`: a QEMU guest that stands in for a board (sshd, serial login)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.host.commands import add_driver_option, add_kernel_options, kernel_from_args


def serve(args: argparse.Namespace) -> int:
    from harness.host.kernels.emulation import device_tree_fragment
    from harness.host.targets.served import Server, default_keys
    from harness.pure.errors import HarnessError
    from harness.pure.profiles import get_profile

    if device_tree_fragment(get_profile(args.driver)) is not None:
        raise HarnessError(f"serve boots QEMU's own device tree, without the nodes "
                           f"{args.driver} needs: serve a profile without a device tree")
    out = args.report or Path("reports") / f"{time.strftime('%Y%m%d-%H%M%S')}-serve-{args.kernel}"
    server = Server(kernel_from_args(args), args.ssh_port, args.authorized_key or default_keys(),
                    out)
    return server.serve()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="boot a guest that stands in for a board: sshd, serial login, resets",
        description="Boot the kernel with sshd on 127.0.0.1:PORT and a root login on a serial "
                    "console (a host pty), and boot it again whenever it reboots, panics or "
                    "gets SIGHUP (a power cycle). Runs until interrupted.")
    add_kernel_options(p)
    add_driver_option(p)
    p.add_argument("--ssh-port", type=int, default=2222, metavar="PORT",
                   help="loopback port forwarded to the guest's sshd (default 2222)")
    p.add_argument("--authorized-key", type=Path, action="append", metavar="FILE",
                   help="public key allowed to log in as root (repeatable; "
                        "default: ~/.ssh/id_*.pub)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="where each boot's console and serve.json (pid, serial pty) go")
    p.set_defaults(func=serve)
