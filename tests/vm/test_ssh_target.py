"""The SSH target against a QEMU guest running a real sshd (`v4l2-unplug serve`):
the same scenarios give the same verdicts as on the QEMU target, and a board
the harness cannot use is refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# One rmmod, one unbind_bind, a blocked call, and the media node.
SCENARIOS = ["idle--unbind_bind", "video.raw_capture_0-streaming--rmmod",
             "video.raw_capture_0-blocked_dqbuf--unbind", "media-opened--unbind"]


LABGRID_ENV = """
targets:
  main:
    resources:
      NetworkService:
        address: 127.0.0.1
        username: root
        port: {port}
    drivers:
      ExternalPowerDriver:
        cmd_on: "true"
        cmd_off: "true"
        cmd_cycle: "touch {cycled}"
"""


def debian_only(request: pytest.FixtureRequest) -> None:
    # The debian flavour has virtio_net as a module; the debug kernel has no NIC driver.
    if "debian" not in (request.config.getoption("--kernel") or ["debian"]):
        pytest.skip("the served guest boots the debian flavour")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keypair(where: Path) -> Path:
    key = where / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def cli(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.host.cli", *argv], capture_output=True,
                          text=True, timeout=timeout)


def verdicts(report: Path) -> dict[str, str]:
    doc = json.loads((report / "results.json").read_text())
    return {s["name"]: s["verdict"] for s in doc["scenarios"]}


def test_ssh_target_gives_the_qemu_targets_verdicts(request: pytest.FixtureRequest,
                                                    tmp_path: Path) -> None:
    debian_only(request)
    from harness.host.targets.served import ServeProcess

    key = keypair(tmp_path)
    port = free_port()
    picked = [a for name in SCENARIOS for a in ("--scenario", name)]
    target = f"ssh://root@127.0.0.1:{port}"
    with ServeProcess("debian", port, key.with_suffix(".pub"), tmp_path / "serve"):
        # What a board owner gets wrong, said in one line.
        (tmp_path / "other").mkdir()
        wrong = keypair(tmp_path / "other")
        for argv, says in (
                (["--target", f"{target}?python=/opt/none/python3", "--ssh-identity", str(key)],
                 "no /opt/none/python3 on the board"),
                (["--target", target, "--ssh-identity", str(wrong)], "Permission denied")):
            bad = cli("run", "--scenario", SCENARIOS[0], *argv, timeout=120)
            assert bad.returncode == 2, bad.stderr
            assert says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr

        ssh = cli("run", "--driver", "vimc", "--target", target, "--kernel", "debian",
                  "--ssh-identity", str(key), "--report", str(tmp_path / "ssh"), *picked)

        # The same board described by a labgrid environment, read by labgrid.
        env = tmp_path / "lab.yaml"
        env.write_text(LABGRID_ENV.format(port=port, cycled=tmp_path / "cycled"))
        lab = cli("run", "--driver", "vimc", "--target", f"labgrid:{env}",
                  "--ssh-identity", str(key), "--report", str(tmp_path / "labgrid"),
                  "--scenario", SCENARIOS[0])
    assert lab.returncode in (0, 1), lab.stderr
    assert verdicts(tmp_path / "labgrid")[SCENARIOS[0]] == verdicts(tmp_path / "ssh")[SCENARIOS[0]]
    assert ssh.returncode in (0, 1), ssh.stderr
    doc = json.loads((tmp_path / "ssh" / "results.json").read_text())
    assert doc["kernel"]["flavour"] == "board" and doc["kernel"]["image"] == target

    # The kernel log came over ssh from /dev/kmsg, as console lines the
    # attribution markers are found in.
    from harness.pure.scenarios.attribution import markers

    console = (tmp_path / "ssh" / "boot-01" / "console.log").read_text()
    begun = {m.scenario for m in markers(console) if m.step == "begin" and m.time is not None}
    assert begun == set(SCENARIOS)

    qemu = cli("run", "--driver", "vimc", "--kernel", "debian",
               "--report", str(tmp_path / "qemu"), *picked)
    assert qemu.returncode in (0, 1), qemu.stderr
    assert verdicts(tmp_path / "ssh") == verdicts(tmp_path / "qemu")

