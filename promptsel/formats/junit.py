"""JUnit XML of a check: a test suite per lock entry, a test case per method and per prompt."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..gate.check import CheckResult
from ..gate.compare import NOT_COMPARABLE, NOTE, REGRESSED, REMOVED


def check_result(result: CheckResult) -> str:
    """JUnit XML: a test suite per lock entry, a test case per method and per prompt; a
    regression is a ``failure``, a lock that does not match is an ``error``."""
    root = ET.Element("testsuites", name="promptsel check")
    total = failures = errors = 0
    for entry in result.entries:
        cases = [f for f in entry.findings if f.kind != NOTE]
        suite = ET.SubElement(root, "testsuite", name=entry.key, tests=str(len(cases)), time=f"{entry.seconds:.3f}",
                              failures=str(len(entry.of(REGRESSED))), errors=str(len(entry.of(NOT_COMPARABLE))))
        for f in cases:
            case = ET.SubElement(suite, "testcase", classname=f"promptsel.check.{f.subject}", name=f"{f.subject} {f.name}")
            if f.kind == REGRESSED:
                ET.SubElement(case, "failure", type="regressed", message=f.message).text = f.message
            elif f.kind == NOT_COMPARABLE:
                ET.SubElement(case, "error", type="not-comparable", message=f.message).text = f.message
            elif f.kind == REMOVED:
                ET.SubElement(case, "skipped", message=f.message)
        notes = entry.of(NOTE)
        if notes:
            ET.SubElement(suite, "system-out").text = "\n".join(f.message for f in notes)
        total += len(cases)
        failures += len(entry.of(REGRESSED))
        errors += len(entry.of(NOT_COMPARABLE))
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
