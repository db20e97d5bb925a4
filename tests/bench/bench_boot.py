"""Boot to agent ready, per flavour, against a bare boot of the same kernel.

The bare boot runs the same kernel on the same emulated machine with an
initramfs holding only a static init that prints a marker and powers off:
the floor no harness can beat. Targets on 2-core TCG machines: debian <= 6 s,
debug <= 12 s, debian-arm64 <= 10 s, debug-arm64 <= 16 s, ratio <= 1.3 (an
arm64 guest's bare init is cross-compiled; its agent starts the guest's own
python3.11).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.host.kernels.flavours import get_kernel
from harness.host.targets.qemu import QemuTarget, base_cmdline
from harness.pure.arch import Arch

ROUNDS = 3
MARKER = b"BARE-INIT-READY"
TARGETS = {"debian": 6.0, "debug": 12.0, "debian-arm64": 10.0, "debug-arm64": 16.0}
INIT_C = r"""
#include <fcntl.h>
#include <sys/reboot.h>
#include <unistd.h>
int main(void) {
    int fd = open("/dev/console", O_WRONLY);
    write(fd, "\nBARE-INIT-READY\n", 17);
    reboot(RB_POWER_OFF);
    return 0;
}
"""


def bare_initramfs(tmp: Path, arch: Arch) -> Path:
    root = tmp / "root"
    (root / "dev").mkdir(parents=True)
    (tmp / "init.c").write_text(INIT_C)
    subprocess.run([f"{arch.cross_compile}gcc", "-static", "-Os", "-o", str(root / "init"),
                    str(tmp / "init.c")], check=True)
    pack = "find . | cpio -o -H newc --quiet -R 0:0 | gzip -1 > ../bare.cpio.gz"
    subprocess.run(["sh", "-c", pack],
                   cwd=root, check=True)
    return tmp / "bare.cpio.gz"


def bare_boot(target: QemuTarget, initrd: Path, tmp: Path) -> float:
    console = tmp / "bare-console.log"
    console.unlink(missing_ok=True)
    argv = [
        *target.machine_args(),
        "-kernel", str(target.kernel.image), "-initrd", str(initrd),
        "-append", " ".join([*base_cmdline(target.arch), *target.kernel.cmdline,
                             *target.boot_params, "rdinit=/init"]),
        "-serial", f"file:{console}",
    ]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - start < 120:
            if console.exists() and MARKER in console.read_bytes():
                return time.monotonic() - start
            time.sleep(0.01)
        raise RuntimeError("bare boot did not reach init")
    finally:
        proc.kill()
        proc.wait()


def agent_boot(target: QemuTarget) -> float:
    # A boot that fails keeps its console outside the temporary directory.
    out = Path(tempfile.mkdtemp(prefix=f"v4l2-unplug-bench-{target.kernel.flavour}-"))
    run = target.run([{"task": "uname"}], out)
    if run.boot_seconds is None:
        raise RuntimeError(f"agent never came up: {run.message}; console "
                           f"{run.console_path}:\n{run.console_tail()}")
    shutil.rmtree(out)
    return run.boot_seconds


def main() -> None:
    flavours = sys.argv[2:] or ["debian", "debug", "debian-arm64"]
    print(f"{'flavour':12} {'bare s':>8} {'agent s':>8} {'ratio':>6}  targets")
    for flavour in flavours:
        target = QemuTarget(get_kernel(flavour))
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            initrd = bare_initramfs(tmp, target.arch)
            bare = statistics.median(bare_boot(target, initrd, tmp) for _ in range(ROUNDS))
            agent = statistics.median(agent_boot(target) for _ in range(ROUNDS))
        print(f"{flavour:12} {bare:8.2f} {agent:8.2f} {agent / bare:6.2f}  "
              f"agent <= {TARGETS[flavour]:.0f} s, ratio <= 1.3 (median of {ROUNDS}, "
              f"accel {target.accel})", flush=True)


if __name__ == "__main__":
    main()
