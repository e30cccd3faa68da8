"""pytest plumbing for the client x scenario matrix.

Every test function is named `test_sN_<what>` and its module sets `CLIENT` (or the test is
parametrized with a `client` id). Each outcome is appended as one JSON line to $COMPAT_RESULTS, which
harness/run.py folds into the matrix. A skip whose reason starts with "not yet:" means the broker
does not serve the feature yet; "n/a:" means the client itself cannot do it.
"""
import json
import os
import re
import sys
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
from apiversions import api_versions  # noqa: E402
from polling import wait_until  # noqa: E402,F401  (scenarios import it from here)

SCENARIO_RE = re.compile(r"test_(s\d+)_")
_SERVED = {}


def pytest_addoption(parser):
    parser.addoption("--bootstrap", default=os.environ.get("COMPAT_BOOTSTRAP"))


@pytest.fixture(scope="session")
def bootstrap(request):
    value = request.config.getoption("--bootstrap")
    if not value:
        pytest.exit("no broker: pass --bootstrap HOST:PORT or set COMPAT_BOOTSTRAP", 2)
    return value


def served_apis(bootstrap):
    if bootstrap not in _SERVED:
        _SERVED[bootstrap] = api_versions(bootstrap)
    return _SERVED[bootstrap]


def require_apis(bootstrap, *names):
    """Skip as "not yet" when the broker does not serve every API in `names`."""
    missing = [name for name in names if name not in served_apis(bootstrap)]
    if missing:
        pytest.skip("not yet: broker does not serve " + ", ".join(missing))


def unique_topic(client, scenario):
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", client).strip("-")
    return f"compat-{slug}-{scenario}-{uuid.uuid4().hex[:8]}"


def _cell(item):
    client = getattr(item.module, "CLIENT", None)
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "client" in callspec.params:
        client = callspec.params["client"]
        client = getattr(client, "name", client)
    match = SCENARIO_RE.match(item.originalname or item.name)
    return client, match.group(1) if match else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    path = os.environ.get("COMPAT_RESULTS")
    if not path:
        return
    # Record the call phase, or a setup phase that skipped or failed (the call never ran).
    if report.when == "call" or (report.when == "setup" and not report.passed):
        client, scenario = _cell(item)
        if client is None or scenario is None:
            return
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            reason = reason.removeprefix("Skipped: ")
            status = "not yet" if reason.startswith("not yet") else "n/a"
        else:
            status = "pass" if report.passed else "FAIL"
            reason = "" if report.passed else _first_line(report.longreprtext)
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"client": client, "scenario": scenario, "status": status,
                                  "test": item.nodeid, "detail": reason}) + "\n")


def _first_line(text):
    for line in reversed(text.splitlines()):
        if line.startswith("E "):
            return line[1:].strip()[:300]
    return text.strip().splitlines()[-1][:300] if text.strip() else ""
