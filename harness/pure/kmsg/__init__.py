"""Kernel log analysis: bug reports in a console capture, as findings.

    findings = parse_log(console_text)      # in order, findings[0].primary
    groups = dedup(findings)                # one group per signature, with a count

See report.py for the signature format and how reports are delimited,
classify.py for the report types and frames.py for the guilty-frame rules.
"""

from harness.pure.kmsg.classify import BugClass
from harness.pure.kmsg.report import Finding, FindingGroup, dedup, parse_log

__all__ = ["BugClass", "Finding", "FindingGroup", "dedup", "parse_log"]
