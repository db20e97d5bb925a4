"""Streaming under TCG: frames per second per node, and what a frame costs the
harness in CPU time against `v4l2-ctl --stream-mmap` on the same node in the
same VM (ratio; target <= 1.5). The two take turns for three rounds and the
medians are compared: guest CPU time under TCG moves by a fifth from one run
to the next, so one pair alone says little."""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from harness.host.targets.emulated import provision
from harness.pure.profiles.vimc import VIMC

FRAMES = 300


def cost_line(flavour: str, data: dict) -> str:
    """Median CPU per frame of each side over the rounds, and their ratio."""
    head = f"{flavour} {data['capture']:16}"
    frames = data["frames"]
    for ours in data["harness"]:
        if ours["frames"] < frames or ours["errors"]:
            return (f"{head} harness streamed {ours['frames']}/{frames} frames "
                    f"{ours['errors']}: no ratio")
    for theirs in data["v4l2_ctl"]:
        if theirs["status"] != 0 or theirs["frames"] < frames:
            return (f"{head} v4l2-ctl exited {theirs['status']} after {theirs['frames']}/{frames}"
                    f" frames: no ratio ({theirs['stderr'].strip()[-120:]})")
    per_ours = [r["cpu"] / frames * 1e3 for r in data["harness"]]
    per_theirs = [r["cpu"] / frames * 1e3 for r in data["v4l2_ctl"]]
    ours, theirs = statistics.median(per_ours), statistics.median(per_theirs)
    return (f"{head} CPU per frame: harness {ours:.2f} ms"
            f" ({min(per_ours):.2f}-{max(per_ours):.2f}), v4l2-ctl {theirs:.2f} ms"
            f" ({min(per_theirs):.2f}-{max(per_theirs):.2f}),"
            f" ratio {ours / theirs:.2f} (target <= 1.5; median of {len(per_ours)} rounds"
            f" of {frames} frames each, taking turns)")


def main() -> None:
    flavour = (sys.argv[2:] or ["debian"])[0]
    tasks = [{"task": "stream", "args": {"memory": ["mmap"], "frames": 60}}]
    tasks += [{"task": "stream-cost", "args": {"capture": c, "frames": FRAMES}}
              for c in VIMC.capture_entities]
    with tempfile.TemporaryDirectory() as tmp:
        run = provision(flavour, VIMC)[0].run(tasks, Path(tmp))
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
            print(cost_line(flavour, data))

if __name__ == "__main__":
    main()
