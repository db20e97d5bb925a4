"""harness/pure/scenarios/verdicts.py: the values documents and the history hold, and
a module the target side may import."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from harness.pure.scenarios import verdicts
from harness.pure.scenarios.verdicts import PatchResult, SignatureStatus, Verdict


def test_imports_nothing_of_the_harness() -> None:
    tree = ast.parse(Path(verdicts.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "enum"}


def test_members_are_the_strings_documents_hold() -> None:
    assert [v.value for v in Verdict] == ["pass", "fail", "hang", "error", "not-run",
                                        "interrupted"]
    assert [s.value for s in SignatureStatus] == ["introduced", "unmasked", "narrowed",
                                                  "inconclusive", "fixed", "still-present"]
    assert [r.value for r in PatchResult] == ["introduced", "unmasked", "narrowed",
                                              "inconclusive", "fixed", "unchanged"]
    # read back from JSON, a verdict is a plain string equal to its member
    doc = json.loads(json.dumps({"verdict": Verdict.NOT_RUN, Verdict.PASS: 1}))
    assert doc == {"verdict": "not-run", "pass": 1}
    assert doc["verdict"] == Verdict.NOT_RUN and Verdict(doc["verdict"]) is Verdict.NOT_RUN
    assert f"{Verdict.FAIL:6}|" == "fail  |"
