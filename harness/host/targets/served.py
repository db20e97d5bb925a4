"""A QEMU guest that stands in for a board: sshd, a serial login, and resets.

`v4l2-unplug serve` boots the kernel with a user-mode NIC whose port 22 is
forwarded to a loopback port on the host, sshd from Debian's openssh-server
package (unpacked into the cache, never installed on the host), and a root
login on the serial console. The serial console is a pty on the host that
outlives each boot, as a board's USB-serial adapter outlives its resets.
When the guest reboots, panics or is power-cycled (SIGHUP to `serve`),
QEMU ends and the guest is booted again. The SSH and serial targets are
tested against this, exactly as they are used against a board.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import platform
import select
import shlex
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from harness.host import cache
from harness.host.kernels import apt
from harness.host.kernels.kernel import Kernel
from harness.host.targets import initramfs
from harness.host.targets.process import die_with_parent, kill_group
from harness.host.targets.qemu import CHECKOUT, QemuTarget
from harness.pure.arch import Arch
from harness.pure.errors import SetupError

GUEST_SERVE = CHECKOUT / "vm" / "guest-serve"
READY_LINE = b"harness-serve: sshd listening"
# A guest that dies this soon after QEMU started never booted (a bad port,
# a bad kernel); booting it again would fail the same way.
EARLY_EXIT = 3.0


def _unpacked(package: str, arch: Arch) -> Path:
    # Two serves (parallel tests) on a fresh cache would both unpack it.
    lock_path = cache.cache_root() / "debs" / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return apt.unpacked(package, arch.debian)


def _lib_dir(package: str, arch: Arch) -> Path:
    """The directory where `package`, for `arch`, puts its shared libraries:
    Debian's multiarch one (usr/lib/x86_64-linux-gnu on amd64)."""
    root = _unpacked(package, arch)
    dirs = sorted({lib.parent for lib in (root / "usr" / "lib").glob("*/*.so*")})
    if len(dirs) != 1:
        raise SetupError(f"Debian's {package} ({arch.debian}) has its libraries in "
                         f"{len(dirs)} directories under {root}/usr/lib, not one")
    return dirs[0]


def has_module(kernel: Kernel, name: str) -> bool:
    """True if `kernel` has module `name` built in or in its module tree."""
    for listing in ("modules.builtin", "modules.dep"):
        path = kernel.module_dir / listing
        if path.exists():
            for line in path.read_text().splitlines():
                ko = line.split(":", 1)[0]
                if Path(ko).name.split(".ko")[0].replace("-", "_") == name:
                    return True
    return False


class ServedGuest(QemuTarget):
    """QemuTarget's machine plus a forwarded ssh port and a serial console on a socket."""

    def __init__(self, kernel: Kernel, ssh_port: int, ssh_dir: Path):
        super().__init__(kernel)
        if not self.arch.native:
            # sshd and its libraries come from the host's root file system,
            # which only a guest of the host's architecture can run.
            raise SetupError(
                f"serve's guest runs sshd from the host's root file system, so its kernel "
                f"must be the host's architecture ({platform.machine()}); {kernel.flavour} "
                f"is {kernel.arch} (use --kernel debian)"
            )
        if not has_module(kernel, "virtio_net"):
            raise SetupError(
                f"kernel {kernel.flavour} {kernel.release} has no virtio_net (neither built in "
                f"nor a module), so the guest would have no network: use --kernel debian"
            )
        sshd = _unpacked("openssh-server", self.arch) / "usr" / "sbin" / "sshd"
        self.extra_cmdline = (
            f"harness.serve={GUEST_SERVE}",
            f"harness.sshd={sshd}",
            f"harness.sshdir={ssh_dir}",
            # Debian's sshd links libwrap, which a minimal host may lack.
            f"harness.ldpath={_lib_dir('libwrap0', self.arch)}",
        )
        self.extra_args = (
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
            "-device", "virtio-net-pci,netdev=net0",
        )

    def command(self, run_dir: Path, job_path: Path, initrd: Path) -> list[str]:
        # No events port: on a board the agent's events go to its stdout (the
        # ssh session, the serial shell), and this guest is tested as a board.
        argv = super().command(run_dir, job_path, initrd)
        out: list[str] = []
        i = 0
        while i < len(argv):
            if argv[i] in ("-chardev", "-device") and i + 1 < len(argv) and (
                    "id=events" in argv[i + 1] or "name=harness.events" in argv[i + 1]):
                i += 2
                continue
            out.append(argv[i])
            i += 1
        return out

    def console_chardev(self, run_dir: Path) -> str:
        return (f"socket,id=console,path={run_dir / 'serial.sock'},server=on,wait=off,"
                f"logfile={run_dir / 'console.log'}")


class SerialBridge:
    """A host pty wired to the console socket of whichever boot is current.

    The pty is a raw wire (no echo, no line editing). Its far end stays open
    here, so the pty never hangs up between clients; what nobody reads is
    dropped, as a serial line drops what no one listens to.
    """

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._pump, name="serial-bridge", daemon=True)
        self._thread.start()

    def attach(self, sock_path: Path, timeout: float = 20.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(sock_path))
            except OSError:
                s.close()
                time.sleep(0.05)
                continue
            s.setblocking(False)
            with self._lock:
                self._sock = s
            return True
        return False

    def detach(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._stop = True
        self.detach()
        self._thread.join(timeout=2)
        for fd in (self.master, self._slave):
            os.close(fd)

    def _pump(self) -> None:
        while not self._stop:
            with self._lock:
                sock = self._sock
            fds = [self.master] + ([sock] if sock is not None else [])
            try:
                readable, _, _ = select.select(fds, [], [], 0.2)
            except (OSError, ValueError):
                continue  # the socket was closed under select: the boot ended
            if self.master in readable:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if data and sock is not None:
                    self._send(sock, data)
            if sock is not None and sock in readable:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.detach()
                    continue
                self._to_pty(data)

    def _send(self, sock: socket.socket, data: bytes) -> None:
        end = time.monotonic() + 2.0
        while data and time.monotonic() < end:
            try:
                data = data[sock.send(data):]
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                return

    def _to_pty(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.master, data):]
            except BlockingIOError:
                # Nobody reads the pty: drop its backlog rather than stall the guest.
                termios.tcflush(self._slave, termios.TCIFLUSH)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                return


def free_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise SetupError(f"port {port} on 127.0.0.1 is not free ({e.strerror})") from None


def prepare_ssh_dir(ssh_dir: Path, keys: list[Path]) -> None:
    """A host key that stays the same across boots, and the keys that may log in."""
    ssh_dir.mkdir(parents=True, exist_ok=True)
    host_key = ssh_dir / "ssh_host_ed25519_key"
    if not host_key.exists():
        try:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "v4l2-unplug",
                            "-f", str(host_key)], check=True, capture_output=True)
        except FileNotFoundError:
            raise SetupError("ssh-keygen not found: apt-get install openssh-client") from None
    text = ""
    for key in keys:
        try:
            text += key.read_text().strip() + "\n"
        except OSError as e:
            raise SetupError(f"cannot read public key {key}: {e.strerror}") from None
    (ssh_dir / "authorized_keys").write_text(text)


def default_keys() -> list[Path]:
    keys = sorted((Path.home() / ".ssh").glob("id_*.pub"))
    if not keys:
        raise SetupError("no public key in ~/.ssh: give --authorized-key FILE "
                         "(or create one with ssh-keygen)")
    return keys


class Server:
    """Boots the guest again whenever it goes down, until stopped."""

    def __init__(self, kernel: Kernel, ssh_port: int, keys: list[Path], out: Path,
                 say: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)):
        self.out = out.resolve()
        free_port(ssh_port)
        prepare_ssh_dir(self.out / "ssh", keys)
        self.guest = ServedGuest(kernel, ssh_port, self.out / "ssh")
        self.ssh_port = ssh_port
        self.say = say
        self._power_cycle = False
        self._stop = False

    def state(self, boot: int, ready: bool, bridge: SerialBridge) -> None:
        doc = {"pid": os.getpid(), "ssh_port": self.ssh_port, "serial": bridge.path,
               "boot": boot, "ready": ready,
               "console": str(self.out / f"boot-{boot:02d}" / "console.log"),
               "power_cycle": f"kill -HUP {os.getpid()}"}
        tmp = self.out / "serve.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.rename(self.out / "serve.json")

    def serve(self) -> int:
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "_power_cycle", True))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        initrd = initramfs.build(self.kernel)
        bridge = SerialBridge()
        self.say(f"serial console: {bridge.path}; power cycle: kill -HUP {os.getpid()}; "
                 f"state: {self.out / 'serve.json'}")
        boot = 0
        try:
            while not self._stop:
                boot += 1
                self._boot(boot, initrd, bridge)
        finally:
            bridge.close()
        return 0

    @property
    def kernel(self) -> Kernel:
        return self.guest.kernel

    def _boot(self, boot: int, initrd: Path, bridge: SerialBridge) -> None:
        run_dir = self.out / f"boot-{boot:02d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        argv = self.guest.command(run_dir, run_dir / "job.json", initrd)
        (run_dir / "qemu.cmdline").write_text(shlex.join(argv) + "\n")
        self.state(boot, False, bridge)
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=(run_dir / "qemu.log").open("w"),
                                stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        try:
            bridge.attach(run_dir / "serial.sock")
            ready = False
            self._power_cycle = False
            while proc.poll() is None and not (self._stop or self._power_cycle):
                if not ready and READY_LINE in _read(run_dir / "console.log"):
                    ready = True
                    self.state(boot, True, bridge)
                    self.say(f"boot {boot}: ready: ssh -p {self.ssh_port} root@127.0.0.1")
                time.sleep(0.1)
        finally:
            kill_group(proc)
            bridge.detach()
        crashed_at_once = time.monotonic() - started < EARLY_EXIT and proc.returncode != 0
        if crashed_at_once and not (self._power_cycle or self._stop):
            log = _read(run_dir / "qemu.log").decode(errors="replace").strip().splitlines()
            raise SetupError(f"QEMU failed: {log[-1] if log else 'no output'}")
        why = ("power cycle" if self._power_cycle else "stopped" if self._stop
               else "the guest went down")
        self.say(f"boot {boot}: {why}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


class ServeProcess:
    """`v4l2-unplug serve` in a child process, ready once the guest's sshd is:
    how tests (and scripts) get a board to point the SSH and serial targets at."""

    def __init__(self, kernel: str, ssh_port: int, key: Path, out: Path,
                 timeout: float = 180.0):
        self.out = out
        self.ssh_port = ssh_port
        out.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.host.cli", "serve", "--kernel", kernel, "--ssh-port",
             str(ssh_port), "--authorized-key", str(key), "--report", str(out)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(out / "serve.log").open("w"), cwd=CHECKOUT)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def state(self) -> dict:
        try:
            return json.loads((self.out / "serve.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_ready(self, timeout: float, after_boot: int = 0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self.state()
            if state.get("ready") and state.get("boot", 0) > after_boot:
                return state
            if self.proc.poll() is not None:
                log = (self.out / "serve.log").read_text(errors="replace")
                raise SetupError(f"serve exited with status {self.proc.returncode}: "
                                 f"{log.strip().splitlines()[-1:] or ['no output']}")
            time.sleep(0.2)
        raise SetupError(f"the served guest was not ready within {timeout:.0f} s; "
                         f"see {self.out}/serve.log")

    @property
    def serial(self) -> str:
        return self.state()["serial"]

    @property
    def power_cycle(self) -> str:
        return self.state()["power_cycle"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
