"""How failed checks add up on a worker's account over a long career, and how often its results are
checked (coordinator/services/verification.py)."""

from __future__ import annotations

from coordinator.models import Worker
from coordinator.services.leases import TRUSTED_STREAK
from coordinator.services.verification import (
    FORGIVE_AFTER_VALID,
    QUARANTINE_AFTER_INVALID,
    SpotCheckRates,
    _credit_valid,
    _mark_invalid,
    picked_for_spot_check,
)


def worker(*, invalid_results: int = 0, quarantined: bool = False) -> Worker:
    return Worker(valid_streak=0, invalid_results=invalid_results, quarantined=quarantined)


def credit(machine: Worker, times: int) -> Worker:
    for _ in range(times):
        _credit_valid(machine)
    return machine


def test_a_run_of_valid_results_forgives_one_failed_check_and_a_failure_restarts_the_run() -> None:
    machine = credit(worker(invalid_results=2), FORGIVE_AFTER_VALID - 1)
    assert (machine.valid_streak, machine.invalid_results) == (FORGIVE_AFTER_VALID - 1, 2)

    credit(machine, 1)
    assert (machine.valid_streak, machine.invalid_results) == (FORGIVE_AFTER_VALID, 1)

    _mark_invalid(machine, "a refuted claim")
    assert (machine.valid_streak, machine.invalid_results, machine.quarantined) == (0, 2, False)

    credit(machine, 2 * FORGIVE_AFTER_VALID)
    assert machine.invalid_results == 0
    credit(machine, FORGIVE_AFTER_VALID)
    assert machine.invalid_results == 0  # never below none


def test_an_honest_worker_with_a_rare_fault_is_never_quarantined_over_a_long_career() -> None:
    # One failed check in every 25 validated results, for 10,000 of them: without forgiveness the
    # third fault, a few dozen results in, would end its career.
    machine = worker()
    for n in range(1, 10_001):
        if n % 25 == 0:
            _mark_invalid(machine, "a verify run far from the trusted verifiers'")
        else:
            _credit_valid(machine)
    assert not machine.quarantined and machine.invalid_results <= 1


def test_a_worker_that_fails_more_often_than_it_is_forgiven_is_still_quarantined() -> None:
    machine = worker()
    for n in range(1, 200):
        if n % (FORGIVE_AFTER_VALID // 2) == 0:
            _mark_invalid(machine, "claimed a gain no verifier measured")
        else:
            _credit_valid(machine)
        if machine.quarantined:
            break
    assert machine.quarantined and machine.invalid_results == QUARANTINE_AFTER_INVALID
    assert machine.quarantine_reason == "3 invalid results, the last: claimed a gain no verifier measured"


def test_a_quarantined_workers_count_stands_until_it_is_released() -> None:
    # A verify run it delivered before its quarantine may still be credited when its candidate is decided.
    machine = credit(worker(invalid_results=QUARANTINE_AFTER_INVALID, quarantined=True), FORGIVE_AFTER_VALID)
    assert machine.quarantined and machine.invalid_results == QUARANTINE_AFTER_INVALID


def test_a_trusted_worker_whose_own_results_a_check_found_better_than_reproduced_is_checked_as_untrusted() -> None:
    rates = SpotCheckRates(untrusted=1.0, trusted=0.0)  # the draw is then certain either way
    trusted = Worker(valid_streak=TRUSTED_STREAK, quarantined=False, result_bias=0.0)
    assert not picked_for_spot_check(trusted, rates)
    trusted.result_bias = 0.5
    assert picked_for_spot_check(trusted, rates)
    newcomer = Worker(valid_streak=0, quarantined=False, result_bias=0.0)
    assert picked_for_spot_check(newcomer, rates)
