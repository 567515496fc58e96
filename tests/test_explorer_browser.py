"""The explorer end to end in a real headless Chromium (Debian's package, driven by Playwright):
`nexttoken serve` on a free port, a prompt typed, the table read, a candidate clicked, the
temperature slider moved, a signal forecast run and stepped through; screenshots saved.

Skipped when no Chromium is installed, unless NEXTTOKEN_REQUIRE_BROWSER is set (CI sets it
after installing one: there a missing browser is a failure). NEXTTOKEN_SCREENSHOTS=DIR keeps
the screenshots in DIR (the README's come from here).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_server import text_checkpoint  # noqa: F401  (the fixture)

CHROMIUM = next(
    (
        p
        for p in (
            os.environ.get("CHROMIUM"),
            shutil.which("chromium"),
            shutil.which("chromium-browser"),
        )
        if p
    ),
    None,
)
# As root Chromium needs --no-sandbox; the rest keep it from reaching for the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed (pip install playwright)"
    if CHROMIUM is None:
        missing = "no chromium on PATH (apt-get install chromium)"
    if missing:
        if os.environ.get("NEXTTOKEN_REQUIRE_BROWSER"):
            pytest.fail(f"the browser test must run here, but {missing}")
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture(scope="module")
def server(text_checkpoint):  # noqa: F811
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nexttoken",
            "serve",
            text_checkpoint,
            "signals-small",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "http://" in line:
                url = line.split()[2]
        if url is None:
            proc.kill()
            pytest.fail(f"nexttoken serve did not print its URL: {proc.stderr.read()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("NEXTTOKEN_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _x_labels(page, chart: str) -> list[dict]:
    """The x-axis labels of a bar chart: anchor x, whether rotated, and the box each covers."""
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel + ' text.x-label')].map((t) => {
            const b = t.getBoundingClientRect();
            return {x: +t.getAttribute('x'), rotated: t.hasAttribute('transform'),
                    left: b.left, right: b.right, chosen: t.classList.contains('chosen-label')};
        })""",
        chart,
    )


def _assert_labels_apart(labels: list[dict]) -> None:
    """Labels never overlap: level ones by their boxes, rotated ones by their anchors' spacing."""
    assert labels, "the chart has no x-axis labels"
    labels = sorted(labels, key=lambda lab: lab["x"])
    for a, b in zip(labels, labels[1:]):
        if a["rotated"]:
            assert b["x"] - a["x"] >= 14, (a, b)
        else:
            assert b["left"] >= a["right"] - 0.5, (a, b)


def _rows(page):
    return page.eval_on_selector_all(
        "#table tbody tr",
        "rows => rows.map(r => [...r.children].map(td => td.textContent))",
    )


def test_a_student_does_the_lecture_exercises_in_the_page(server, shots):
    sync_playwright = _browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        page.wait_for_selector("#token-panel:not([hidden])")

        # a prompt typed: its tokens as chips, the table of the next token
        page.fill("#prompt", "see you")
        page.wait_for_function("document.querySelectorAll('#chips .chip').length === 7")
        page.wait_for_function("document.querySelector('#summary').textContent.includes('total')")
        rows = _rows(page)
        assert len(rows) == 10
        probs = [float(r[3]) for r in rows]
        total = float(rows[-1][4])  # the cumulative column's last row
        assert probs == sorted(probs, reverse=True) and 0 < total <= 1.0
        assert sum(probs) == pytest.approx(total, abs=2e-3)  # the shown values are rounded
        assert f"{total:.4f}" in page.text_content("#summary")
        assert [int(r[0]) for r in rows] == list(range(1, 11))
        chip_ids = page.eval_on_selector_all("#chips .chip", "c => c.map(x => x.title)")
        assert chip_ids[0].startswith("id ")

        # click the most probable candidate: it is appended and the table moves on
        first_token = rows[0][1]
        page.click("#table tbody tr:first-child")
        page.wait_for_function("document.querySelectorAll('#chips .chip').length === 8")
        assert page.input_value("#prompt") == "see you" + _unquote(first_token)

        # the temperature slider reshapes what sampling draws from
        before = page.text_content("#table tbody tr:first-child td:nth-child(6)")
        page.fill("#temperature", "0.3")
        page.wait_for_function(
            f"document.querySelector('#table tbody tr:first-child td:nth-child(6)').textContent !== '{before}'"
        )
        after = page.text_content("#table tbody tr:first-child td:nth-child(6)")
        assert float(after) > float(before)
        assert page.text_content("#temperature-out").startswith("0.30")

        # the last-token-only switch shows p(t_i | t_{i-1}) beside the full-context table
        page.check("#last-only")
        page.wait_for_selector("#last-box:not([hidden]) #table-last tbody tr")
        # a greedy step appends one token; the sampling experiment draws a histogram
        prompt = page.input_value("#prompt")
        page.click("#greedy-btn")
        page.wait_for_function(
            f"document.querySelector('#prompt').value.length === {len(prompt) + 1}"
        )
        page.click("#freq-box summary")
        page.click("#freq-btn")
        page.wait_for_function(
            "document.querySelector('#freq-summary').textContent.includes('1000 draws')"
        )
        # undo the greedy step, back to temperature 1, draw again: the README's screenshot
        page.click("#undo-btn")
        assert page.input_value("#prompt") == prompt
        page.fill("#temperature", "1")
        page.wait_for_function("document.querySelector('#temperature-out').textContent === '1.00'")
        page.wait_for_function(
            "document.querySelector('#table tbody tr:first-child td:nth-child(6)').textContent"
            f" !== '{after}'"
        )
        page.fill("#freq-n", "2000")
        page.click("#freq-btn")
        page.wait_for_function(
            "document.querySelector('#freq-summary').textContent.includes('2000 draws')"
        )
        page.screenshot(path=str(shots / "explorer-text.png"), full_page=True)
        for chart in ("#bars", "#freq"):
            _assert_labels_apart(_x_labels(page, chart))

        # a signal model: forecast an oscillator and step through a sampled path
        page.select_option("#model", "signals-small")
        page.wait_for_selector("#signal-panel:not([hidden])")
        page.wait_for_function("document.querySelector('#values').value.split(',').length === 160")
        page.click("#forecast-btn")
        page.wait_for_selector("#fan path.line-median")
        assert page.locator("#fan path.line-path").count() == 20
        assert len(page.get_attribute("#fan path.line-median", "d")) > 100
        assert page.locator("#fan polygon.band").count() == 1
        assert "20 sample paths of 48 steps" in page.text_content("#forecast-summary")
        page.click("#steps-btn")
        page.wait_for_function(
            "document.querySelector('#step-label').textContent.startsWith('step 1 of 48')"
        )
        page.click("#step-next")
        page.wait_for_function(
            "document.querySelector('#step-label').textContent.startsWith('step 2 of 48')"
        )
        # the drawn value is one bar in its own colour, its label always shown; the other labels
        # are thinned so that none overlaps the next
        assert page.locator("#step-bars rect.bar-chosen").count() == 1
        labels = _x_labels(page, "#step-bars")
        assert len(labels) >= 3 and sum(lab["chosen"] for lab in labels) == 1
        _assert_labels_apart(labels)
        page.locator("#signal-panel").screenshot(path=str(shots / "explorer-signal.png"))

        # the trend choice: a ramp forecast with its line taken out, and by the model alone
        page.check("input[name=source][value=numbers]")
        page.fill("#values", ",".join(f"{2 * i + math.sin(i):.3f}" for i in range(60)))
        page.fill("#horizon", "6")
        # the stepped path belonged to the oscillator: a new series clears it, and says why
        assert "sample a path" in page.text_content("#step-label")
        assert page.locator("#step-bars rect").count() == 0
        assert page.is_disabled("#step-next")
        page.select_option("#trend", "linear")
        page.click("#forecast-btn")
        page.wait_for_function(
            "document.querySelector('#forecast-summary').textContent.includes('6 steps')"
        )
        assert "trend was taken out" in page.text_content("#forecast-summary")
        page.select_option("#trend", "none")
        page.click("#forecast-btn")
        page.wait_for_function(
            "!document.querySelector('#forecast-summary').textContent.includes('taken out')"
        )
        assert "6 steps" in page.text_content("#forecast-summary")
        # a known season: taken out with trend auto and said so; a bad one is a clear message
        page.fill("#values", ",".join(f"{5 + [0, 3, 6, 2, -1, -4][i % 6]:.1f}" for i in range(60)))
        page.select_option("#trend", "auto")
        page.fill("#season", "6")
        page.click("#forecast-btn")
        page.wait_for_function(
            "document.querySelector('#forecast-summary').textContent.includes('seasonal profile')"
        )
        page.fill("#season", "6,x")
        page.click("#forecast-btn")
        page.wait_for_function("document.querySelector('#status').textContent.includes('season')")
        page.fill("#season", "")
        page.click("#forecast-btn")
        page.wait_for_function("document.querySelector('#status').textContent === ''")
        page.locator("#signal-panel").screenshot(path=str(shots / "explorer-season.png"))
        assert not errors, errors
        assert page.text_content("#status") == ""
        browser.close()
    assert (shots / "explorer-text.png").stat().st_size > 10_000
    assert (shots / "explorer-signal.png").stat().st_size > 10_000


def _unquote(token: str) -> str:
    import json

    return json.loads(token) if token.startswith('"') else token
