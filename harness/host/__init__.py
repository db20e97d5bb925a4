"""Runs on the host: kernels, QEMU and board targets, reports, the command line.

Nothing here is imported by the agent; nothing here needs a media device.
"""
