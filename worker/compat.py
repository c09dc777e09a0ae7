"""Whether this worker may work for a coordinator: its release and its training harness.

`/v1/info` names the oldest worker release the coordinator leases to and the harness its tracks
are scored with. A worker that falls short stops at join, before it registers or takes a lease,
with one line telling the volunteer to upgrade. The coordinator refuses lease requests from an
older release as well (`worker_outdated`), so a worker that was running when the coordinator
raised its minimum stops at its next request, after delivering what its outbox holds.

The exit status is EXIT_OUTDATED (sysexits' EX_CONFIG), which the systemd unit of
`worker service install` names in RestartPreventExitStatus: restarting the same release would
only be refused again.
"""

from __future__ import annotations

from shared.protocol import InfoResponse
from shared.track_spec import HARNESS_VERSION
from shared.versions import InvalidVersion, is_older
from worker import __version__

EXIT_OUTDATED = 78


class WorkerOutdated(Exception):
    """This worker cannot work for the coordinator until it is upgraded; the message says so in one line."""


def check_compatible(
    info: InfoResponse, *, url: str, version: str = __version__, harness: str = HARNESS_VERSION
) -> None:
    """Raise WorkerOutdated when `info` asks for a newer worker or another harness."""
    wanted = info.min_worker_version
    if wanted is not None:
        try:
            outdated = is_older(version, wanted)
        except InvalidVersion:
            outdated = False  # a minimum this release cannot read: the coordinator judges at each lease
        if outdated:
            raise WorkerOutdated(
                f"upgrade the worker: {url} accepts worker {wanted} or newer, and this is worker {version}"
            )
    if info.harness_version is not None and info.harness_version != harness:
        raise WorkerOutdated(
            f"upgrade the worker: {url} scores its tracks with harness {info.harness_version},"
            f" and this worker (release {version}) has harness {harness}"
        )
