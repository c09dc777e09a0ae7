"""The web pages as HTML, in-process: what a browser route answers (the browser tests drive them live)."""

from __future__ import annotations

import pytest

from coordinator.services import pages
from tests.api.conftest import TRACK, Coordinator, calibrate


@pytest.mark.parametrize(
    ("path", "message"),
    [("/tracks/nope", "No track named &#39;nope&#39;"), (f"/variants/{'f' * 64}", "No variant ffffffffffff"),
     ("/accounts/nobody", "No account named &#39;nobody&#39;"), ("/tracks/nope/fragment", "No track named")],
)
def test_an_unknown_name_is_an_html_404_page_not_the_apis_json(coordinator: Coordinator, path: str, message: str) -> None:
    response = coordinator.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in response.text and message in response.text


def test_the_fragment_is_the_live_part_of_the_track_page(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0])
    claim = alice.run(alice.lease(), 0.9, hypothesis="LR 0.004 -> 0.006")
    page = coordinator.client.get(f"/tracks/{TRACK}").text
    fragment = coordinator.client.get(f"/tracks/{TRACK}/fragment")
    assert fragment.headers["cache-control"] == "no-store"
    assert "<html" not in fragment.text and fragment.text.strip() in page
    assert f'data-live-events="/v1/tracks/{TRACK}/events"' in page
    assert '<script src="/static/live.js" defer></script>' in page
    assert f'<tr data-hash="{claim["variant_hash"]}">' in fragment.text  # awaiting verification
    assert "awaiting 1 verification(s) from other accounts" in fragment.text


def test_the_pages_script_and_stylesheet_are_served_by_the_coordinator(coordinator: Coordinator) -> None:
    script = coordinator.client.get("/static/live.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert coordinator.client.get("/static/style.css").status_code == 200


def test_a_track_still_calibrating_says_so_instead_of_drawing_an_empty_chart(coordinator: Coordinator) -> None:
    page = coordinator.client.get(f"/tracks/{TRACK}").text
    assert 'id="chart-empty"' in page and "<svg" not in page
    calibrate(coordinator, [1.0, 1.0])
    page = coordinator.client.get(f"/tracks/{TRACK}").text
    assert page.count("data-point ") == 1 and "baseline 1.0000" in page


def test_the_chart_of_a_long_track_shows_its_newest_experiments_and_says_how_many_there_are(
    coordinator: Coordinator, make_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "CHART_EXPERIMENTS", 2)
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0])
    for value in (1.1, 1.2, 1.3, 1.4):
        alice.run(alice.lease(), value, hypothesis=f"worse {value}")
    page = coordinator.client.get(f"/tracks/{TRACK}").text
    assert 'aria-label="val_bpb of 3 finished experiments' in page  # the two newest and the baseline
    assert "3 of the 5 finished experiments (the newest, and the baseline)" in page
    assert "worse 1.4" in page.split("<figure")[1].split("</figure>")[0]
    assert "worse 1.1" not in page.split("<figure")[1].split("</figure>")[0]
