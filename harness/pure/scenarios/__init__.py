"""Unplug scenarios: what is held, how far it got, what tears it down, what follows.

model     the vocabulary (node kinds, stages, disruptions, after-actions)
matrix    every scenario a driver profile admits, with stable names
contracts what user space may expect after an unplug, where that is written, and
          each one's check of the evidence
evidence  what a scenario gathers on the target for the contracts to judge
record    what a scenario run sends from the target to the host (both sides)
executor  performs one scenario on the target (guest side)
race      workers hammering nodes while a disruptor unbinds in a loop (guest side)
runner    batches scenarios over as few boots as possible (host side)
"""
