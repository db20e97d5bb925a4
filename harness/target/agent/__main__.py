"""The agent: runs on the target, executes a job's tasks, reports events.

Started by the guest init (or over SSH on a board) as
`python -m harness.target.agent --job JOB.json`. A job is a list of tasks, each a
name from harness.target.agent.tasks and its arguments. Every task ends with a
`result` or an `error` event; the job ends with `done`. Imports are kept
light on purpose: the time to the `ready` event is part of every boot.
"""

from __future__ import annotations

import json
import sys

from harness.target.agent.channel import EventChannel


def main(argv: list[str] | None = None) -> int:
    # `ready` goes out before anything else is imported or parsed.
    channel = EventChannel.open()
    channel.emit("ready")

    import argparse
    import traceback

    parser = argparse.ArgumentParser(prog="harness.target.agent")
    parser.add_argument("--job", required=True, help="JSON file with {'tasks': [...]}")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with open(args.job) as f:
        job = json.load(f)

    from harness.target.agent.tasks import TASKS

    failures = 0
    for index, spec in enumerate(job.get("tasks", [])):
        name = spec.get("task")
        params = spec.get("args", {})
        channel.emit("task-start", index=index, task=name, args=params)
        task = TASKS.get(name)
        if task is None:
            channel.emit("error", index=index, task=name, message=f"unknown task {name!r}")
            failures += 1
            continue
        try:
            result = task(channel, **params)
        except Exception as e:  # report and go on: one task must not end the job
            failures += 1
            channel.emit(
                "error",
                index=index,
                task=name,
                message=f"{type(e).__name__}: {e}",
                traceback=traceback.format_exc(),
            )
        else:
            channel.emit("result", index=index, task=name, data=result)
    channel.emit("done", failures=failures)
    channel.close()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
