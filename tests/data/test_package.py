"""The data layer's face: its common names, importable without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import shelfwise
import shelfwise.data as data
from shelfwise.data import matrix, sequences, splits


def test_every_exported_name_resolves_to_its_home() -> None:
    assert all(hasattr(data, name) for name in data.__all__)
    assert data.Interactions is matrix.Interactions
    assert data.Sequences is sequences.Sequences
    assert data.leave_last_out is splits.leave_last_out


def test_importing_the_data_layer_does_not_import_torch() -> None:
    src = str(Path(shelfwise.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", "import sys, shelfwise.data; assert 'torch' not in sys.modules"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
