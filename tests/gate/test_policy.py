"""The check's policy (``promptsel.gate.policy``) at its edges: a drop of exactly the tolerance
passes, a hair more fails, a relative tolerance scales with the locked value's size, and the
six-digit rounding of the lock cannot turn "exactly the tolerance" into a failure."""

from __future__ import annotations

import pytest

from promptsel.errors import UsageError
from promptsel.gate.policy import Floor, Policy, Tolerance, failed_exit_code


def test_the_defaults():
    assert Tolerance() == Tolerance(0.02, False) and Floor() == Floor("worst", None)
    assert Policy() == Policy(Tolerance(0.02, False), Floor("worst"))
    assert str(Tolerance()) == "0.02 (absolute)" and str(Floor()) == "the worst locked prompt minus the tolerance"


def test_an_absolute_tolerance_allows_exactly_its_value():
    tol = Tolerance(0.02)
    assert tol.allowed(0.8) == 0.02 and tol.allowed(-3.0) == 0.02
    assert not tol.dropped(0.80, 0.78) and tol.dropped(0.80, 0.7799)
    assert not tol.rose(0.78, 0.80) and tol.rose(0.78, 0.8001)
    assert not tol.dropped(0.5, 0.9) and not tol.rose(0.9, 0.5)  # a rise is no drop, and back
    # A lock keeps six digits: 0.812346 - 0.792346 is 0.020000000000000018 in floats, more
    # than 0.02; the check's slack of 1e-9 reads it as the tolerance it is.
    assert 0.812346 - 0.792346 > 0.02
    assert not tol.dropped(0.812346, 0.792346) and not tol.rose(0.792346, 0.812346)
    # A drop of a tenth is a drop, whatever the slack.
    assert tol.dropped(0.8, 0.7) and tol.rose(0.7, 0.8)


def test_a_relative_tolerance_scales_with_the_locked_values_size():
    tol = Tolerance.parse("5%")
    assert tol == Tolerance(0.05, True) and str(tol) == "5% (relative)"
    assert tol.allowed(0.8) == pytest.approx(0.04) and tol.allowed(-0.8) == pytest.approx(0.04)
    assert not tol.dropped(0.8, 0.76) and tol.dropped(0.8, 0.7599)
    # A negative locked value (an MI or log-prob score): 5 % of 0.5 either way.
    assert not tol.dropped(-0.5, -0.525) and tol.dropped(-0.5, -0.53)
    assert not tol.rose(-0.5, -0.475) and tol.rose(-0.5, -0.47)


def test_tolerance_parsing():
    assert Tolerance.parse(" 0.1 ") == Tolerance(0.1, False) and Tolerance.parse("0") == Tolerance(0.0, False)
    assert Tolerance.parse("2.5%") == Tolerance(0.025, True) and str(Tolerance.parse("2.5%")) == "2.5% (relative)"
    assert str(Tolerance(0.025)) == "0.025 (absolute)"
    for bad in ("inf", "-1%", "five"):
        with pytest.raises(UsageError, match=r"--tolerance must be a number such as 0\.02 or a percentage such as 5%, got"):
            Tolerance.parse(bad)


def test_floor_parsing_and_wording():
    assert Floor.parse(" WORST ") == Floor("worst") and Floor.parse("None") == Floor("none")
    assert Floor.parse("0") == Floor("value", 0.0) and Floor.parse(" 0.65 ") == Floor("value", 0.65)
    assert str(Floor("value", 0.6)) == "0.6" and str(Floor("none")) == "none"
    with pytest.raises(UsageError, match=r"--floor must be 'worst', 'none' or a number such as 0\.6, got 'lowest'\."):
        Floor.parse("lowest")


def test_the_failed_exit_code(monkeypatch):
    assert failed_exit_code({"PROMPTSEL_FAILED_EXIT_CODE": " 255 "}) == 255
    assert failed_exit_code({"PROMPTSEL_FAILED_EXIT_CODE": "  "}) == 100
    with pytest.raises(UsageError, match=r"PROMPTSEL_FAILED_EXIT_CODE must be an exit code from 0 to 255, got '256'\."):
        failed_exit_code({"PROMPTSEL_FAILED_EXIT_CODE": "256"})
    # Without a mapping: the process's environment.
    monkeypatch.setenv("PROMPTSEL_FAILED_EXIT_CODE", "9")
    assert failed_exit_code() == 9
    monkeypatch.delenv("PROMPTSEL_FAILED_EXIT_CODE")
    assert failed_exit_code() == 100
