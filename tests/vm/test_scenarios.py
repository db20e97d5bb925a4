"""Every scenario of the vimc matrix, on each kernel flavour (see harness.host.pytest_plugin)."""

from typing import Any


def test_scenario(scenario_outcome: dict[str, Any]) -> None:
    o = scenario_outcome
    evidence = "\n".join(f["text"] for f in o["findings"][:1])
    verdict = f"{o['verdict']}: {o['reason']}\nconsole: {o['console']}\n{evidence}"
    assert o["verdict"] == "pass", verdict
