"""vivid: the virtual video test driver (drivers/media/test-drivers/vivid).

One instance with one node of every kind it makes but the framebuffer (which
needs CONFIG_FB): video, VBI and metadata capture and output, SDR capture,
touch, and a radio receiver and transmitter. Every node but the radios has
an entity in its one media device, none linked: nothing to configure, and
each streams on its own. Debian's amd64 kernels ship vivid as a module.
"""

from harness.pure.profiles import CapturePath, DriverProfile, OutOfTreeModule, QueueNode
from harness.pure.scenarios.model import Queue, Stage

# vivid-core.c names each node "vivid-<instance>-<kind>".
VIVID = DriverProfile(
    name="vivid",
    modules=("vivid",),
    bus="platform",
    driver="vivid",
    entities=("vivid-000-vid-cap", "vivid-000-vid-out", "vivid-000-vbi-cap",
              "vivid-000-vbi-out", "vivid-000-sdr-cap", "vivid-000-meta-cap",
              "vivid-000-meta-out", "vivid-000-touch-cap"),
    # No link may be toggled (none at all, or the immutable ones v4l2-mem2mem
    # makes): no SETUP_LINK stage. No queue of its offers a read() that blocks.
    stages=tuple(s for s in Stage if s not in (Stage.BLOCKED_READ, Stage.IN_SETUP_LINK)),
    capture_entities=("vivid-000-vid-cap",),
    # The webcam input: a capture node with no pipeline. Its smallest size
    # keeps the test pattern generator (software, under TCG) near its frame rate.
    capture_paths=(CapturePath("vivid-000-vid-cap", fourcc="YUYV"),),
    default_size=(320, 180),
    other_sizes=((640, 360),),
    queue_nodes=(
        QueueNode("vivid-000-vid-out", Queue.VIDEO_OUTPUT),
        # VBI capture works only while the S-Video input is the current one.
        QueueNode("vivid-000-vbi-cap", Queue.VBI_CAPTURE, input=1),
        QueueNode("vivid-000-vbi-out", Queue.VBI_OUTPUT),
        QueueNode("vivid-000-sdr-cap", Queue.SDR_CAPTURE),
        QueueNode("vivid-000-meta-cap", Queue.META_CAPTURE),
        QueueNode("vivid-000-meta-out", Queue.META_OUTPUT),
        QueueNode("vivid-000-touch-cap", Queue.TOUCH_CAPTURE),
        # Radios have an interface in the media graph but no entity.
        QueueNode("vivid-000-rad-rx", Queue.NONE),
        QueueNode("vivid-000-rad-tx", Queue.NONE),
    ),
    # node_types (vivid-core.c): 0x1 video capture, 0x4 raw VBI capture, 0x10
    # radio rx, 0x20 SDR, 0x100 video output, 0x400 raw VBI output, 0x1000
    # radio tx, 0x20000 metadata capture, 0x40000 metadata output, 0x80000
    # touch; not 0x10000, the framebuffer. VBI capture needs a TV or S-Video
    # input and VBI output an S-Video output: input 0 is a webcam, input 1
    # S-Video (input_types 2 bits each), output 0 S-Video.
    # The debug kernels lack vivid; up to 6.12 it needs CONFIG_FB (its OSD is
    # always built), which they lack too, so there it does not build. From
    # 6.13 on the OSD is optional and vivid builds against them, given the
    # instance limit its Kconfig would define (64, its default).
    out_of_tree=(OutOfTreeModule("vivid", "drivers/media/test-drivers/vivid",
                                 config="CONFIG_VIDEO_VIVID",
                                 defines=("CONFIG_VIDEO_VIVID_MAX_DEVS=64",)),),
    module_options=("n_devs=1", "node_types=0xe1535", "num_inputs=2", "input_types=0x8",
                    "num_outputs=1", "output_types=0x0"),
)
