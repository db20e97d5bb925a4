"""rcar-vin: the R-Car Video Input driver (drivers/media/platform/renesas/rcar-vin),
Gen3 media-controller mode, as emulated by vm/rcar/gen3.dtsi.

The group has two VINs, VIN0 and VIN4 (the masters of r8a7795's two
channel-select sub-groups), and two CSI-2 receivers played by
unplug-test-subdev.ko (entity "unplug <DT node name>"). rcar-vin links every
receiver source pad 1-4 to every VIN it may route to; a capture path enables
one of them with MEDIA_IOC_SETUP_LINK.
"""

from harness.pure.profiles import (
    CapturePath,
    DriverProfile,
    Emulation,
    LinkSetting,
    OutOfTreeModule,
    PadSetting,
    UnbindTarget,
)
from harness.pure.scenarios.model import Disruption

RCAR_VIN = DriverProfile(
    name="rcar-vin",
    # The stand-ins first: rcar-vin's group completes when its receivers are bound.
    modules=("unplug-test-subdev", "unplug-vin-hw", "rcar-vin"),
    bus="platform",
    driver="rcar-vin",
    entities=("VIN0 output", "VIN4 output", "unplug csi20", "unplug csi40"),
    capture_entities=("VIN0 output", "VIN4 output"),
    subdev_entities=("unplug csi40", "unplug csi20"),
    # rcar-dma.c offers VB2_READ, but frames flow in emulation: read() returns
    # data rather than blocking, so "blocked in read" is not a stage here (the
    # default stages leave it out).
    # r8a7795 routes: VIN0 (sub-group 0) takes CSI40 with chsel 3, VIN4
    # (sub-group 4) CSI20 with chsel 4; channel 0 is receiver pad 1.
    capture_paths=(
        CapturePath(
            "VIN0 output",
            links=(LinkSetting("unplug csi40", 1, "VIN0 output", 0, enabled=True),),
            pads=(PadSetting("unplug csi40", 1, "UYVY8_1X16"),),
        ),
        CapturePath(
            "VIN4 output",
            links=(LinkSetting("unplug csi20", 1, "VIN4 output", 0, enabled=True),),
            pads=(PadSetting("unplug csi20", 1, "UYVY8_1X16"),),
        ),
    ),
    # rcar-v4l2.c: a YUV input is captured bypassing the colour conversion.
    pixelformats=(("UYVY8_1X16", "UYVY"), ("YUYV8_1X16", "YUYV")),
    default_size=(640, 480),
    other_sizes=((320, 240),),
    # One VIN at a time (the other keeps its pipeline), and one receiver at a
    # time: the one feeding VIN0 and the one feeding only VIN4.
    unbind_targets=(
        UnbindTarget("vin0", "VIN0 output"),
        UnbindTarget("vin4", "VIN4 output"),
        UnbindTarget("csi40", "unplug csi40"),
        UnbindTarget("csi20", "unplug csi20"),
    ),
    emulation=Emulation(arch="aarch64", device_tree="vm/rcar/gen3.dtsi"),
    out_of_tree=(
        # Debian's arm64 kernel does not build rcar-vin. Stock rcar-vin
        # suppresses sysfs bind/unbind; the emulation build allows it.
        OutOfTreeModule("rcar-vin", "drivers/media/platform/renesas/rcar-vin",
                        config="CONFIG_VIDEO_RCAR_VIN",
                        patches=("vm/patches/rcar-vin-allow-unbind.patch",)),
        OutOfTreeModule("unplug-test-subdev", "vm/rcar",
                        objects=("unplug-test-subdev", "unplug-vin-hw"), project=True),
    ),
)


# A real Salvator-X class board (R-Car H3/M3-W Salvator-X(S), Linux 6.1 DTs):
# an ADV7482 on I2C bus 4 at 0x70 (adv748x) feeds HDMI through its TXA to
# CSI40 and CVBS through its TXB to CSI20; the VINs of the group route them.
# Entity names are the drivers' own: adv748x "<driver> <bus>-<addr> <ident>",
# rcar-csi2 "rcar_csi2 <dev_name>", rcar-vin "VIN<n> output". Nothing here
# is emulated: the modules are the board kernel's.
ADV7482 = "adv748x 4-0070"
CSI40 = "rcar_csi2 feaa0000.csi2"
CSI20 = "rcar_csi2 fea80000.csi2"

RCAR_VIN_SALVATOR_X = DriverProfile(
    name="rcar-vin-salvator-x",
    modules=("adv748x", "rcar-csi2", "rcar-vin"),
    bus="platform",
    driver="rcar-vin",
    entities=("VIN0 output", "VIN4 output", CSI40, CSI20, f"{ADV7482} hdmi",
              f"{ADV7482} afe", f"{ADV7482} txa", f"{ADV7482} txb"),
    capture_entities=("VIN0 output", "VIN4 output"),
    subdev_entities=(CSI40, CSI20, f"{ADV7482} txa"),
    capture_paths=(
        # HDMI in: hdmi:1 -> txa:0 -> CSI40 channel 0 (source pad 1) -> VIN0,
        # RGB888 all the way (adv748x-hdmi.c); the size is the incoming
        # signal's, which the adv748x reports and does not let user space set.
        CapturePath(
            "VIN0 output",
            links=(LinkSetting(f"{ADV7482} hdmi", 1, f"{ADV7482} txa", 0, enabled=True),
                   LinkSetting(CSI40, 1, "VIN0 output", 0, enabled=True)),
            pads=(PadSetting(f"{ADV7482} txa", 1, "RGB888_1X24"),
                  PadSetting(CSI40, 1, "RGB888_1X24")),
        ),
        # CVBS in: afe:8 -> txb:0 -> CSI20 channel 0 -> VIN4, UYVY8_2X8 (adv748x-afe.c).
        CapturePath(
            "VIN4 output",
            links=(LinkSetting(f"{ADV7482} afe", 8, f"{ADV7482} txb", 0, enabled=True),
                   LinkSetting(CSI20, 1, "VIN4 output", 0, enabled=True)),
            pads=(PadSetting(f"{ADV7482} txb", 1, "UYVY8_2X8"),
                  PadSetting(CSI20, 1, "UYVY8_2X8")),
        ),
    ),
    # rcar-v4l2.c: RGB888 input is converted to XBGR32 ('XR24'), YUV is captured as is.
    pixelformats=(("RGB888_1X24", "XR24"), ("UYVY8_2X8", "UYVY")),
    default_size=(1280, 720),
    other_sizes=((720, 480),),
    # Stock rcar-vin suppresses its own sysfs unbind (suppress_bind_attrs):
    # on a board the driver's devices go with rmmod, and one receiver or the
    # ADV7482 (I2C) is unbound on its own.
    unbind_targets=(
        UnbindTarget("csi40", CSI40),
        UnbindTarget("csi20", CSI20),
        UnbindTarget("adv7482", f"{ADV7482} txa"),
    ),
    disruptions=(Disruption.RMMOD,),
)
