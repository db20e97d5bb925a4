"""Race statistics: what a race was exposed to, and the rates it supports.

exposure.py reads one race (the agent's counts, the findings, the console's
begin marker) into an Exposure; rates.py turns the exposures of several races
into per-signature rates with exact Poisson intervals. docs/race-statistics.md
says what is counted and how the intervals are computed.
"""
