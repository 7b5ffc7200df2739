"""Admission arithmetic: the transport's count kept current between channelz reads.

The channelz source is a plain function here so each case is exact; the real count is used
through a live server by tests/test_ops_lifecycle.py and tests/test_hardening_load.py.
"""

from __future__ import annotations

from scopesvc.server.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_waiting_in_the_transport_is_refused_until_it_drains():
    clock, outstanding = Clock(), [10]
    admission = Admission(3, lambda: outstanding[0], interval=0.01, clock=clock)
    verdicts = []
    for _ in range(10):  # the 10 calls the transport holds reach the handler one by one
        verdicts.append(admission.admit())
        if verdicts[-1]:
            admission.release()
        admission.done()
    # 10, 9, ... calls held: refused until only 3 are left (this one included)
    assert verdicts == [False] * 7 + [True] * 3


def test_the_count_is_read_again_after_the_interval():
    clock, outstanding = Clock(), [1]
    admission = Admission(2, lambda: outstanding[0], interval=0.01, clock=clock)
    assert admission.admit()
    outstanding[0] = 50  # a burst arrives; unseen until the next read
    assert admission.admit()
    clock.now = 0.02
    assert not admission.admit()


def test_open_streams_do_not_count_and_served_calls_always_do():
    clock, outstanding = Clock(), [5]
    admission = Admission(2, lambda: outstanding[0], clock=clock)
    admission.streams = 4  # 4 health Watch streams: the transport counts them, they hold no work
    assert admission.admit()  # 5 - 4 = 1 held
    assert admission.admit()  # 2 being served
    assert not admission.admit()  # the served calls count even before the next read
    admission.release()
    admission.done()
    assert admission.admit()

