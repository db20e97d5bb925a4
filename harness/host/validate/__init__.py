"""Patch validation (baseline against patched kernels) and bisection, host side.

validation.py builds both kernels from one tree (harness.host.kernels.tree),
runs the same scenarios on each, and writes the comparison
(harness.host.report.compare) as JSON, JUnit XML, KTAP and HTML. bisect.py
drives `git bisect run`, with the harness (step.py) or any command as the
test.
"""
