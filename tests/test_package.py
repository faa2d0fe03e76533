"""The package face: one import for the common path, cheap, and never torch."""

from __future__ import annotations

import subprocess
import sys

import shelfwise


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_exported_name_resolves_to_its_home() -> None:
    from shelfwise.serving.engine import Engine
    from shelfwise.settings import Settings

    for name in shelfwise.__all__:
        assert getattr(shelfwise, name) is not None, name
    assert shelfwise.Engine is Engine and shelfwise.Settings is Settings
    assert set(shelfwise.__all__) <= set(dir(shelfwise))


def test_import_is_lazy_and_the_common_path_never_imports_torch() -> None:
    out = _run(
        "import sys, shelfwise; print('pandas' in sys.modules, 'shelfwise.serving' in "
        "sys.modules); [getattr(shelfwise, n) for n in shelfwise.__all__]; "
        "shelfwise.create('itemknn'); print('torch' in sys.modules)"
    )
    assert out.splitlines() == ["False False", "False"]


def test_unknown_names_are_an_attribute_error() -> None:
    try:
        shelfwise.not_a_name  # noqa: B018
    except AttributeError as exc:
        assert "not_a_name" in str(exc)
    else:  # pragma: no cover - the assertion below reports it
        raise AssertionError("no AttributeError")
