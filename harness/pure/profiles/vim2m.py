"""vim2m: the virtual memory-to-memory driver (drivers/media/test-drivers/vim2m.c).

One video node with both queues: user space queues pictures on OUTPUT, the
driver scales and converts them onto CAPTURE. Its media device holds the
entities v4l2-mem2mem makes for it ("vim2m-source", "-proc", "-sink"), the
node's interface linked to source and sink. Debian's kernels lack it: it
builds out of tree against their headers, and so does v4l2-mem2mem, which
Debian's 6.1 amd64 kernel does not build either.
"""

from harness.pure.profiles import DriverProfile, M2MNode, OutOfTreeModule
from harness.pure.scenarios.model import Stage

VIM2M = DriverProfile(
    name="vim2m",
    bus="platform",
    driver="vim2m",
    # No link may be toggled (none at all, or the immutable ones v4l2-mem2mem
    # makes): no SETUP_LINK stage. No queue of its offers a read() that blocks.
    stages=tuple(s for s in Stage if s not in (Stage.BLOCKED_READ, Stage.IN_SETUP_LINK)),
    entities=("vim2m-source", "vim2m-proc", "vim2m-sink"),
    # It takes any bytes as a picture, so jobs run on whatever is queued;
    # it has no encoder or decoder command, so nothing to drain.
    m2m_nodes=(M2MNode("vim2m-source"),),
    modules=("v4l2-mem2mem", "vim2m"),
    out_of_tree=(
        OutOfTreeModule("v4l2-mem2mem", "drivers/media/v4l2-core",
                        config="CONFIG_V4L2_MEM2MEM_DEV", only=("v4l2-mem2mem",)),
        OutOfTreeModule("vim2m", "drivers/media/test-drivers", config="CONFIG_VIDEO_VIM2M",
                        only=("vim2m",)),
    ),
)
