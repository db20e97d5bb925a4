"""Values and parsing shared by host and target: driver profiles, the scenario
vocabulary, contracts, kernel-log parsing, architectures, errors.

No devices, no processes, no files beyond what a caller passes in.
"""
