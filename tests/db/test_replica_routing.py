"""The pieces of read routing that need no server: the lag estimate and the client's write token."""

from __future__ import annotations

from starlette.datastructures import Headers

from cim.api.replica import after_lsn
from cim.db.engine import make_engine
from cim.db.replica import lsn_value
from cim.db.routing import ReplicaMonitor

NOWHERE = "postgresql://cim:x@127.0.0.1:1/cim"  # engines connect lazily: nothing is contacted here


def _monitor() -> ReplicaMonitor:
    return ReplicaMonitor(make_engine(NOWHERE), make_engine(NOWHERE))


def test_lag_counts_from_the_first_primary_position_the_standby_has_not_replayed() -> None:
    monitor = _monitor()
    assert monitor._lag(100.0, 1000, 1000) == (0, 0.0)
    assert monitor._lag(200.0, 1000, 1000) == (0, 0.0)  # an idle primary is not a lagging standby
    assert monitor._lag(201.0, 1500, 1000) == (500, 0.0)
    assert monitor._lag(203.5, 2000, 1000) == (1000, 2.5)
    # replayed past the 1500 of t=201: the oldest position seen and not replayed is the 2000 of t=203.5
    # (the estimate is low by at most one check interval, never by the primary's idle time)
    assert monitor._lag(204.0, 2000, 1600) == (400, 0.5)
    assert monitor._lag(205.0, 2000, 2000) == (0, 0.0)
    assert monitor._lag(205.0, None, 2000) == (None, None)  # primary unreachable: lag unknown


def test_the_write_token_comes_from_the_header_or_the_cookie_and_bad_ones_are_ignored() -> None:
    assert after_lsn(Headers({"CIM-Write-LSN": "0/16B3748"})) == lsn_value("0/16B3748") == 0x16B3748
    assert after_lsn(Headers({"cookie": "a=b; cim_write_lsn=1/0"})) == 1 << 32
    assert after_lsn(Headers({"CIM-Write-LSN": "16B3748"})) is None
    assert after_lsn(Headers({"cookie": "cim_write_lsn=0/16B3748; DROP"})) == 0x16B3748
    assert after_lsn(Headers({"CIM-Write-LSN": "0/ZZ"})) is None
    assert after_lsn(Headers({})) is None
