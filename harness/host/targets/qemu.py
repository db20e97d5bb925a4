"""The QEMU target: boot a kernel, run the agent inside it, collect everything.

The guest sees the host's root file system read-only over virtio-9p (with a
tmpfs overlay inside), so the agent runs with the host's interpreter and
virtualenv from wherever the checkout lives. The kernel console goes to a
file and the agent's events to another over virtio-serial: the console is
kept whole even when the guest panics or hangs, and the events are never
mixed into it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.host.kernels.kconfig import kernel_config
from harness.host.kernels.kernel import Kernel
from harness.host.targets import bytecode, initramfs, pack, userland
from harness.host.targets.accel import choose_accel
from harness.host.targets.process import die_with_parent, kill_group
from harness.host.targets.run import (
    DEADLINES,
    DeadlinePassed,
    Deadlines,
    EventBook,
    EventHook,
    GuestRun,
    Outcome,
    begin,
    run_job,
)
from harness.pure.arch import ARCHES, Arch, get_arch
from harness.pure.bootparams import boot_params
from harness.pure.errors import GuestError, KernelError, SetupError
from harness.pure.kmsg.report import ends_inside_report, opens_report

# Deadlines and GuestRun lived here first (harness.host.targets.run has them now):
# `from harness.host.targets.qemu import Deadlines, GuestRun` still works.

CHECKOUT = Path(__file__).resolve().parents[3]
GUEST_INIT = CHECKOUT / "vm" / "guest-init"


def base_cmdline(arch: Arch) -> tuple[str, ...]:
    """Kernel command line of every boot on `arch` (harness.pure.arch has why)."""
    return (f"console={arch.console}", *arch.cmdline)


# An x86 guest's, for callers that boot x86 by hand (the boot benchmark).
BASE_CMDLINE = base_cmdline(ARCHES["x86_64"])


# Images already noted as having no configuration, so a run of many boots notes it once.
_UNCONFIGURED: set[Path] = set()


def config_boot_params(kernel: Kernel) -> tuple[str, ...]:
    """What `kernel`'s configuration calls for under emulation (harness.pure.bootparams);
    a kernel whose configuration cannot be found boots without, with a note saying so."""
    config = kernel_config(kernel)
    if config is None:
        if kernel.image in _UNCONFIGURED:
            return ()
        _UNCONFIGURED.add(kernel.image)
        print(f"v4l2-unplug: note: no .config found for {kernel.image} (looked in "
              f"lib/modules/{kernel.release}/build and beside the image); boot parameters "
              f"its configuration may call for (such as acpi=noirq) are not applied",
              file=sys.stderr)
        return ()
    return boot_params(config, kernel.arch)


# After `done`: how long the guest may take to power off.
POWEROFF_TIMEOUT = 15.0
# After `done`, a guest that has not powered off is ended by the harness once
# its console has been quiet this long: nothing is lost, QEMU has written
# every byte the guest sent, and reports printed within this long of the
# last one (the harness's stopping a scenario can set off more) are kept...
SETTLE_QUIET = 2.0
# ... or this long, when the console ends inside a report the kernel has
# not finished printing.
SETTLE_OPEN_REPORT = 5.0
# After a report, an agent silent this long after the kernel went quiet gets
# a key press (an interrupt): seen on arm64 after an oops that left a CPU's
# context tracking wrong (a WARNING in ct_kernel_exit), the agent slept on
# past its timeouts until something interrupted that CPU.
NUDGE_AFTER = 8.0


def find_qemu(arch: str = "x86_64") -> str:
    a = get_arch(arch)
    path = shutil.which(a.qemu)
    if path is None:
        raise SetupError(
            f"{a.qemu} not found: install it with 'apt-get install {a.qemu_package}' "
            f"(or run 'make setup')"
        )
    return path


class QemuTarget:
    """Boots `kernel` in QEMU; one `run()` is one boot."""

    # What a subclass adds to every boot (`v4l2-unplug serve`: a NIC, sshd).
    extra_cmdline: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()

    def __init__(
        self, kernel: Kernel, memory_mb: int = 1024, cpus: int = 2, dtb: Path | None = None
    ):
        """`dtb`: a flattened device tree to boot with instead of the one QEMU
        generates (-machine virt), e.g. QEMU's own for `machine_args()` with a
        driver's nodes added (harness.host.targets.devicetree)."""
        self.kernel = kernel
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.arch = get_arch(kernel.arch)
        self.dtb = dtb
        if dtb is not None and not dtb.is_file():
            raise KernelError(f"device tree blob {dtb} does not exist")
        self.qemu = find_qemu(kernel.arch)
        # KVM only runs a guest of the host's own architecture.
        self.accel = choose_accel(self.qemu, kernel.image) if self.arch.native else "tcg"
        # The guest's own programs, when it cannot run the host's.
        self.userland = None if self.arch.native else userland.build(self.arch)
        self.boot_params = config_boot_params(kernel)

    def machine_args(self) -> list[str]:
        """The emulated machine, without devices or a kernel."""
        cpu = ["-cpu", "host"] if self.accel == "kvm" else list(self.arch.tcg_cpu)
        return [
            self.qemu, "-accel", self.accel, *cpu, *self.arch.machine,
            "-smp", str(self.cpus), "-m", str(self.memory_mb),
            "-nodefaults", "-display", "none", "-no-reboot",
        ]

    @property
    def python(self) -> str:
        """The guest's interpreter, as the guest names it."""
        return sys.executable if self.userland is None else userland.PYTHON

    def initramfs(self) -> Path:
        """The initramfs; with the agent's interpreter and byte code packed in
        for a guest with a userland of its own and a kernel without KASAN.
        Measured on a busy 2-core host: debian-arm64 reached the agent in 25 s
        instead of 40 (the guest's own CPython and standard library, read over
        9p, cost the most); a KASAN kernel spent 22 s unpacking a 38 MiB
        initramfs; on x86 the difference was lost in the noise."""
        config = kernel_config(self.kernel) or {}
        if self.userland is None or config.get("CONFIG_KASAN") == "y":
            return initramfs.build(self.kernel)
        return initramfs.build(self.kernel, pack.files(self.python, self.userland))

    def command(self, run_dir: Path, job_path: Path, initrd: Path) -> list[str]:
        python = self.python
        cmdline = [
            *base_cmdline(self.arch),
            *self.kernel.cmdline,
            *(p for p in self.boot_params if p not in self.kernel.cmdline),
            f"harness.init={GUEST_INIT}",
            f"harness.modroot={self.kernel.modules_root}",
            f"harness.python={python}",
            f"harness.job={job_path}",
            f"harness.cwd={CHECKOUT}",
            f"harness.path={CHECKOUT}:{sysconfig.get_paths()['purelib']}",
            *self.extra_cmdline,
        ]
        share: list[str] = []
        if self.userland is not None:
            cmdline.append("harness.userland=userland")
            share = [
                "-fsdev", f"local,id=userland,path={self.userland},security_model=none,"
                "readonly=on,multidevs=remap",
                "-device", "virtio-9p-pci,fsdev=userland,mount_tag=userland",
            ]
        dtb = ["-dtb", str(self.dtb)] if self.dtb is not None else []
        return [
            *self.machine_args(),
            "-kernel", str(self.kernel.image), "-initrd", str(initrd), *dtb,
            "-append", " ".join(cmdline),
            "-chardev", self.console_chardev(run_dir),
            "-serial", "chardev:console",
            # Without an entropy source the CRNG takes seconds to seed under
            # TCG, and CPython's start blocks on it.
            "-device", "virtio-rng-pci",
            "-device", "virtio-serial-pci,id=vser",
            "-chardev", f"file,id=events,path={run_dir / 'events.jsonl'}",
            "-device", "virtserialport,bus=vser.0,chardev=events,name=harness.events",
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            *share,
            *self.arch.devices,
            "-monitor", f"unix:{monitor_path(run_dir)},server=on,wait=off",
            *self.extra_args,
        ]

    def console_chardev(self, run_dir: Path) -> str:
        """QEMU's -chardev spec for the kernel console (id=console)."""
        return f"file,id=console,path={run_dir / 'console.log'}"

    def run(
        self,
        tasks: list[dict[str, Any]],
        run_dir: Path,
        deadlines: Deadlines = DEADLINES,
        on_event: EventHook | None = None,
    ) -> GuestRun:
        """Boot, run `tasks` in the agent, and return when the guest is gone.
        `on_event` sees every event as it arrives (for live progress)."""
        result = begin(run_dir, ("console.log", "events.jsonl", "qemu.log"))
        # QEMU's chardev writes events.jsonl itself.
        book = EventBook(result, deadlines, on_event, log=False)
        return run_job(_QemuJob(self, tasks, run_dir), book)

    def _collect_hang_evidence(self, run_dir: Path) -> None:
        """Ask the kernel for blocked tasks and all CPUs' stacks before the kill."""
        for keys in ("alt-sysrq-w", "alt-sysrq-l"):
            monitor_command(monitor_path(run_dir), f"sendkey {keys}")
        time.sleep(3.0)


class _QemuJob:
    """One boot: QEMU's own process, the guest's events in the file its chardev writes."""

    not_started = "the guest did not start the agent"

    def __init__(self, target: QemuTarget, tasks: list[dict[str, Any]], run_dir: Path):
        self.target = target
        self.tasks = tasks
        self.run_dir = run_dir
        self.events = run_dir / "events.jsonl"
        self.argv: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.book: EventBook | None = None
        self._offset = 0
        self._partial = b""
        self.console = _ConsoleTail(run_dir / "console.log")
        self._nudged_at: float | None = None  # the kernel's last output when nudged

    def prepare(self, book: EventBook) -> str | None:
        monitor_path(self.run_dir).unlink(missing_ok=True)
        job_path = self.run_dir / "job.json"
        job_path.write_text(json.dumps({"tasks": self.tasks}, indent=1))
        bytecode.compile_checkout(CHECKOUT / "harness")
        self.argv = self.target.command(self.run_dir, job_path, self.target.initramfs())
        (self.run_dir / "qemu.cmdline").write_text(shlex.join(self.argv) + "\n")
        return None

    def launch(self, book: EventBook) -> None:
        # The boot deadline and boot time count from QEMU's start, not from
        # building the initramfs.
        book.restart()
        self.book = book
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=(self.run_dir / "qemu.log").open("w"),
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )

    def read(self, timeout: float) -> list[str | dict[str, Any]] | None:
        """New whole lines of the events file; None once QEMU has exited and
        the file has nothing more."""
        assert self.proc is not None
        end = time.monotonic() + timeout
        while True:
            self._follow_console()
            chunk = b""
            if self.events.exists():
                with self.events.open("rb") as f:
                    f.seek(self._offset)
                    chunk = f.read()
                self._offset += len(chunk)
            if chunk:
                *lines, self._partial = (self._partial + chunk).split(b"\n")
                return [line.decode(errors="replace") for line in lines]
            if self.proc.poll() is not None:
                return None
            if time.monotonic() >= end:
                return []
            time.sleep(0.02)

    def _follow_console(self) -> None:
        grew, report = self.console.read()
        book = self.book
        if book is None:
            return
        if grew:
            book.kernel_printed(report)
        if (book.reported and self._nudged_at != book.kernel_last
                and time.monotonic() - max(book.last, book.kernel_last) > NUDGE_AFTER):
            self._nudged_at = book.kernel_last
            monitor_command(monitor_path(self.run_dir), "sendkey shift")

    def ended(self) -> str | None:
        return None  # a panic ends QEMU (panic=-1, -no-reboot), and so the stream

    def finish(self) -> None:
        """Wait for the guest to power off, or for its console to settle (a
        guest whose kernel reported may never get as far as powering off)."""
        assert self.proc is not None and self.book is not None
        end = time.monotonic() + POWEROFF_TIMEOUT
        while self.proc.poll() is None:
            self._follow_console()
            now = time.monotonic()
            quiet = now - max(self.book.kernel_last, self.book.last)
            if quiet >= SETTLE_QUIET and (quiet >= SETTLE_OPEN_REPORT
                                          or not self.console.inside_report()):
                return  # stop() ends QEMU
            if now >= end:
                # The kernel kept printing: a CPU stuck in it can stall poweroff itself.
                raise DeadlinePassed(
                    f"the agent finished but the guest did not power off within "
                    f"{POWEROFF_TIMEOUT:.0f} s"
                )
            time.sleep(0.1)

    def why_ended(self) -> str:
        assert self.proc is not None
        return (f"QEMU exited with status {self.proc.returncode} before the agent finished"
                + _qemu_said(self.run_dir))

    def cut_off(self) -> str | None:
        # A guest ends QEMU with status 0 (poweroff, or a panic: panic=-1 and
        # -no-reboot); a signal or QEMU's own error status came from outside it.
        assert self.proc is not None
        status = self.proc.returncode
        if status is not None and status < 0:
            return (f"QEMU was killed by {signal.Signals(-status).name} from outside the "
                    f"guest (a user, the host's OOM killer)")
        if status:
            return f"QEMU failed with status {status}" + _qemu_said(self.run_dir)
        return None

    def hang_evidence(self) -> None:
        self.target._collect_hang_evidence(self.run_dir)

    def stop(self, result: GuestRun) -> None:
        if self.proc is not None:
            kill_group(self.proc)
        # QEMU leaves its monitor socket behind when it is killed.
        monitor_path(self.run_dir).unlink(missing_ok=True)


class _ConsoleTail:
    """The console file as QEMU writes it, followed for what the kernel prints."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self._inside: tuple[int, bool] = (-1, False)

    def read(self) -> tuple[bool, bool]:
        """(the console grew, a report began in what it added)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return False, False
        if not chunk:
            return False, False
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        return True, any(opens_report(line.decode(errors="replace")) for line in lines)

    def inside_report(self) -> bool:
        """The console so far ends inside a report (its end not printed yet)."""
        if self._inside[0] != self.offset:
            text = self.path.read_text(errors="replace") if self.path.exists() else ""
            self._inside = (self.offset, ends_inside_report(text))
        return self._inside[1]


def monitor_path(run_dir: Path) -> Path:
    """The monitor's socket: in the run directory when its path fits a
    sockaddr_un (108 bytes), else under /tmp by a digest of the directory."""
    path = run_dir / "monitor.sock"
    if len(os.fsencode(path)) < 100:
        return path
    digest = hashlib.sha256(os.fsencode(run_dir.resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"v4l2-unplug-monitor-{digest}.sock"


def _qemu_said(run_dir: Path) -> str:
    """QEMU's last words (a refused option, a missing file), for the error line."""
    try:
        lines = (run_dir / "qemu.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f": {lines[-1][:300]}" if lines else ""


def monitor_command(sock_path: Path, command: str, timeout: float = 2.0) -> str:
    """Send one HMP command; best effort, since the VM may already be gone."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall(command.encode() + b"\n")
            time.sleep(0.2)
            return s.recv(65536).decode(errors="replace")
    except OSError:
        return ""


def raise_for_boot(run: GuestRun) -> None:
    """Turn a boot that never reached the agent into one clear error."""
    if run.outcome == Outcome.BOOT_FAILED:
        raise GuestError(
            f"the guest never came up ({run.message}); console: {run.console_path}",
            console_tail=run.console_tail(),
            report_dir=str(run.run_dir),
        )
