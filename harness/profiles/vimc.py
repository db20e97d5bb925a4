"""vimc: the virtual media controller driver (drivers/media/test-drivers/vimc)."""

from harness.profiles import DriverProfile

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
    # vimc-capture.c: io_modes = VB2_MMAP | VB2_DMABUF, no VB2_READ
    supports_read=False,
)
