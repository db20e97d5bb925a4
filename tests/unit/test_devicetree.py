"""Device-tree synthesis from a recorded QEMU tree (no QEMU needed; dtc when installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.host.targets import devicetree
from harness.host.targets.devicetree import DeviceTreeError

DATA = Path(__file__).parent.parent / "data" / "devicetree"
ROOT = Path(__file__).parent.parent.parent
QEMU_DTS = (DATA / "qemu-virt-cortex-a57-1G.dts").read_text()
GEN3 = (ROOT / "vm" / "rcar" / "gen3.dtsi").read_text()


def test_memory_range_of_recorded_qemu_tree() -> None:
    assert devicetree.memory_range(QEMU_DTS) == (0x40000000, 0x40000000)


def test_window_sits_one_mib_below_the_top_of_ram() -> None:
    values = devicetree.placement(QEMU_DTS)
    assert values["window"] == "7ff00000"
    assert values["window_hi"] == "0x0" and values["window_lo"] == "0x7ff00000"
    assert values["vin1"] == "7ff01000" and values["vin1_lo"] == "0x7ff01000"


def test_synthesis_appends_the_fragment_with_values() -> None:
    out = devicetree.synthesize(QEMU_DTS, GEN3)
    assert out.startswith(QEMU_DTS.rstrip())
    assert "vin-registers@7ff00000" in out
    assert "reg = <0x0 0x7ff01000 0x0 0x1000>;" in out
    assert '"renesas,vin-r8a7795"' in out and "${" not in out


def test_unknown_value_is_one_clear_error() -> None:
    with pytest.raises(DeviceTreeError, match="unknown value"):
        devicetree.synthesize(QEMU_DTS, "/ { x { reg = <${nowhere}>; }; };")


def test_tree_without_memory_is_refused() -> None:
    with pytest.raises(DeviceTreeError, match="no /memory node"):
        devicetree.placement("/dts-v1/;\n/ {\n};\n")


def test_dump_argv_adds_dumpdtb_and_drops_boot_files(tmp_path: Path) -> None:
    argv = ["qemu-system-aarch64", "-nodefaults", "-machine", "virt", "-cpu", "cortex-a57",
            "-m", "1G", "-kernel", "Image", "-initrd", "x.cpio", "-append", "console=ttyAMA0",
            "-chardev", "socket,id=c0,path=/tmp/s", "-dtb", "old.dtb", "-smp", "2"]
    out = devicetree.dump_argv(argv, tmp_path / "q.dtb")
    assert out == ["qemu-system-aarch64", "-machine", f"virt,dumpdtb={tmp_path / 'q.dtb'}",
                   "-cpu", "cortex-a57", "-m", "1G", "-smp", "2"]


def test_dump_argv_needs_a_machine(tmp_path: Path) -> None:
    with pytest.raises(DeviceTreeError, match="no -machine"):
        devicetree.dump_argv(["qemu-system-aarch64", "-m", "1G"], tmp_path / "q.dtb")


@pytest.mark.skipif(shutil.which("dtc") is None, reason="dtc (device-tree-compiler) not installed")
def test_synthesised_tree_compiles(tmp_path: Path) -> None:
    out = tmp_path / "board.dtb"
    devicetree.compile_dts(devicetree.synthesize(QEMU_DTS, GEN3), out)
    back = devicetree.decompile(out)
    assert "v4l2-unplug,vin-hw" in back and "no-map" in back
