"""End-to-end fixtures: a small demo store served by uvicorn, and headless Debian Chromium.

The server runs in a background thread of the test process on a free 127.0.0.1 port, over a
generated demo store in DuckDB, so the tests can read the very store the pages post events
to. Chromium is Debian's (`/usr/bin/chromium`, or `$SHELFWISE_CHROMIUM`) driven by
Playwright; without it these tests skip, or fail when `CI=true` (CI must run them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from shelfwise.artifacts import ensure_bundle
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.serving import Engine
from shelfwise.store import Store, open_store
from shelfwise.testing.server import serve_in_thread

CHROMIUM_ENV = "SHELFWISE_CHROMIUM"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Small enough to build in a few seconds, large enough for facets and category structure.
DEMO = DemoConfig(seed=11, n_items=600, n_users=300, days=45)
SCREENSHOTS_ENV = "SHELFWISE_SCREENSHOTS"


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI, where the browser tests must run."""
    message = f"headless Chromium unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


@dataclass
class DemoServer:
    """A running app over a demo store."""

    base_url: str
    store: Store
    engine: Engine
    items: Any  # the catalog frame

    def url(self, path: str) -> str:
        """An absolute URL on the server."""
        return self.base_url + path


TUNING_TRIALS = 12


def write_tuning_report(models_dir: Path) -> Path:
    """A real (tiny) Optuna study written as `shelfwise tune` writes its report folder."""
    import optuna

    from shelfwise.tuning.report import write_json, write_trials_csv

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        study_name="itemknn-demo-holdout-ndcgat10-tpe",
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    study.optimize(lambda t: 0.3 - (t.suggest_float("x", 0.0, 1.0) - 0.4) ** 2, TUNING_TRIALS)
    folder = models_dir / "reports" / study.study_name
    write_trials_csv(study, folder / "trials.csv")
    summary = {
        "study": study.study_name,
        "model": "itemknn",
        "metric": "ndcg@10",
        "best_value": study.best_value,
        "best_trial": study.best_trial.number,
        "n_trials": TUNING_TRIALS,
        "version": "v0001",
        "promotion": {"promoted": True},
    }
    write_json(summary, folder / "result.json")
    return folder


def make_app(engine: Engine) -> Any:
    """The production app around `engine`, with API keys off as in the local demo."""
    from shelfwise.serve import create_app
    from shelfwise.settings import ServeSettings, Settings

    return create_app(engine, Settings(serve=ServeSettings(auth=False)))


@pytest.fixture(scope="session")
def demo_server() -> Iterator[DemoServer]:
    """The app over a fresh small demo store, served by uvicorn in a thread."""
    tmp = Path(tempfile.mkdtemp(prefix="shelfwise-web-"))
    demo = generate(DEMO)
    store = open_store(f"duckdb:///{tmp / 'demo.duckdb'}")
    store.ingest(items=demo.items, users=demo.users, events=demo.events)
    bundle, _ = ensure_bundle(store, tmp / "artifacts")
    engine = Engine(store, bundle)
    write_tuning_report(tmp / "artifacts")  # the registry the bundle is a version of
    app = make_app(engine)
    try:
        with serve_in_thread(app) as base_url:
            yield DemoServer(base_url, store, engine, demo.items)
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (a fresh temporary profile per launch)."""
    executable = os.environ.get(CHROMIUM_ENV, "/usr/bin/chromium")
    if not Path(executable).exists():
        _unavailable(f"{executable} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:
            _unavailable(f"{executable} did not start: {exc}")
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def checked_page(browser: Any, base_url: str, **context_options: Any) -> Iterator[Any]:
    """A page in a new browser context (empty storage: a new visitor) that fails the test
    if the page raised a JavaScript error or broke its Content Security Policy."""
    context = browser.new_context(base_url=base_url, **context_options)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    try:
        yield pg
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


@pytest.fixture()
def page(browser: Any, demo_server: DemoServer) -> Iterator[Any]:
    """A new visitor's page on the demo server."""
    with checked_page(browser, demo_server.base_url, viewport={"width": 1280, "height": 860}) as pg:
        yield pg


def screenshot(page: Any, name: str, full_page: bool = False) -> None:
    """Save a PNG of the page into `$SHELFWISE_SCREENSHOTS` (docs/screenshots), if set."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return
    target = Path(folder) / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=full_page)
    # a 256-colour palette keeps the docs' PNGs small (flat UI colours survive it)
    from PIL import Image

    with Image.open(target) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(target, optimize=True)
