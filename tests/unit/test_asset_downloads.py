"""Downloads of track data over real HTTP: resumed after a cut, refetched when the bytes are wrong,
held to a bandwidth limit, and shown with their rate.

The server (tests/asset_server.py) is a small real HTTP server on a local port that answers as the
coordinator's asset route does, cuts or corrupts answers on demand, and records every Range asked
for and every byte it sent.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from tests.asset_server import AssetServer, serving
from worker.assets import PARTIAL_SUFFIX, AssetError, AssetStore, Throttle
from worker.client import CoordinatorClient, RetryPolicy, TransientError
from worker.display import LiveDisplay, PlainDisplay, Transfer

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()
CUT = 300_000  # bytes sent before the first answer is cut


@pytest.fixture
def server() -> Iterator[AssetServer]:
    with serving({SHA: DATA}) as httpd:
        httpd.cut_after = CUT
        yield httpd


def client(server: AssetServer, *, attempts: int = 3) -> CoordinatorClient:
    return CoordinatorClient(server.url, retry_policy=RetryPolicy(max_attempts=attempts, base_delay_s=0.0))


def lines(out: io.StringIO) -> list[str]:
    return [re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "", line) for line in out.getvalue().splitlines()]


# --- resuming ------------------------------------------------------------------------------------


def test_a_cut_download_resumes_where_it_stopped_and_fetches_each_byte_once(
    server: AssetServer, tmp_path: Path
) -> None:
    server.cuts_left = 1
    out = io.StringIO()
    store = AssetStore(tmp_path / "assets", watcher=PlainDisplay(out))

    with client(server) as c:
        store.ensure(c, track_id="t", hashes=[SHA])

    assert (tmp_path / "assets" / SHA).read_bytes() == DATA
    assert server.ranges == [None, f"bytes={CUT}-"]
    assert server.served == len(DATA)
    assert not (tmp_path / "assets" / (SHA + PARTIAL_SUFFIX)).exists()
    said = lines(out)
    assert said[:2] == [
        f"downloading asset {SHA[:10]} of t (1.0 MB)",
        f"downloading asset {SHA[:10]} of t (1.0 MB), resuming at 300.0 kB",
    ]
    assert re.fullmatch(rf"downloaded asset {SHA[:10]} of t: 748\.6 kB in 0:00:0\d(, .+/s)?", said[2])


def test_a_download_cut_with_no_retries_left_resumes_at_the_next_start(
    server: AssetServer, tmp_path: Path
) -> None:
    server.cuts_left = 1
    with client(server, attempts=1) as c, pytest.raises(TransientError, match="GET /v1/tracks/t/assets/"):
        AssetStore(tmp_path / "assets").ensure(c, track_id="t", hashes=[SHA])
    partial = tmp_path / "assets" / (SHA + PARTIAL_SUFFIX)
    assert partial.read_bytes() == DATA[:CUT]

    with client(server, attempts=1) as c:
        AssetStore(tmp_path / "assets").ensure(c, track_id="t", hashes=[SHA])

    assert (tmp_path / "assets" / SHA).read_bytes() == DATA
    assert server.ranges == [None, f"bytes={CUT}-"]
    assert server.served == len(DATA)


def test_a_server_that_ignores_range_sends_it_all_again_and_the_file_is_rewritten(
    server: AssetServer, tmp_path: Path
) -> None:
    server.cuts_left = 1
    server.honour_ranges = False

    with client(server) as c:
        AssetStore(tmp_path / "assets").ensure(c, track_id="t", hashes=[SHA])

    assert (tmp_path / "assets" / SHA).read_bytes() == DATA
    assert server.ranges == [None, f"bytes={CUT}-"]  # asked for the rest, got a 200 with everything
    assert server.served == CUT + len(DATA)


def test_a_partial_file_already_whole_is_checked_and_kept_without_fetching_a_byte(
    server: AssetServer, tmp_path: Path
) -> None:
    # A crash after the last byte and before the rename: the server says nothing lies past the end.
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / (SHA + PARTIAL_SUFFIX)).write_bytes(DATA)

    with client(server) as c:
        AssetStore(tmp_path / "assets").ensure(c, track_id="t", hashes=[SHA])

    assert (tmp_path / "assets" / SHA).read_bytes() == DATA
    assert (server.ranges, server.served) == ([f"bytes={len(DATA)}-"], 0)


def test_a_partial_file_longer_than_the_asset_is_dropped_and_fetched_from_scratch(
    server: AssetServer, tmp_path: Path
) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / (SHA + PARTIAL_SUFFIX)).write_bytes(DATA + b"stray tail")

    with client(server) as c:
        AssetStore(tmp_path / "assets").ensure(c, track_id="t", hashes=[SHA])

    assert (tmp_path / "assets" / SHA).read_bytes() == DATA
    assert server.ranges == [f"bytes={len(DATA) + 10}-", None]


# --- wrong bytes ---------------------------------------------------------------------------------


def test_a_corrupted_download_is_refused_and_fetched_again_from_scratch(
    server: AssetServer, tmp_path: Path
) -> None:
    server.corrupt_left = 1
    out = io.StringIO()

    with client(server) as c:
        AssetStore(tmp_path / "assets", watcher=PlainDisplay(out, verbose=False)).ensure(
            c, track_id="t", hashes=[SHA]
        )

    assert (tmp_path / "assets" / SHA).read_bytes() == DATA
    assert server.ranges == [None, None]
    assert server.served == 2 * len(DATA)
    wrong = hashlib.sha256(bytes([DATA[0] ^ 0xFF]) + DATA[1:]).hexdigest()
    # Quiet: the warning only, no download lines.
    assert lines(out) == [
        f"WARNING asset {SHA[:12]} of track t arrived with sha256 {wrong[:12]};"
        " discarded, fetching it again from the start"
    ]


def test_a_resumed_download_on_a_stale_partial_file_is_fetched_again_whole(
    server: AssetServer, tmp_path: Path
) -> None:
    # The first bytes on disk are not the asset's (a torn write): the appended rest cannot fix them.
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / (SHA + PARTIAL_SUFFIX)).write_bytes(b"\0" * CUT)

    with client(server) as c:
        AssetStore(tmp_path / "assets").ensure(c, track_id="t", hashes=[SHA])

    assert (tmp_path / "assets" / SHA).read_bytes() == DATA
    assert server.ranges == [f"bytes={CUT}-", None]


def test_bytes_that_are_wrong_twice_fail_with_a_clear_error_and_leave_nothing(
    server: AssetServer, tmp_path: Path
) -> None:
    server.corrupt_left = 2

    with client(server) as c, pytest.raises(AssetError) as caught:
        AssetStore(tmp_path / "assets").ensure(c, track_id="t", hashes=[SHA])

    wrong = hashlib.sha256(bytes([DATA[0] ^ 0xFF]) + DATA[1:]).hexdigest()
    assert str(caught.value) == (
        f"asset {SHA[:12]} of track t arrived with sha256 {wrong[:12]} again after a fresh download; discarded"
    )
    assert server.ranges == [None, None]
    assert list((tmp_path / "assets").iterdir()) == []


# --- bandwidth -----------------------------------------------------------------------------------


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_throttle_lets_one_second_of_burst_through_then_holds_the_rate() -> None:
    time = FakeTime()
    throttle = Throttle(1000.0, clock=time.clock, sleep=time.sleep)

    for _ in range(50):
        throttle(100)  # 5000 bytes: 1000 from the full bucket, 4000 at 1000 B/s

    assert time.now - 1000.0 == pytest.approx(4.0)
    assert time.slept == pytest.approx([0.1] * 40)  # nothing for the burst, then each chunk's share


def test_idle_time_refills_the_bucket_only_up_to_the_burst() -> None:
    time = FakeTime()
    throttle = Throttle(1000.0, burst=500.0, clock=time.clock, sleep=time.sleep)

    assert throttle.delay(500) == 0.0
    time.now += 3600.0  # an hour idle is worth one burst, not an hour of bytes
    assert throttle.delay(2500) == pytest.approx(2.0)
    time.now += 2.0  # the debt repaid
    assert throttle.delay(1000) == pytest.approx(1.0)


def test_the_bandwidth_limit_is_in_megabits_and_holds_a_real_download_to_it(
    server: AssetServer, tmp_path: Path
) -> None:
    store = AssetStore.with_limits(tmp_path / "assets", max_download_mbps=2.0)
    assert store.throttle is not None and store.throttle.bytes_per_s == 250_000
    time = FakeTime()  # the same bucket, timed by a clock that moves only when it sleeps
    store.throttle = Throttle(250_000, clock=time.clock, sleep=time.sleep)

    with client(server) as c:
        store.ensure(c, track_id="t", hashes=[SHA])

    assert (tmp_path / "assets" / SHA).read_bytes() == DATA
    # However the bytes were chunked: one second's burst free, the rest at 250 kB/s.
    assert time.now - 1000.0 == pytest.approx((len(DATA) - 250_000) / 250_000)


def test_a_bandwidth_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="a bandwidth limit must be positive, not 0"):
        Throttle(0)


# --- progress ------------------------------------------------------------------------------------


def test_plain_progress_lines_give_the_rate_and_the_time_left() -> None:
    transfer = Transfer(
        label="asset x", first=200_000_000, total=1_200_000_000, done=200_000_000, started=0.0
    )
    transfer.done = 650_000_000

    assert transfer.describe(now=10.0) == "650.0 MB of 1.2 GB, 45.0 MB/s, 0:00:12 left"
    assert Transfer(label="asset x", first=0, total=None, done=0, started=0.0).describe(now=0.0) == "0 bytes"


def test_the_live_display_draws_a_download_bar_while_fetching(server: AssetServer, tmp_path: Path) -> None:
    out = io.StringIO()
    display = LiveDisplay(Console(file=out, force_terminal=True, width=160))
    server.cuts_left = 1

    with client(server) as c:
        AssetStore(tmp_path / "assets", watcher=display).ensure(c, track_id="t", hashes=[SHA])
    display.close("done")

    text = out.getvalue()
    assert f"downloading asset {SHA[:10]} of t" in text
    assert re.search(r"\d+\.\d/1\.0 MB", text)  # rich's DownloadColumn
    assert f"downloaded asset {SHA[:10]} of t" in text
