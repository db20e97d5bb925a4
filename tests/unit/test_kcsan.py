"""The kcsan flavours' configuration: the debug fragment with KASAN traded for
strict KCSAN, as data (harness.host.kernels.debug.KCSAN)."""

from __future__ import annotations

from harness.host.kernels.debug import FRAGMENT, KCSAN, layered
from harness.host.kernels.flavours import FLAVOURS
from harness.host.kernels.tree import fragment_options


def test_kcsan_trades_kasan_for_strict_kcsan_and_keeps_the_rest() -> None:
    debug = fragment_options(layered((6, 1)))
    kcsan = fragment_options(KCSAN.apply(layered((6, 1))))
    assert debug["CONFIG_KASAN"] == "y" and "CONFIG_KCSAN" not in debug
    assert not any(k.startswith("CONFIG_KASAN") for k in kcsan)
    assert kcsan["CONFIG_KCSAN"] == "y" and kcsan["CONFIG_KCSAN_STRICT"] == "y"
    assert kcsan["CONFIG_KCSAN_SKIP_WATCH"] == "100"
    kept = {k: v for k, v in debug.items() if not k.startswith("CONFIG_KASAN")}
    assert {k: kcsan[k] for k in kept} == kept  # lockdep, KPROBES, vimc=m, ... stay
    assert "CONFIG_KPROBES" in kept


def test_a_newer_kernel_gets_the_layers_too() -> None:
    assert "CONFIG_SLUB_TINY" in KCSAN.apply(layered((7, 2)))
    assert FRAGMENT.read_text() in layered((6, 1))


def test_kcsan_flavours_exist_for_x86_guests_only() -> None:
    assert {"kcsan", "kcsan-trixie", "kcsan-sid"} <= set(FLAVOURS)
    assert not any(name.startswith("kcsan") and name.endswith("arm64") for name in FLAVOURS)
