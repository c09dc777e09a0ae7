"""The trained model's copy for the replica: plain pickle, with train.py's lambdas and nested
functions by value, loaded in a fresh interpreter as the replica loads it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from worker.execution import snapshot
from worker.execution.sandbox import PROJECT_ROOT

VARIANT = """
import torch


class Scaled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.arange(4.0))
        factor = 3.0
        self.scale = lambda x: x * factor  # a closure by value
        model = self

        def hook(module, inputs, output):  # a nested function whose closure refers back to the model
            return output + model.weight.sum() * 0

        self.register_forward_hook(hook)

    def forward(self, x):
        return self.scale(x * self.weight)


def build():
    return Scaled()
"""

LOADER = """
import importlib.util, sys
import torch
spec = importlib.util.spec_from_file_location("train", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["train"] = module
spec.loader.exec_module(module)
from worker.execution import snapshot
model = snapshot.loads(sys.stdin.buffer.read())
print(model(torch.ones(4)).tolist(), model.scale.__qualname__, model.scale.__module__)
"""


def load_in_a_fresh_interpreter(tmp_path: Path, data: bytes) -> str:
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path / "train.py")],
        input=data,
        capture_output=True,
        timeout=120,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


def test_a_model_with_a_lambda_and_a_hook_closing_over_itself_is_copied_whole(tmp_path: Path) -> None:
    import importlib.util

    (tmp_path / "train.py").write_text(textwrap.dedent(VARIANT))
    spec = importlib.util.spec_from_file_location("train", tmp_path / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get("train")
    sys.modules["train"] = module
    try:
        spec.loader.exec_module(module)
        model = module.build()
        data = snapshot.dumps(model)
    finally:
        if previous is None:
            sys.modules.pop("train", None)
        else:
            sys.modules["train"] = previous

    assert load_in_a_fresh_interpreter(tmp_path, data) == "[0.0, 3.0, 6.0, 9.0] Scaled.__init__.<locals>.<lambda> train"


def test_functions_of_other_modules_still_travel_by_name() -> None:
    import math

    # A copy that names math.sqrt, not its code: nothing but train.py's own functions goes by value.
    data = snapshot.dumps({"f": math.sqrt})
    assert b"sqrt" in data and b"marshal" not in data
    assert snapshot.loads(data)["f"] is math.sqrt
