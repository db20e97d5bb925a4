"""Runs on the target (a QEMU guest or a board): the agent, the device layer, the
ioctl bindings and scenario execution.

Imports only itself and harness.pure; the board bundle is its import closure.
"""
