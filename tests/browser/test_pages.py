"""The web pages in a real browser, against a real `coordinator serve` on a seeded database."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from shared.hashing import short_hash
from shared.protocol import LeaseKind
from tests.browser.conftest import Site, Tab
from tests.browser.volunteer import Volunteer

pytestmark = pytest.mark.slow

def _results(site: Site) -> list[list[str]]:
    text = site.get(f"/v1/tracks/{site.seeded.track_id}/results.tsv")
    return [line.split("\t") for line in text.splitlines()[1:]]


def test_the_global_page_lists_each_track_with_its_head_and_top_contributors(site: Site, tab: Tab) -> None:
    seeded = site.seeded
    tab.open(f"{site.url}/", name="home")
    row = tab.page.locator(f'#tracks tr[data-track="{seeded.track_id}"]')
    expect(row).to_contain_text(short_hash(seeded.head))
    expect(row.locator("td").nth(3)).to_have_text("+0.1000")  # baseline 1.00, head 0.90
    expect(row.locator("td").nth(4)).to_have_text(str(len(seeded.verified)))
    tab.page.locator("#contributors a", has_text="alice").click()
    expect(tab.page.locator("h1")).to_have_text("alice")
    assert tab.errors == []


def test_the_track_chart_has_one_point_per_finished_experiment(site: Site, tab: Tab) -> None:
    seeded = site.seeded
    tab.open(f"{site.url}/tracks/{seeded.track_id}", name="track")
    results = _results(site)
    points = tab.page.locator("#progress [data-point]")
    expect(points).to_have_count(len(results))
    assert [points.nth(i).get_attribute("data-outcome") for i in range(len(results))] == [r[3] for r in results]
    assert points.first.get_attribute("data-hash") == seeded.baseline
    chart = tab.page.locator("#progress")
    expect(chart).to_contain_text("baseline 1.0000")
    expect(chart).to_contain_text("head")
    expect(chart).to_contain_text("warmup 100 steps, then cosine decay")  # the frontier's last step
    waiting = tab.page.locator(f'#candidates tr[data-hash="{seeded.candidate}"]')
    expect(waiting).to_contain_text("awaiting 1 verification(s) from other accounts")
    expect(tab.page.locator(f'#leaderboard tr[data-hash="{seeded.head}"]')).to_contain_text("1")
    expect(tab.page.locator(f'#log tr[data-hash="{seeded.rejected}"]')).to_contain_text("rejected")
    assert tab.errors == []


def test_a_result_reported_while_the_track_page_is_open_appears_without_a_reload(fresh_site: Site, tab: Tab) -> None:
    seeded = fresh_site.seeded
    page = tab.page
    tab.open(f"{fresh_site.url}/tracks/{seeded.track_id}", name="track-live-before")
    expect(page.locator(".live-status")).to_have_text("live")  # subscribed before anything is reported
    page.evaluate("window.stayed = true")
    before = page.locator("#progress [data-point]").count()

    volunteer = Volunteer.join(fresh_site.url, account="carol", name="carol-laptop")
    try:
        lease = volunteer.lease(seeded.track_id)
        assert (lease.kind, lease.variant.hash) == (LeaseKind.verify, seeded.candidate), lease
        claimed = fresh_site.get(f"/v1/variants/{seeded.candidate}?track_id={seeded.track_id}")["claimed_val_bpb"]
        head = fresh_site.get(f"/v1/tracks/{seeded.track_id}")["head_val_bpb"]
        outcome = volunteer.report(lease, val_bpb=claimed, control_bpb=head)
    finally:
        volunteer.close()
    assert outcome.variant_status == "verified", outcome

    expect(page.locator("#progress [data-point]")).to_have_count(before + 1, timeout=10_000)
    expect(page.locator(f'#leaderboard tr[data-hash="{seeded.candidate}"] td').first).to_have_text("1")
    expect(page.locator("#candidates")).to_have_count(0)
    assert page.evaluate("window.stayed") is True, "the page reloaded instead of updating in place"
    tab.screenshot("track-live-after")
    assert tab.errors == []


def test_the_variant_page_shows_its_diff_runs_lineage_and_how_to_fork_it(site: Site, tab: Tab) -> None:
    seeded = site.seeded
    variant = seeded.verified[-1]
    tab.open(f"{site.url}/variants/{variant}?track_id={seeded.track_id}", name="variant")
    page = tab.page
    expect(page.locator("#diff .added")).to_have_text(["+WARMUP = 100"])
    expect(page.locator("#diff .removed")).to_have_count(0)
    runs = site.get(f"/v1/variants/{variant}?track_id={seeded.track_id}")["runs"]
    rows = page.locator("#runs tr[data-run]")
    expect(rows).to_have_count(len(runs))
    expect(rows.locator("td:first-child")).to_have_text([run["kind"] for run in runs])
    expect(rows.first).to_contain_text("alice-cpu")
    expect(page.locator("#lineage a")).to_have_count(len(seeded.verified))  # the baseline, then the first step
    expect(page.locator("main")).to_contain_text(f"git checkout v/{short_hash(variant)}")
    expect(page.locator("main")).to_contain_text("an agent on worker alice-cpu")
    assert tab.errors == []


def test_the_account_page_credits_verified_gains_verify_runs_and_machines(site: Site, tab: Tab) -> None:
    tab.open(f"{site.url}/accounts/bob", name="account-verifier")
    expect(tab.page.locator(".stat", has_text="verify runs for others").locator("b")).to_have_text("3")
    expect(tab.page.locator("#machines")).to_contain_text("bob-cpu")
    tab.open(f"{site.url}/accounts/alice", name="account-author")
    expect(tab.page.locator(".stat", has_text="verified improvements").locator("b")).to_have_text("2")
    expect(tab.page.locator("#verified tr")).to_have_count(1 + len(site.seeded.verified))
    assert tab.errors == []


@pytest.mark.parametrize("path", ["/tracks/nope", f"/variants/{'f' * 64}", "/accounts/nobody"])
def test_an_unknown_track_variant_or_account_is_a_404_page(site: Site, tab: Tab, path: str) -> None:
    response = tab.open(f"{site.url}{path}", name="not-found-" + path.split("/")[1])
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(tab.page.locator("h1")).to_have_text("Not found")
