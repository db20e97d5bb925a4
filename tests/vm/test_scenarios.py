"""Every scenario of the vimc matrix, on each kernel flavour (see harness.pytest_plugin)."""


def test_scenario(scenario_outcome) -> None:
    o = scenario_outcome
    evidence = "\n".join(f.text for f in o.findings[:1])
    assert o.verdict == "pass", f"{o.verdict}: {o.reason}\nconsole: {o.console}\n{evidence}"
