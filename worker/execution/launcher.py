"""The launcher: the first program inside the sandbox. It applies the limits and the uid switch,
then execs the scorer.

    python -I -S launcher.py [--rlimit NAME=VALUE]... [--uid U --gid G] -- COMMAND...

Limits are set here, just before exec, never in a `preexec_fn`: the worker is threaded, and code
run between fork and exec of a threaded process can deadlock. Run as a script with `-I -S`, so it
imports nothing of the project and nothing from site-packages: standard library only.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys


def launch(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    options, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(prog="sandbox launcher")
    parser.add_argument("--rlimit", action="append", default=[], help="NAME=VALUE, e.g. AS=8589934592")
    parser.add_argument("--uid", type=int, default=None, help="switch to this uid (needs CAP_SETUID)")
    parser.add_argument("--gid", type=int, default=None, help="and this gid (default: the uid)")
    args = parser.parse_args(options)
    if not command:
        parser.error("no command to run after --")
    try:
        for item in args.rlimit:
            name, value = item.split("=", 1)
            set_limit(getattr(resource, f"RLIMIT_{name}"), int(value))
        if args.uid is not None:
            gid = args.gid if args.gid is not None else args.uid
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(args.uid, args.uid, args.uid)
            if os.getresuid() != (args.uid,) * 3:
                raise OSError(f"still uid {os.getuid()} after switching to {args.uid}")
        os.execv(command[0], command)
    except (OSError, ValueError, AttributeError) as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 126
    return 0  # not reached: execv replaces this process


def set_limit(which: int, value: int) -> None:
    """Set soft and hard limits, never above the current hard limit; a lowered hard limit stays."""
    _, hard = resource.getrlimit(which)
    capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (capped, capped))


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
