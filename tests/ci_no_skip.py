"""Under CI no test may skip: a missing shared folder, extra, browser or fixture fails the run.

On a developer's machine a test whose inputs are missing skips (the reason is printed with
``-rs``); in CI (:func:`tests.offline.in_ci`) the same skip is turned into a failure here, so
"74 skipped" can never hide behind a green run. Skips raised at collection (a module-level
``pytest.importorskip``) become collection errors. Expected failures are not skips: they are
declared with ``@pytest.mark.xfail(strict=True, reason=...)`` and their check runs.

Loaded by ``tests/conftest.py`` (``pytest_plugins``); a pytest run elsewhere can load it with
``-p tests.ci_no_skip``.
"""

from __future__ import annotations

import pytest

from tests.offline import in_ci

#: test node id -> why it may skip even in CI. Empty: every input a test needs is installed by
#: ``.ci/run`` or carried in ``shared/``. An entry needs a reason a reviewer accepts.
ALLOWED_IN_CI: dict[str, str] = {}


def _reason(longrepr: object) -> str:
    # a skip's longrepr is (path, line, "Skipped: reason")
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def _fail(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = f"{_reason(report.longrepr)} [CI is set: a test may not skip; install what it needs or provide the data]"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and in_ci() and item.nodeid not in ALLOWED_IN_CI:
        _fail(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    if report.skipped and in_ci() and collector.nodeid not in ALLOWED_IN_CI:
        _fail(report)
    return report
