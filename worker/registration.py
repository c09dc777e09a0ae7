"""Registering this home's key with a coordinator: the same identity for `join` and `submit`.

The key proves who the worker is; the bearer token is only a shortcut. Registering again with the
same key (a new name, other hardware, a lost token) keeps the worker id and replaces the token.
"""

from __future__ import annotations

import getpass
import re
import socket
from datetime import UTC, datetime

from shared.protocol import HardwareInfo, RegisterRequest, RegistrationPayload
from shared.signing import SigningKey
from worker.client import CoordinatorClient
from worker.identity import CoordinatorState, WorkerHome

# What a researcher who only submits registers as: no machine to lease to (no track has this class).
NO_HARDWARE = HardwareInfo(hardware_class="none")


def default_name() -> str:
    return socket.gethostname().split(".")[0] or "worker"


def default_account() -> str:
    # One machine, one account unless told otherwise; --account groups a volunteer's machines.
    raw = f"{getpass.getuser()}@{default_name()}"
    return re.sub(r"[^A-Za-z0-9_.@-]", "-", raw)[:100]


def register(
    client: CoordinatorClient,
    home: WorkerHome,
    state: CoordinatorState,
    key: SigningKey,
    *,
    name: str | None,
    account: str | None,
    hardware: HardwareInfo,
    account_secret: str | None = None,
) -> None:
    """Register `key` (retrying transient failures), then save the token in `state` and set it on `client`."""
    payload = RegistrationPayload(
        public_key=key.public_key,
        name=name or state.name or default_name(),
        account=account or state.account or default_account(),
        hardware=hardware,
        issued_at=datetime.now(UTC),
    )
    request = RegisterRequest(
        payload=payload, signature=key.sign(payload.model_dump(mode="json")),
        account_secret=account_secret or state.account_secret,
    )  # fmt: skip
    response = client.call(lambda: client.register(request))
    state.worker_id, state.token, state.account = response.worker_id, response.token, response.account
    state.account_secret = response.account_secret or state.account_secret
    state.name, state.hardware_class = payload.name, payload.hardware.hardware_class
    home.save_state(state)
    client.token = response.token
