"""Race statistics: what a race was exposed to, the rates it supports, and
what two sides' rates say of a patch.

exposure.py reads one race (the agent's counts, the findings, the console's
begin marker) into an Exposure; rates.py turns the exposures of several races
into per-signature rates with exact Poisson intervals; status.py compares a
baseline's and a patched kernel's and gives each signature its status.
docs/race-statistics.md says what is counted, how the intervals and tests are
computed, and works examples by hand.
"""
