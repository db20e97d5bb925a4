"""Boot parameters from a kernel's configuration, and where that configuration is found."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.host.kernels.kconfig import config_file, kernel_config
from harness.host.kernels.kernel import Kernel
from harness.pure.bootparams import BOOT_RULES, BootRule, boot_params, parse_config


def test_parse_config_reads_values_and_unset_options():
    text = "CONFIG_ACPI=y\n# CONFIG_KASAN is not set\nCONFIG_NR_CPUS=8\nCONFIG_VIDEO_VIMC=m\n"
    assert parse_config(text) == {"CONFIG_ACPI": "y", "CONFIG_KASAN": "n",
                                  "CONFIG_NR_CPUS": "8", "CONFIG_VIDEO_VIMC": "m"}


def test_acpi_kernels_on_x86_route_interrupts_without_acpi():
    assert boot_params({"CONFIG_ACPI": "y"}, "x86_64") == ("acpi=noirq",)
    assert boot_params({"CONFIG_ACPI": "n"}, "x86_64") == ()
    assert boot_params({}, "x86_64") == ()
    # arm64's virt board describes its interrupts in the device tree.
    assert boot_params({"CONFIG_ACPI": "y"}, "aarch64") == ()


def test_rules_combine_in_table_order_without_repeats():
    rules = (
        BootRule(("a=1",), when=("CONFIG_A",), why=""),
        BootRule(("b=1", "a=1"), when=("CONFIG_B",), unless=("CONFIG_C",), why=""),
    )
    assert boot_params({"CONFIG_A": "y", "CONFIG_B": "m"}, "x86_64", rules) == ("a=1", "b=1")
    assert boot_params({"CONFIG_B": "y", "CONFIG_C": "y"}, "x86_64", rules) == ()


def test_every_rule_says_why():
    assert all(rule.why and rule.params and rule.when for rule in BOOT_RULES)


def _kernel(tmp_path: Path, image: Path, **kw) -> Kernel:
    root = tmp_path / "root"
    (root / "lib/modules/7.2.0").mkdir(parents=True, exist_ok=True)
    return Kernel(flavour="path", release="7.2.0", image=image, modules_root=root, **kw)


@pytest.mark.parametrize("where", [
    "root/lib/modules/7.2.0/config",      # Debian sid
    "root/boot/config-7.2.0",             # Debian bookworm, trixie
    "root/config",                        # a tree the harness built
    "build/.config",                      # the kbuild tree
    "o/.config",                          # <O>/arch/x86/boot/bzImage
    "o/arch/x86/boot/config-7.2.0",       # beside an installed image
])
def test_config_is_found_where_each_kind_of_kernel_keeps_it(tmp_path, where):
    image = tmp_path / "o/arch/x86/boot/bzImage"
    image.parent.mkdir(parents=True)
    kbuild = tmp_path / "build"
    kbuild.mkdir()
    kernel = _kernel(tmp_path, image, kbuild=kbuild)
    assert config_file(kernel) is None
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / where).write_text("CONFIG_ACPI=y\n")
    assert config_file(kernel) == tmp_path / where
    assert kernel_config(kernel) == {"CONFIG_ACPI": "y"}


def test_modules_install_build_link_leads_to_the_config(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".config").write_text("# CONFIG_ACPI is not set\n")
    kernel = _kernel(tmp_path, tmp_path / "bzImage")
    (kernel.module_dir / "build").symlink_to(out)
    assert kernel_config(kernel) == {"CONFIG_ACPI": "n"}
