"""Does KVM actually work here, or must QEMU use TCG?

On some hosts /dev/kvm exists and even runs real-mode firmware, yet a Linux
guest hangs before printing a line, so neither the device nor a boot-sector
test proves anything. The probe boots the very kernel we are about to use
with no root file system and `panic=-1`: a working KVM reaches the "cannot
mount root" panic and QEMU exits on its own within seconds; a broken one does
not. The answer is cached per host, QEMU version and kernel.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

from harness.host import cache

PROBE_TIMEOUT = 20.0


def kvm_boots(qemu: str, image: Path) -> bool:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    argv = [
        qemu, "-accel", "kvm", "-cpu", "host", "-nodefaults", "-display", "none", "-m", "256",
        "-no-reboot", "-serial", "stdio", "-kernel", str(image),
        "-append", "console=ttyS0 panic=-1 quiet",
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and b"Kernel panic" in proc.stdout


def choose_accel(qemu: str, image: Path) -> str:
    """'kvm' or 'tcg'; V4L2_UNPLUG_ACCEL=kvm|tcg overrides the probe."""
    forced = os.environ.get("V4L2_UNPLUG_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout
    key = cache.digest(version, platform.release(), qemu, str(image))
    record = cache.cache_root() / "accel.json"
    try:
        known = json.loads(record.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = "kvm" if kvm_boots(qemu, image) else "tcg"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(known, indent=1))
    return known[key]
