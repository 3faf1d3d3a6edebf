"""pytest plugin for tests/test_stubbed_package.py: records, for every test of a run against the
stubbed package, its outcome, its marks, and for a failure the exception type and the function
that raised it, as JSON in $STUBBED_RUN_REPORT."""
import json
import os

import pytest

_results = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.failed):
        entry = {"outcome": report.outcome, "marks": sorted({m.name for m in item.iter_markers()})}
        if call.excinfo is not None:
            tb = call.excinfo.traceback[-1]
            entry.update(exc_type=call.excinfo.type.__name__, raised_in=tb.name, raised_file=str(tb.path),
                         raised_by=str(tb.statement).strip())
        _results[item.nodeid] = entry


def pytest_sessionfinish(session, exitstatus):
    import cs231n

    with open(os.environ["STUBBED_RUN_REPORT"], "w") as f:
        json.dump({"package": cs231n.__file__, "tests": _results}, f, indent=1)
