"""Streaming under TCG: frames per second per node, and what a frame costs the
harness in CPU time against `v4l2-ctl --stream-mmap` on the same node in the
same VM (ratio; target <= 1.5)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness.kernels.flavours import get_kernel
from harness.profiles.vimc import VIMC
from harness.targets.qemu import QemuTarget

FRAMES = 300


def main() -> None:
    flavour = (sys.argv[2:] or ["debian"])[0]
    tasks = [{"task": "stream", "args": {"memory": ["mmap"], "frames": 60}}]
    tasks += [{"task": "stream-cost", "args": {"capture": c, "frames": FRAMES}}
              for c in VIMC.capture_entities]
    with tempfile.TemporaryDirectory() as tmp:
        run = QemuTarget(get_kernel(flavour)).run(tasks, Path(tmp))
    for event in run.results():
        if event["event"] == "error":
            print(f"{event['task']}: {event['message']}")
            continue
        data = event["data"]
        if event["task"] == "stream":
            for r in data["results"]:
                print(f"{flavour} {r['node']:16} {r['memory']:7} {r['format']:24} "
                      f"{r['frames']:3} frames  {r['fps'] or 0:5.1f} fps  "
                      f"dropped {r['dropped_count']}")
        else:
            ours, theirs = data["harness"], data["v4l2_ctl"]
            if ours["frames"] < data["frames"] or ours["errors"]:
                print(f"{flavour} {data['capture']:16} harness streamed {ours['frames']}/"
                      f"{data['frames']} frames {ours['errors']}: no ratio")
                continue
            if theirs["status"] != 0 or theirs["frames"] < data["frames"]:
                print(f"{flavour} {data['capture']:16} v4l2-ctl exited {theirs['status']} after "
                      f"{theirs['frames']}/{data['frames']} frames: no ratio "
                      f"({theirs['stderr'].strip()[-120:]})")
                continue
            per_ours = ours["cpu"] / ours["frames"]
            per_theirs = theirs["cpu"] / theirs["frames"]
            print(f"{flavour} {data['capture']:16} CPU per frame: harness {per_ours * 1e3:.2f} ms,"
                  f" v4l2-ctl {per_theirs * 1e3:.2f} ms, ratio {per_ours / per_theirs:.2f} "
                  f"(target <= 1.5; {data['frames']} frames each)")


if __name__ == "__main__":
    main()
