"""Driver profiles: everything the harness knows about a driver, as data.

Code asks a profile which module to load, which bus and device to unbind,
which entities to expect and which modules a kernel needs built for it; it
never branches on the driver's name.

Adding a driver is one new module in this package holding a DriverProfile
value: `profiles()` finds every such value in the package's modules, so no
list names them.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from harness.pure.delays import DelayPoint
from harness.pure.errors import HarnessError
from harness.pure.scenarios.model import M2M_STAGES, Disruption, Drain, Queue, Stage

# The profile every command, task and test uses when none is named.
DEFAULT_DRIVER = "vimc"


@dataclass(frozen=True)
class LinkSetting:
    """A data link and the state a capture path needs it in (media-ctl -l)."""

    source: str
    source_pad: int
    sink: str
    sink_pad: int
    enabled: bool = True

    def describe(self) -> str:
        return (f'"{self.source}":{self.source_pad} -> "{self.sink}":{self.sink_pad} '
                f"[{int(self.enabled)}]")


@dataclass(frozen=True)
class PadSetting:
    """The media bus code a pad must carry (media-ctl -V, without the size).

    Sizes are not data: they follow from the size asked for. A pad that
    `scales` takes the size asked for while its entity's sink pad keeps
    the size arriving from upstream (a scaler's source pad).
    """

    entity: str
    pad: int
    code: str  # as media-ctl names it: "SGRBG8_1X8"
    scales: bool = False


@dataclass(frozen=True)
class CapturePath:
    """How one capture node is made to stream: the links to set and the codes its
    pipeline carries. Pads not named here follow what arrives from upstream."""

    capture: str
    links: tuple[LinkSetting, ...] = ()
    pads: tuple[PadSetting, ...] = ()
    # A node no pipeline feeds (vivid's): the pixel format it is set to, at the
    # size asked for. "" for a node whose format follows its pipeline.
    fourcc: str = ""


@dataclass(frozen=True)
class UnbindTarget:
    """A device scenarios unbind on its own, besides the driver's devices: the
    device that provides `entity` (a VIN, the subdev on the far end of a link).
    Which device that is, and its bus and driver, is read from sysfs on the
    target, so neither addresses nor device names are data."""

    name: str  # in scenario names: "...--unbind.csi20"
    entity: str


@dataclass(frozen=True)
class OutOfTreeModule:
    """A module directory built out of tree against a guest kernel's build tree:
    `subdir` of the kernel's own source (`project=False`) or of this project
    (`project=True`, e.g. test-only stand-ins for hardware), with `patches`
    (paths in this project) applied. A user's --patch goes to the kernel-source
    modules whose directory it changes."""

    name: str  # the directory's module, or the first of `objects`
    subdir: str  # e.g. "drivers/media/test-drivers/vimc"
    config: str = ""  # Kconfig symbol set to m on the make command line; "" when none
    objects: tuple[str, ...] = ()  # every .ko the directory builds, when more than one
    project: bool = False
    patches: tuple[str, ...] = ()
    # Values of Kconfig symbols the sources read as C macros ("CONFIG_X_MAX=64"):
    # a kernel without the driver's Kconfig has none of its options defined.
    defines: tuple[str, ...] = ()
    # Objects to build instead of what the directory's Makefile builds (its
    # Makefile builds every driver the kernel's configuration enables there,
    # some of which need headers a distro's build tree lacks).
    only: tuple[str, ...] = ()

    @property
    def modules(self) -> tuple[str, ...]:
        """Every module the directory builds."""
        return self.objects or (self.name,)


@dataclass(frozen=True)
class Emulation:
    """What it takes to run the driver without its hardware: the guest architecture
    and a device-tree fragment (a file in this project) merged into the emulated
    machine's own tree."""

    arch: str
    device_tree: str


@dataclass(frozen=True)
class QueueNode:
    """A video-class node that streams without a pipeline to set up (vivid's
    output, VBI, SDR, metadata and touch nodes) or does not stream (a radio),
    and the queue it has. `name` is its entity or, for a node the media graph
    has no entity of (a radio), the name it carries in sysfs."""

    name: str
    queue: Queue
    # The input its device is switched to before the node goes past open, when
    # the node works only with one (vivid's VBI capture needs an S-Video input).
    input: int | None = None


@dataclass(frozen=True)
class M2MNode:
    """A memory-to-memory node (vim2m, vicodec's codecs), named by an entity of
    its device ("vim2m-source"), the stages it is held at, and the command that
    drains it (DRAINING needs one)."""

    name: str
    stages: tuple[Stage, ...] = tuple(s for s in M2M_STAGES if s is not Stage.DRAINING)
    drain: Drain = Drain.NONE


@dataclass(frozen=True)
class DriverProfile:
    name: str
    # Modules to load, in order, and the one whose removal tears the driver down.
    modules: tuple[str, ...]
    # sysfs: /sys/bus/<bus>/drivers/<driver>/<device> is what unbind writes.
    bus: str
    driver: str
    # Entities a healthy graph has (a check, and the names the scenarios use).
    entities: tuple[str, ...] = ()
    # Capture entities, the first being the one scenarios stream from, and the
    # subdevs whose nodes scenarios hold (the first one through every stage).
    capture_entities: tuple[str, ...] = ()
    subdev_entities: tuple[str, ...] = ()
    # Pipeline configuration, planned and applied by harness.target.device.pipeline.
    capture_paths: tuple[CapturePath, ...] = ()
    # Media bus code reaching a capture node -> the pixel format (fourcc) it is set to.
    pixelformats: tuple[tuple[str, str], ...] = ()
    # The frame size the driver starts with, and others its pipelines are tested at.
    default_size: tuple[int, int] = (640, 480)
    other_sizes: tuple[tuple[int, int], ...] = ()
    # Devices scenarios unbind one at a time (the default is every device of `driver`).
    unbind_targets: tuple[UnbindTarget, ...] = ()
    # How to run the driver in an emulator, when it needs more than a stock kernel.
    emulation: Emulation | None = None
    # Modules a QEMU guest's kernel gets built out of tree, in order: each one the
    # kernel lacks, has patches of its own, or that a user's --patch changes.
    # A board runs its own kernel and never builds them.
    out_of_tree: tuple[OutOfTreeModule, ...] = ()
    # -- the driver's shape, as the scenario matrix reads it (harness.pure.scenarios.matrix)
    # Stages a held node may be brought to. Only drivers whose queues offer
    # VB2_READ can block in read(), so the default leaves that stage out.
    stages: tuple[Stage, ...] = tuple(s for s in Stage if s is not Stage.BLOCKED_READ)
    # How the driver's own devices can be taken away. A driver with
    # suppress_bind_attrs (stock rcar-vin) has no sysfs unbind: it goes only
    # with its module.
    disruptions: tuple[Disruption, ...] = tuple(Disruption)
    # Memory-to-memory video nodes (vim2m, vicodec): one fd feeds and drains
    # them, so they have no capture path; each goes through its own stages.
    m2m_nodes: tuple[M2MNode, ...] = ()
    # One entity of each media device, when the driver registers more than
    # one: a media hold names its device by it. Empty: one media device.
    media_entities: tuple[str, ...] = ()
    # Nodes held through every stage of their queue, the first of each queue
    # through all of them, as capture nodes are (harness.pure.scenarios.matrix).
    queue_nodes: tuple[QueueNode, ...] = ()
    # Parameters the driver's module is loaded with ("n_devs=1"): what instance
    # it makes, every time it is loaded (a reload after rmmod included).
    module_options: tuple[str, ...] = ()
    # Where `run --race --amplify` delays the kernel (harness.pure.delays): the
    # functions between a check user space's call made and the use that follows.
    delays: tuple[DelayPoint, ...] = ()
    # Function-name prefixes of the code under test: a KCSAN report counts in a
    # race only with a frame among them (harness.pure.kmsg.scope). Empty: all count.
    kcsan_scope: tuple[str, ...] = ()

    @property
    def held_entities(self) -> tuple[str, ...]:
        """Every entity whose node scenarios hold."""
        return (*self.capture_entities, *(n.name for n in self.queue_nodes),
                *self.m2m_entities, *self.subdev_entities)

    @property
    def m2m_entities(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.m2m_nodes)

    @property
    def streamed_entities(self) -> tuple[str, ...]:
        """Nodes `stream` takes frames from: capture nodes, and memory-to-memory
        nodes that turn any bytes into frames (those that reach BOTH_STREAMING)."""
        return (*self.capture_entities,
                *(n.name for n in self.m2m_nodes if Stage.BOTH_STREAMING in n.stages))

    def m2m_node(self, entity: str) -> M2MNode | None:
        return next((n for n in self.m2m_nodes if n.name == entity), None)

    def queue(self, entity: str) -> Queue:
        """The queue of a held video-class node (a capture path's: video capture)."""
        for node in self.queue_nodes:
            if node.name == entity:
                return node.queue
        return Queue.VIDEO_CAPTURE

    def modprobe_args(self, module: str) -> tuple[str, ...]:
        """modprobe's arguments that load `module` as the profile wants it."""
        return (module, *(self.module_options if module == self.driver_module else ()))

    @property
    def driver_module(self) -> str:
        """The module whose removal tears the driver down."""
        return self.modules[-1]

    def unbind_target(self, name: str) -> UnbindTarget:
        for target in self.unbind_targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.unbind_targets) or "none"
        raise HarnessError(f"profile {self.name} has no unbind target {name!r} "
                           f"(targets: {known})")

    def capture_path(self, capture: str) -> CapturePath:
        for path in self.capture_paths:
            if path.capture == capture:
                return path
        known = ", ".join(p.capture for p in self.capture_paths) or "none"
        raise HarnessError(
            f"profile {self.name} does not say how to stream {capture!r} "
            f"(capture paths: {known})"
        )

    @property
    def driver_dir(self) -> Path:
        return Path("/sys/bus") / self.bus / "drivers" / self.driver

    def bound_devices(self) -> list[str]:
        """Names of the devices bound to the driver (e.g. vimc.0)."""
        if not self.driver_dir.is_dir():
            return []
        return sorted(p.name for p in self.driver_dir.iterdir() if (p / "driver").exists())

    def media_devices(self) -> list[str]:
        """/dev/mediaN of every media device whose parent is bound to this driver."""
        found = []
        for mdev in sorted(Path("/sys/bus/media/devices").glob("media*")):
            # A media devnode sits directly under its parent device in sysfs
            # and has no "device" link of its own.
            try:
                driver = (mdev.resolve().parent / "driver").resolve().name
            except OSError:
                continue
            if driver == self.driver:
                found.append(f"/dev/{mdev.name}")
        return found


@functools.cache
def profiles() -> dict[str, DriverProfile]:
    """Every DriverProfile value at the top level of a module of this package, by name."""
    found: dict[str, DriverProfile] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if not isinstance(value, DriverProfile) or found.get(value.name) is value:
                continue
            if value.name in found:
                raise HarnessError(f"two driver profiles are named {value.name!r} "
                                   f"(one in {module.__name__})")
            found[value.name] = value
    return found


def get_profile(name: str) -> DriverProfile:
    known = profiles()
    try:
        return known[name]
    except KeyError:
        raise HarnessError(
            f"unknown driver profile {name!r}: choose one of {', '.join(known)}"
        ) from None
