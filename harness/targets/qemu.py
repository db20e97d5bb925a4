"""The QEMU target: boot a kernel, run the agent inside it, collect everything.

The guest sees the host's root file system read-only over virtio-9p (with a
tmpfs overlay inside), so the agent runs with the host's interpreter and
virtualenv from wherever the checkout lives. The kernel console goes to a
file and the agent's events to another over virtio-serial: the console is
kept whole even when the guest panics or hangs, and the events are never
mixed into it.
"""

from __future__ import annotations

import ctypes
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.arch import ARCHES, Arch, get_arch
from harness.errors import GuestError, KernelError, SetupError
from harness.kernels.kernel import Kernel
from harness.targets import initramfs, userland
from harness.targets.accel import choose_accel

CHECKOUT = Path(__file__).resolve().parents[2]
GUEST_INIT = CHECKOUT / "vm" / "guest-init"


def base_cmdline(arch: Arch) -> tuple[str, ...]:
    """Kernel command line of every boot on `arch` (harness.arch has why)."""
    return (f"console={arch.console}", *arch.cmdline)


# An x86 guest's, for callers that boot x86 by hand (the boot benchmark).
BASE_CMDLINE = base_cmdline(ARCHES["x86_64"])


POWEROFF_TIMEOUT = 15.0


@dataclass(frozen=True)
class Deadlines:
    """Seconds. boot: QEMU start to the agent's `ready`; idle: longest silence
    between two events; total: the whole run."""

    boot: float = 90.0
    idle: float = 300.0
    total: float = 1800.0


@dataclass
class GuestRun:
    """What one boot left behind: events, console, and how it ended."""

    run_dir: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "running"  # done | hang | crashed | boot-failed
    boot_seconds: float | None = None
    message: str = ""

    @property
    def console_path(self) -> Path:
        return self.run_dir / "console.log"

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "events": self.events, "outcome": self.outcome,
                "boot_seconds": self.boot_seconds, "message": self.message}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GuestRun:
        return cls(Path(d["run_dir"]), d["events"], d["outcome"], d["boot_seconds"],
                   d["message"])

    def console(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except OSError:
            return ""

    def console_tail(self, lines: int = 25) -> str:
        return "\n".join(self.console().splitlines()[-lines:])

    def results(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] in ("result", "error")]


def _die_with_parent() -> None:
    # If the harness is killed outright (SIGKILL, OOM), QEMU must not outlive it.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


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
        driver's nodes added (harness.targets.devicetree)."""
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

    def machine_args(self) -> list[str]:
        """The emulated machine, without devices or a kernel."""
        cpu = ["-cpu", "host"] if self.accel == "kvm" else list(self.arch.tcg_cpu)
        return [
            self.qemu, "-accel", self.accel, *cpu, *self.arch.machine,
            "-smp", str(self.cpus), "-m", str(self.memory_mb),
            "-nodefaults", "-display", "none", "-no-reboot",
        ]

    def command(self, run_dir: Path, job_path: Path, initrd: Path) -> list[str]:
        python = sys.executable if self.userland is None else userland.PYTHON
        cmdline = [
            *base_cmdline(self.arch),
            *self.kernel.cmdline,
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
        deadlines: Deadlines = Deadlines(),
        on_event: Callable[[dict[str, Any], GuestRun], None] | None = None,
    ) -> GuestRun:
        """Boot, run `tasks` in the agent, and return when the guest is gone.
        `on_event` sees every event as it arrives (for live progress)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("console.log", "events.jsonl", "qemu.log"):
            (run_dir / stale).unlink(missing_ok=True)
        monitor_path(run_dir).unlink(missing_ok=True)
        job_path = run_dir / "job.json"
        job_path.write_text(json.dumps({"tasks": tasks}, indent=1))
        argv = self.command(run_dir, job_path, initramfs.build(self.kernel))
        (run_dir / "qemu.cmdline").write_text(shlex.join(argv) + "\n")
        result = GuestRun(run_dir=run_dir)
        start = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=(run_dir / "qemu.log").open("w"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        try:
            for event in _follow(run_dir / "events.jsonl", proc, start, deadlines, result):
                result.events.append(event)
                if on_event is not None:
                    on_event(event, result)
                if event["event"] == "ready" and result.boot_seconds is None:
                    result.boot_seconds = time.monotonic() - start
                if event["event"] == "done":
                    result.outcome = "done"
            if result.outcome == "running":
                result.outcome = "crashed" if result.boot_seconds else "boot-failed"
                result.message = (
                    f"QEMU exited with status {proc.returncode} before the agent finished"
                    + _qemu_said(run_dir)
                )
        except _Deadline as d:
            result.outcome = "hang" if result.boot_seconds else "boot-failed"
            result.message = str(d)
            self._collect_hang_evidence(run_dir)
        finally:
            _kill(proc)
        return result

    def _collect_hang_evidence(self, run_dir: Path) -> None:
        """Ask the kernel for blocked tasks and all CPUs' stacks before the kill."""
        for keys in ("alt-sysrq-w", "alt-sysrq-l"):
            monitor_command(monitor_path(run_dir), f"sendkey {keys}")
        time.sleep(3.0)


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


class _Deadline(Exception):
    pass


def _follow(
    path: Path, proc: subprocess.Popen, start: float, deadlines: Deadlines, result: GuestRun
) -> Iterator[dict[str, Any]]:
    """Yield events as the guest writes them, until QEMU exits or a deadline passes."""
    buf = b""
    offset = 0
    last = time.monotonic()
    while True:
        chunk = b""
        if path.exists():
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbled", "raw": line.decode(errors="replace")}
            last = time.monotonic()
            yield event
            if event.get("event") == "done":
                try:
                    proc.wait(timeout=POWEROFF_TIMEOUT)
                except subprocess.TimeoutExpired:
                    # A CPU stuck in the kernel can stall poweroff itself.
                    raise _Deadline(
                        f"the agent finished but the guest did not power off within "
                        f"{POWEROFF_TIMEOUT:.0f} s"
                    ) from None
                return
        if proc.poll() is not None and not chunk:
            return
        now = time.monotonic()
        if result.boot_seconds is None and now - start > deadlines.boot:
            raise _Deadline(f"the guest did not start the agent within {deadlines.boot:.0f} s")
        if result.boot_seconds is not None and now - last > deadlines.idle:
            raise _Deadline(f"the agent sent nothing for {deadlines.idle:.0f} s")
        if now - start > deadlines.total:
            raise _Deadline(f"the run exceeded its total deadline of {deadlines.total:.0f} s")
        time.sleep(0.02 if not chunk else 0)


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


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def raise_for_boot(run: GuestRun) -> None:
    """Turn a boot that never reached the agent into one clear error."""
    if run.outcome == "boot-failed":
        raise GuestError(
            f"the guest never came up ({run.message}); console: {run.console_path}",
            console_tail=run.console_tail(),
            report_dir=str(run.run_dir),
        )
