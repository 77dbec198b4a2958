"""The security evidence's figures (matrix cells, schemathesis cases, the dependency audit),
gathered by the tests here and printed at the end of the run, so a reviewer reads them in the
output of the test command itself."""

import pytest

_figures: list[str] = []


@pytest.fixture(scope="session")
def security_figure():
    """Record one line for the run's summary (and print it, for `-s`)."""

    def record(line: str) -> None:
        print(line)
        _figures.append(line)

    return record


def pytest_terminal_summary(terminalreporter):
    if _figures:
        terminalreporter.section("security evidence")
        for line in _figures:
            terminalreporter.write_line(line)
