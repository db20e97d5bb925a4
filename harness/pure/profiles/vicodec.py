"""vicodec: the virtual codec driver (drivers/media/test-drivers/vicodec), a
stateful FWHT encoder, a stateful decoder and a stateless decoder, each its
own memory-to-memory node in one media device. Debian's kernels lack it, and
6.1's lacks v4l2-mem2mem: both build out of tree against their headers.
"""

from harness.pure.profiles import DriverProfile, M2MNode, OutOfTreeModule
from harness.pure.scenarios.model import M2M_STAGES, Drain, Stage

# Up to mapped buffers: every memory-to-memory node gets that far.
PREPARED = M2M_STAGES[:M2M_STAGES.index(Stage.BUFFERS_MMAPPED) + 1]

VICODEC = DriverProfile(
    name="vicodec",
    modules=("v4l2-mem2mem", "vicodec"),
    bus="platform",
    driver="vicodec",
    # v4l2-mem2mem names each node's entities "<node>-source", "-proc", "-sink".
    entities=tuple(f"{node}-{part}"
                   for node in ("stateful-encoder", "stateful-decoder", "stateless-decoder")
                   for part in ("source", "proc", "sink")),
    # No link may be toggled (none at all, or the immutable ones v4l2-mem2mem
    # makes): no SETUP_LINK stage. No queue of its offers a read() that blocks.
    stages=tuple(s for s in Stage if s not in (Stage.BLOCKED_READ, Stage.IN_SETUP_LINK)),
    m2m_nodes=(
        # The encoder takes any bytes as a raw picture: it goes through every stage.
        M2MNode("stateful-encoder-source", stages=M2M_STAGES, drain=Drain.ENCODER),
        # The decoder runs no job until OUTPUT carries a FWHT header, which
        # bytes the harness makes up do not: its CAPTURE never fills.
        M2MNode("stateful-decoder-source",
                stages=(*PREPARED, Stage.OUTPUT_STREAMING, Stage.DRAINING),
                drain=Drain.DECODER),
        # The stateless decoder queues OUTPUT buffers only inside requests.
        M2MNode("stateless-decoder-source", stages=PREPARED),
    ),
    out_of_tree=(
        OutOfTreeModule("v4l2-mem2mem", "drivers/media/v4l2-core",
                        config="CONFIG_V4L2_MEM2MEM_DEV", only=("v4l2-mem2mem",)),
        OutOfTreeModule("vicodec", "drivers/media/test-drivers/vicodec",
                        config="CONFIG_VIDEO_VICODEC"),
    ),
)
