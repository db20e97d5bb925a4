"""JUnit XML, the test report format GitLab, Jenkins and most CI systems read.

There is no formal standard; this writes the subset those consumers agree
on (the Jenkins/Ant schema): <testsuites> of <testsuite name tests failures
errors skipped time>, each <testcase classname name time> with at most one
<failure message type>, <error> or <skipped>, and <system-out> for details.
A scenario that failed is a failure, one that hung or could not run is an
error, one that was not run is skipped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from harness.host.race_verdict import judge_doc
from harness.host.report.compare import SIDE_LABELS, Comparison
from harness.pure.scenarios.verdicts import SignatureStatus, Verdict

_ELEMENT: dict[str, str] = {Verdict.FAIL: "failure", Verdict.HANG: "error", Verdict.ERROR: "error",
            Verdict.NOT_RUN: "skipped", Verdict.INTERRUPTED: "error"}


def _duration(scenario: dict[str, Any]) -> float:
    times = scenario.get("kernel_times") or {}
    begin, end = times.get("begin"), times.get("end")
    return round(end - begin, 3) if begin is not None and end is not None else 0.0


def _case(classname: str, name: str, verdict: str, message: str, details: str,
          seconds: float = 0.0) -> ET.Element:
    case = ET.Element("testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    element = _ELEMENT.get(verdict)
    if element:
        child = ET.SubElement(case, element, message=message[:1000], type=verdict)
        if element != "skipped":
            child.text = details
    elif details:
        ET.SubElement(case, "system-out").text = details
    return case


def _suite(name: str, cases: Iterable[ET.Element], properties: dict[str, str],
           seconds: float = 0.0) -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    props = ET.SubElement(suite, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", name=key, value=str(value))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        suite.append(case)
        counts["tests"] += 1
        for element, counter in (("failure", "failures"), ("error", "errors"),
                                 ("skipped", "skipped")):
            if case.find(element) is not None:
                counts[counter] += 1
    for key, count in counts.items():
        suite.set(key, str(count))
    suite.set("time", f"{seconds:.3f}")
    return suite


def _finding_text(scenario: dict[str, Any]) -> str:
    parts = [f"{f['title']}  [{f['signature']}]\n{f.get('text', '')}"
             for f in scenario.get("findings", [])]
    parts += [f"contract {c['contract']}: {c.get('detail', '')}"
              for c in scenario.get("contracts", []) if not c.get("passed", True)]
    if scenario.get("console"):
        parts.append(f"console: {scenario['console']}")
    return "\n\n".join(parts)


def run_suite(doc: dict[str, Any], name: str | None = None) -> ET.Element:
    """One run's results.json as a testsuite: a testcase per scenario."""
    kernel = doc.get("kernel", {})
    classname = f"{doc.get('driver', 'driver')}.{kernel.get('flavour', 'kernel')}"
    cases = [
        _case(classname, s["name"], s["verdict"], s.get("reason", ""), _finding_text(s),
              _duration(s))
        for s in doc.get("scenarios", [])
    ]
    if doc.get("mode") == "race":
        verdict, reason = judge_doc(doc)
        text = "\n\n".join(f"{f['title']}  [{f['signature']}]\n{f.get('text', '')}"
                           for f in doc.get("findings", []))
        cases.append(_case(classname, f"race-seed{doc.get('stats', {}).get('seed', '?')}",
                           verdict, reason, text))
    for f in doc.get("boot_findings", []):
        cases.append(_case(classname, "(boot)", Verdict.FAIL, f["title"], f.get("text", "")))
    props = {"kernel.release": kernel.get("release", ""), "kernel.flavour":
             kernel.get("flavour", ""), "started": doc.get("started", "")}
    return _suite(name or f"v4l2-unplug {classname}", cases, props, doc.get("duration_s", 0.0))


def _xml(*suites: ET.Element) -> str:
    root = ET.Element("testsuites")
    root.extend(suites)
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in suites)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def run_xml(doc: dict[str, Any]) -> str:
    return _xml(run_suite(doc))


def validate_xml(vdoc: dict[str, Any], side_runs: dict[str, list[list[dict[str, Any]]]],
                 comparison: Comparison) -> str:
    """The patch's verdict per scenario (a failure where the patch introduced a
    signature), then every run of both sides as its own suite."""
    introduced: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}
    for sig in comparison.signatures:
        for scenario in sig.scenarios:
            line = (f"{sig.status}: {sig.title} [{sig.signature}] baseline "
                    f"{sig.rate('base')}, patched {sig.rate('head')}")
            notes.setdefault(scenario, []).append(line)
            # what the patched kernel shows and the baseline did not: a failure
            if sig.status in (SignatureStatus.INTRODUCED, SignatureStatus.UNMASKED):
                introduced.setdefault(scenario, []).append(sig.title)
    scenarios = list(comparison.verdicts) + [s for s in notes if s not in comparison.verdicts]
    cases = [
        _case("validate", name, Verdict.FAIL if name in introduced else Verdict.PASS,
              "introduced by the patch: " + "; ".join(introduced.get(name, [])),
              "\n".join(notes.get(name, [])))
        for name in scenarios
    ]
    suites = [_suite("v4l2-unplug validate", cases,
                     {"result": vdoc.get("result", ""), "runs": vdoc.get("repeat", 1)},
                     vdoc.get("duration_s", 0.0))]
    for side, repetitions in side_runs.items():
        for run, docs in enumerate(repetitions, start=1):
            for doc in docs:
                kind = " race" if doc.get("mode") == "race" else ""
                suites.append(run_suite(doc, f"{SIDE_LABELS[side]} run {run}{kind}"))
    return _xml(*suites)
