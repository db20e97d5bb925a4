"""vimc: the virtual media controller driver (drivers/media/test-drivers/vimc)."""

from harness.pure.profiles import (
    CapturePath,
    DelayPoint,
    DriverProfile,
    LinkSetting,
    OutOfTreeModule,
    PadSetting,
)

VIMC = DriverProfile(
    name="vimc",
    modules=("vimc",),
    bus="platform",
    driver="vimc",
    # vimc-core.c's default topology (ent_config[]); Lens A/B exist from 6.0 on.
    entities=(
        "Sensor A", "Sensor B", "Debayer A", "Debayer B", "Raw Capture 0", "Raw Capture 1",
        "RGB/YUV Input", "Scaler", "RGB/YUV Capture", "Lens A", "Lens B",
    ),
    capture_entities=("Raw Capture 0", "Raw Capture 1", "RGB/YUV Capture"),
    subdev_entities=("Sensor A", "Debayer A", "Scaler", "Lens A"),
    # vimc-capture.c: io_modes = VB2_MMAP | VB2_DMABUF (| VB2_USERPTR with the
    # default vmalloc allocator), no VB2_READ: the default stages, without read().
    # At STREAMON the media core validates every enabled link of everything
    # connected to the node, so each path also names the links that keep
    # other branches out of its pipeline. The debayers take Bayer codes only;
    # the scaler (6.1) scales its sink size to any source size.
    capture_paths=(
        CapturePath(
            "Raw Capture 0",
            links=(LinkSetting("Debayer A", 1, "Scaler", 0, enabled=False),),
            pads=(PadSetting("Sensor A", 0, "SGRBG8_1X8"),),
        ),
        CapturePath(
            "Raw Capture 1",
            links=(LinkSetting("Debayer B", 1, "Scaler", 0, enabled=False),),
            pads=(PadSetting("Sensor B", 0, "SBGGR8_1X8"),),
        ),
        CapturePath(
            "RGB/YUV Capture",
            links=(
                LinkSetting("Debayer B", 1, "Scaler", 0, enabled=False),
                LinkSetting("RGB/YUV Input", 0, "Scaler", 0, enabled=False),
                LinkSetting("Debayer A", 1, "Scaler", 0, enabled=True),
            ),
            pads=(
                PadSetting("Sensor A", 0, "SGRBG8_1X8"),
                PadSetting("Debayer A", 1, "RGB888_1X24"),
                PadSetting("Scaler", 1, "RGB888_1X24", scales=True),
            ),
        ),
    ),
    # vimc-common.c's vimc_pix_map_list
    pixelformats=(
        ("BGR888_1X24", "BGR3"), ("BGR888_3X8", "BGR3"),
        ("RGB888_1X24", "RGB3"), ("RGB888_2X12_BE", "RGB3"), ("RGB888_2X12_LE", "RGB3"),
        ("RGB888_3X8", "RGB3"), ("RGB888_1X7X4_SPWG", "RGB3"), ("RGB888_1X7X4_JEIDA", "RGB3"),
        ("RGB888_1X32_PADHI", "RGB3"), ("GBR888_1X24", "RGB3"),
        ("ARGB8888_1X32", "BA24"),
        ("SBGGR8_1X8", "BA81"), ("SGBRG8_1X8", "GBRG"), ("SGRBG8_1X8", "GRBG"),
        ("SRGGB8_1X8", "RGGB"),
        ("SBGGR10_1X10", "BG10"), ("SGBRG10_1X10", "GB10"), ("SGRBG10_1X10", "BA10"),
        ("SRGGB10_1X10", "RG10"),
        ("SBGGR10_ALAW8_1X8", "aBA8"), ("SGBRG10_ALAW8_1X8", "aGA8"),
        ("SGRBG10_ALAW8_1X8", "agA8"), ("SRGGB10_ALAW8_1X8", "aRA8"),
        ("SBGGR10_DPCM8_1X8", "bBA8"), ("SGBRG10_DPCM8_1X8", "bGA8"),
        ("SGRBG10_DPCM8_1X8", "BD10"), ("SRGGB10_DPCM8_1X8", "bRA8"),
        ("SBGGR12_1X12", "BG12"), ("SGBRG12_1X12", "GB12"), ("SGRBG12_1X12", "BA12"),
        ("SRGGB12_1X12", "RG12"),
    ),
    default_size=(640, 480),
    other_sizes=((320, 240),),
    # Debian's amd64 kernel is built without CONFIG_VIDEO_VIMC but has what vimc
    # needs as modules, so vimc builds from the matching linux-source; the debug
    # kernel builds vimc=m itself and gets it rebuilt only with --patch.
    out_of_tree=(
        OutOfTreeModule("vimc", "drivers/media/test-drivers/vimc", config="CONFIG_VIDEO_VIMC"),
    ),
    # The NULL dereferences the races find: __media_ioctl() checks the node is
    # registered, then media_device_get_info() reads dev->dev->driver->name,
    # which the unbind clears in between; v4l2_open() checks the subdev node,
    # then subdev_open() reads mdev->dev->driver->owner. A delay at the entry
    # holds the user side inside that window while the unbind runs.
    # media_device_unregister_entity(): v4l2_device_release() on the last
    # close unregisters entities of a media device the unbind is tearing down.
    # The media core, V4L2, videobuf2 and the driver: data races elsewhere
    # (core mm, the scheduler) are not this profile's.
    kcsan_scope=("media_", "__media_", "v4l2_", "__v4l2_", "video_", "__video_", "vb2_",
                 "__vb2_", "subdev_", "vimc_"),
    delays=(
        DelayPoint("media_device_get_info",
                   "after __media_ioctl()'s registered check, before dev->dev->driver->name"),
        DelayPoint("subdev_open",
                   "after v4l2_open()'s registered check, before mdev->dev->driver->owner"),
        DelayPoint("media_device_unregister_entity",
                   "a last close's entity removal against the unbind's media_device_cleanup()"),
    ),
)
