"""Performing scenarios on the target: one scenario, the race, disruptions.
"""
