"""Marquee's web UI in a real browser: Debian's Chromium driven by Playwright.

Each test walks a flow a person would, checks what the page shows (and, where the page cannot
show it, what the API answers), runs axe-core on every page it visits (no serious or critical
violation allowed), and saves a screenshot under target/browser/.

Usage: python3 .ci/browser/ui.py --url http://127.0.0.1:PORT --admin EMAIL:PASSWORD
       [--axe path/to/axe.min.js] [--only NAME] [--label embedded]
The server must be running with the demo data (`marquee up`, or deploy/run-distributed.sh).
"""

import argparse
import json
import os
import re
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

SERIOUS = {"serious", "critical"}


class Ui:
    def __init__(self, args):
        self.url = args.url.rstrip("/")
        self.admin = args.admin.split(":", 1)
        self.axe = Path(args.axe).read_text() if args.axe else None
        self.shots = Path(args.shots) / args.label
        self.shots.mkdir(parents=True, exist_ok=True)
        self.checked = []  # (page name, violations) of every axe run
        self.browser = None

    # --- the API, for setting up and for checking what a page cannot show ---------------------
    def api(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/api/v1{path}", data=data, method=method)
        request.add_header("accept", "application/json")
        if data is not None:
            request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None

    def admin_token(self):
        status, body = self.api("POST", "/auth/login", {"email": self.admin[0], "password": self.admin[1]})
        assert status == 200, f"admin sign-in: {status} {body}"
        return body["access_token"]

    def items(self, path):
        status, body = self.api("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body["items"] if isinstance(body, dict) else body

    # --- the browser --------------------------------------------------------------------------
    def context(self, width=1280, height=900):
        context = self.browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
        if self.axe:
            # Added to every document through the DevTools protocol, which the page's CSP does
            # not govern; the page itself still runs under its CSP.
            context.add_init_script(script=self.axe)
        context.set_default_timeout(15_000)
        return context

    def page(self, context):
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        return page

    def check(self, page, name):
        """axe-core on the page as it is now, then a screenshot."""
        page.wait_for_function("() => !document.getElementById('main').hasAttribute('aria-busy')")
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        assert not page.errors, f"{name}: script errors {page.errors}"
        if not self.axe:
            return
        result = page.evaluate(
            """async () => {
                const r = await axe.run(document, { resultTypes: ["violations"] });
                return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
            }"""
        )
        bad = [v for v in result if v["impact"] in SERIOUS]
        self.checked.append((name, result))
        assert not bad, f"{name}: accessibility violations {json.dumps(bad, indent=1)}"

    def register(self, page, name):
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        page.goto(f"{self.url}/#/signin")
        page.get_by_role("button", name="Create an account instead").click()
        page.get_by_label("Name").fill(name)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("correct-horse-battery")
        page.get_by_role("button", name="Create account").click()
        self.signed_in(page)
        return email

    def signed_in(self, page):
        """Signed in, and the page it leads to (the catalog) drawn: a test that goes somewhere
        else before that would race the sign-in's own navigation."""
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        expect(page).to_have_url(re.compile(r"#/$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Movies")

    def sign_in(self, page, email, password):
        page.goto(f"{self.url}/#/signin")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        self.signed_in(page)

    def fresh_showtime(self, hours_ahead):
        """A showtime of our own, in a demo room, so tests never compete for seats."""
        token = self.admin_token()
        theater = self.items("/theaters?per_page=100")[0]
        room = {"name": f"Test {uuid.uuid4().hex[:6]}", "rows": list("ABCDEFGH"), "seats_per_row": 10, "premium_rows": ["E"], "accessible_seats": ["A1"]}
        status, room = self.api("POST", f"/theaters/{theater['id']}/rooms", room, token)
        assert status == 201, f"making a room: {status} {room}"
        movie = self.items("/movies?per_page=1&sort=title")[0]
        # Within the dashboard's window (the next 30 days), in a room of its own.
        start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=10, hours=hours_ahead)
        status, show = self.api(
            "POST",
            "/showtimes",
            {"movie_id": movie["id"], "room_id": room["id"], "starts_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "price_cents": 1000, "currency": "USD"},
            token,
        )
        assert status == 201, f"scheduling a showtime: {status} {show}"
        return show


def pay(page, number):
    page.get_by_label("Card number").fill(number)
    page.get_by_label("CVC").fill("123")
    page.locator("#pay button[type=submit]").click()


# --- the tests ------------------------------------------------------------------------------------


def test_search_with_a_typo(ui):
    context = ui.context()
    page = ui.page(context)
    page.goto(ui.url)
    ui.check(page, "catalog")
    page.get_by_role("searchbox").fill("Interstelar")  # one "l" short
    expect(page.locator("#results .card", has_text="Interstellar").first).to_be_visible()
    ui.check(page, "search-typo")
    page.locator("#results .card", has_text="Interstellar").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Interstellar")
    ui.check(page, "movie")
    context.close()


def test_two_seats_booked_while_another_browser_watches(ui):
    show = ui.fresh_showtime(1)
    buyer_context, watcher_context = ui.context(), ui.context()
    buyer, watcher = ui.page(buyer_context), ui.page(watcher_context)
    ui.register(buyer, "Buyer")
    watcher.goto(f"{ui.url}/#/showtimes/{show['id']}")
    seats = ["E5", "E6"]
    for seat in seats:
        expect(watcher.locator(f"[data-seat='{seat}']")).to_have_attribute("data-status", "available")
    ui.check(watcher, "seat-map")

    buyer.goto(f"{ui.url}/#/showtimes/{show['id']}")
    for seat in seats:
        buyer.locator(f"[data-seat='{seat}']").click()
    expect(buyer.locator("#summary")).to_contain_text("2 seats: E5, E6")
    buyer.get_by_role("button", name="Hold seats").click()
    expect(buyer.locator("#countdown")).to_have_text(re.compile(r"^(9|10):\d\d$"))
    # The other browser sees them taken without reloading, through the seat stream.
    for seat in seats:
        expect(watcher.locator(f"[data-seat='{seat}']")).to_have_attribute("data-status", "held", timeout=3_000)
        expect(watcher.locator(f"[data-seat='{seat}']")).to_be_disabled()
    ui.check(buyer, "hold-and-pay")

    pay(buyer, "4242 4242 4242 4242")
    expect(buyer.locator("#booking-status")).to_have_text("Confirmed")
    expect(buyer.locator(".ticket img.qr")).to_have_count(2)
    codes = buyer.locator(".ticket .code").all_inner_texts()
    assert len(set(codes)) == 2 and all(len(c) >= 16 for c in codes), codes
    for seat in seats:
        expect(watcher.locator(f"[data-seat='{seat}']")).to_have_attribute("data-status", "booked", timeout=3_000)
    ui.check(buyer, "tickets")
    ui.check(watcher, "seat-map-booked")

    # The door check accepts one of those codes (an admin, in a third browser).
    admin_context = ui.context()
    admin = ui.page(admin_context)
    ui.sign_in(admin, *ui.admin)
    admin.goto(f"{ui.url}/#/admin/door")
    admin.get_by_label("Ticket code").fill(codes[0])
    admin.get_by_role("button", name="Check").click()
    expect(admin.locator("#door-result")).to_contain_text("Valid")
    ui.check(admin, "admin-door-check")
    admin.get_by_label("Ticket code").fill("NOT-A-TICKET")
    admin.get_by_role("button", name="Check").click()
    expect(admin.locator("#door-result")).to_contain_text("Unknown code")

    # The booking earned points (one per dollar: 30); a reward costs 25 of them.
    token = ui.admin_token()
    name = f"Popcorn {uuid.uuid4().hex[:4]}"
    status, _ = ui.api("POST", "/rewards", {"name": name, "description": "A large popcorn", "points_cost": 25}, token)
    assert status == 201, status
    buyer.goto(f"{ui.url}/#/account/loyalty")
    for _ in range(20):  # loyalty hears of the booking through an event
        if buyer.locator("#points").inner_text() == "30":
            break
        buyer.wait_for_timeout(500)
        buyer.reload()
        buyer.locator("#points").wait_for()
    expect(buyer.locator("#points")).to_have_text("30")
    reward = buyer.locator(".rewards li", has_text=name)
    reward.get_by_role("button", name="Redeem").click()
    expect(buyer.locator("main")).to_contain_text(f"Redeemed {name}: show the code")
    ui.check(buyer, "account-loyalty")
    buyer.goto(f"{ui.url}/#/account/notifications")
    expect(buyer.locator(".feed")).to_contain_text("Booking confirmed")
    ui.check(buyer, "account-notifications")
    buyer.goto(f"{ui.url}/#/account/profile")
    buyer.get_by_label("Name").fill("Buyer Renamed")
    buyer.get_by_role("button", name="Save").click()
    expect(buyer.locator("main")).to_contain_text("Saved.")
    ui.check(buyer, "account-profile")

    # The account lists the booking and the payment; cancelling explains and refunds.
    buyer.goto(f"{ui.url}/#/account")
    expect(buyer.locator("table.list")).to_contain_text("E5, E6")
    ui.check(buyer, "account-bookings")
    buyer.goto(f"{ui.url}/#/account/payments")
    expect(buyer.locator("table.list")).to_contain_text("•••• 4242")
    ui.check(buyer, "account-payments")
    buyer.go_back()
    buyer.locator("table.list a").first.click()
    expect(buyer.locator("main")).to_contain_text("refunds it in full")
    buyer.get_by_role("button", name="Cancel and refund").click()
    buyer.get_by_role("button", name="Yes").click()
    expect(buyer.locator("#booking-status")).to_have_text("Cancelled")
    for seat in seats:
        expect(watcher.locator(f"[data-seat='{seat}']")).to_have_attribute("data-status", "available", timeout=3_000)
    for c in (buyer_context, watcher_context, admin_context):
        c.close()


def test_a_declined_card(ui):
    show = ui.fresh_showtime(5)
    context = ui.context()
    page = ui.page(context)
    ui.register(page, "Decline")
    # By keyboard alone: a seat is a button, Space chooses it, Enter on "Hold seats" holds it.
    page.goto(f"{ui.url}/#/showtimes/{show['id']}")
    page.locator("[data-seat='C3']").focus()
    page.keyboard.press("Space")
    expect(page.locator("[data-seat='C3']")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Hold seats").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#pay")).to_be_visible()
    expect(page.get_by_label("Card number")).to_be_focused()
    pay(page, "4000 0000 0000 0002")
    expect(page.locator("#pay-error")).to_contain_text("Your card was declined.")
    ui.check(page, "card-declined")
    pay(page, "4000000000009995")
    expect(page.locator("#pay-error")).to_contain_text("Your card has insufficient funds.")
    # The hold is still there: a good card then pays.
    pay(page, "4242424242424242")
    expect(page.locator("#booking-status")).to_have_text("Confirmed")
    context.close()


def test_a_subscriber_watches_stops_and_resumes(ui):
    deadline = time.time() + 60
    movie = None
    while time.time() < deadline and movie is None:  # the demo clips are made at first start
        movie = next((m for m in ui.items("/movies/featured") if m["streamable"]), None)
        time.sleep(0 if movie else 1)
    assert movie, "no demo movie became streamable"
    context = ui.context()
    page = ui.page(context)
    ui.register(page, "Viewer")
    page.goto(f"{ui.url}/#/watch/{movie['id']}")
    expect(page.locator("main")).to_contain_text("Watching needs a subscription")
    page.get_by_role("link", name="See the plans").click()
    ui.check(page, "plans")
    page.get_by_role("button", name="Choose Basic").click()
    page.get_by_label("Card number").fill("4242424242424242")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    # Back to the movie it was asked for.
    video = page.locator("#player")
    expect(video).to_be_visible()
    page.evaluate("document.getElementById('player').muted = true; document.getElementById('player').play()")
    page.wait_for_function("() => document.getElementById('player').currentTime >= 3.2", timeout=20_000)
    ui.check(page, "watching")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#playback-status")).to_contain_text("Stopped at")
    stopped = page.locator("#playback-status").inner_text().split("Stopped at ")[1].split(".")[0]
    minutes, seconds = stopped.split(":")
    at = int(minutes) * 60 + int(seconds)
    assert at >= 3, stopped

    # Continue watching lists it at that second; opening it again resumes there.
    page.goto(f"{ui.url}/#/account/watching")
    expect(page.locator("#continue")).to_contain_text(f"at {stopped}")
    ui.check(page, "continue-watching")
    page.locator("#continue a").first.click()
    expect(page.locator("#playback-status")).to_have_text(f"Resuming at {stopped}")
    page.wait_for_function("(at) => { const v = document.getElementById('player'); return v.readyState >= 1 && Math.abs(v.currentTime - at) < 1; }", arg=at)

    # Having watched it, the viewer reviews it: the review shows, marked verified.
    page.goto(f"{ui.url}/#/movies/{movie['id']}")
    page.get_by_label("Rating").select_option("9")
    page.get_by_label("Title").fill("Still holds up")
    page.get_by_label("What you thought").fill("The colour bars have never looked better.")
    page.get_by_role("button", name="Post the review").click()
    review = page.locator(".reviews li", has_text="Still holds up")
    expect(review).to_contain_text("9/10")
    expect(review.locator(".badge")).to_have_text("verified")
    expect(page.locator("#review")).to_have_count(0)  # one review per movie: the form is gone
    ui.check(page, "movie-reviewed")

    # The basic plan has one screen: a second tab is told so while this one plays.
    page.goto(f"{ui.url}/#/watch/{movie['id']}")
    expect(page.locator("#player")).to_be_visible()
    page.evaluate("document.getElementById('player').muted = true; document.getElementById('player').play()")
    other = ui.page(context)
    other.goto(f"{ui.url}/#/watch/{movie['id']}")
    expect(other.locator("#stream-limit")).to_contain_text("screens are all in use")
    ui.check(other, "stream-limit")
    context.close()


def test_an_admin_schedules_a_showtime_and_customers_see_it(ui):
    context = ui.context()
    page = ui.page(context)
    ui.sign_in(page, *ui.admin)
    # A new room, laid out in the editor: row E premium, A1 and A2 accessible.
    theater = ui.items("/theaters?per_page=100")[0]
    page.goto(f"{ui.url}/#/admin/theaters/{theater['id']}")
    name = f"Studio {uuid.uuid4().hex[:4]}"
    page.get_by_label("Name").fill(name)
    page.get_by_label("Rows").fill("6")
    page.get_by_label("Seats per row").fill("8")
    page.get_by_role("button", name="Row E premium").click()
    page.get_by_role("button", name="Row A seat 1 accessible").click()
    page.get_by_role("button", name="Row A seat 2 accessible").click()
    ui.check(page, "admin-room-editor")
    page.get_by_role("button", name="Create the room").click()
    expect(page.locator("main")).to_contain_text(f"{name} · 48 seats")
    status, rooms = ui.api("GET", f"/theaters/{theater['id']}/rooms")
    room = next(r for r in (rooms["items"] if isinstance(rooms, dict) else rooms) if r["name"] == name)
    kinds = {s["seat"]: s["kind"] for row in room["layout"]["rows"] for s in row["seats"]}
    assert (kinds["E3"], kinds["A1"], kinds["A2"], kinds["B1"], len(kinds)) == ("premium", "accessible", "accessible", "standard", 48), kinds

    page.goto(f"{ui.url}/#/admin/showtimes")
    ui.check(page, "admin-showtimes")
    movie = ui.items("/movies?q=Casablanca")[0]
    page.get_by_label("Movie").select_option(label=movie["title"])
    page.get_by_label("Room").select_option(label=f"{theater['name']} · {name} (48 seats)")
    start = (datetime.now(timezone.utc) + timedelta(days=45)).strftime("%Y-%m-%dT20:30")
    page.get_by_label("Starts at").fill(start)
    page.get_by_label("Price").fill("14.50")
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#showtime-message")).to_contain_text("Scheduled")
    # The same room at the same time again: refused, with the reason.
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#showtime-message")).to_contain_text("overlap", ignore_case=True)
    ui.check(page, "admin-showtime-overlap")

    # The room is new: the one showtime in it is ours, at 20:30 on the theater's clock.
    scheduled = [s for s in ui.items(f"/showtimes?movie_id={movie['id']}&per_page=100") if s["room_id"] == room["id"]]
    assert len(scheduled) == 1 and scheduled[0]["local_starts_at"][:16] == start, (start, scheduled)
    public = ui.page(ui.context())
    public.goto(f"{ui.url}/#/movies/{movie['id']}")
    expect(public.locator(f".chip[href='#/showtimes/{scheduled[0]['id']}']")).to_have_text("20:30")
    ui.check(public, "movie-with-new-showtime")

    # A new movie, made in the form, is found by customers' search.
    page.goto(f"{ui.url}/#/admin/movies")
    page.get_by_role("link", name="New movie").click()
    title = f"Night Train {uuid.uuid4().hex[:4]}"
    page.get_by_label("Title").fill(title)
    page.get_by_label("Synopsis").fill("A sleeper car, a stolen violin, a border at dawn.")
    page.get_by_label("Drama").check()
    page.get_by_label("Runtime (minutes)").fill("97")
    page.get_by_label("Director").fill("Ana Ferreira")
    ui.check(page, "admin-movie-new")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", level=2, name=title)).to_be_visible()
    public.goto(f"{ui.url}/#/?q={title.split()[0]}%20{title.split()[1]}")
    expect(public.locator("#results .card", has_text=title)).to_be_visible()

    for part in ["movies", "theaters", "users"]:
        page.goto(f"{ui.url}/#/admin/{part}")
        ui.check(page, f"admin-{part}")
    context.close()


def test_the_dashboard_draws_its_charts_from_real_data(ui):
    context = ui.context()
    page = ui.page(context)
    ui.sign_in(page, *ui.admin)
    token = ui.admin_token()
    # The earlier tests confirmed bookings; analytics hears of them through events.
    deadline = time.time() + 20
    while time.time() < deadline:
        status, d = ui.api("GET", "/analytics/dashboard", token=token)
        if status == 200 and d["tickets_sold_30d"] >= 1:
            break
        time.sleep(0.5)
    assert d["tickets_sold_30d"] >= 1, d
    page.goto(f"{ui.url}/#/admin")
    for chart in ["chart-revenue", "chart-plays", "chart-subscriptions"]:
        expect(page.locator(f"#{chart} canvas").first).to_be_visible()
    expect(page.locator("#tiles")).to_contain_text("Tickets sold")
    revenue = page.locator("#tiles li", has_text="Net revenue, 30 days").locator("strong").inner_text()
    assert revenue not in ("$0.00", "—"), revenue
    expect(page.locator("#chart-occupancy dt").first).to_be_visible()
    expect(page.locator("#chart-popular dt").first).to_be_visible()
    # The numbers under the charts are the API's.
    status, days = ui.api("GET", f"/analytics/revenue?from={(datetime.now(timezone.utc) - timedelta(days=29)).date()}&to={datetime.now(timezone.utc).date()}&interval=day", token=token)
    assert status == 200 and sum(p["revenue_cents"] for p in days) > 0, days
    ui.check(page, "admin-dashboard")
    context.close()


def test_a_phone_sized_screen_in_the_dark_theme(ui):
    context = ui.browser.new_context(viewport={"width": 375, "height": 740}, color_scheme="dark", is_mobile=True)
    if ui.axe:
        context.add_init_script(script=ui.axe)
    page = ui.page(context)
    page.goto(ui.url)
    expect(page.locator("#results .card").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width}px wide on a 375px screen"
    ui.check(page, "phone-dark")
    # Keyboard: the skip link is the first stop, and it leads to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    context.close()


TESTS = [
    test_search_with_a_typo,
    test_two_seats_booked_while_another_browser_watches,
    test_a_declined_card,
    test_a_subscriber_watches_stops_and_resumes,
    test_an_admin_schedules_a_showtime_and_customers_see_it,
    test_the_dashboard_draws_its_charts_from_real_data,
    test_a_phone_sized_screen_in_the_dark_theme,
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--admin", required=True, help="EMAIL:PASSWORD")
    parser.add_argument("--axe")
    parser.add_argument("--shots", default="target/browser")
    parser.add_argument("--label", default="embedded")
    parser.add_argument("--chromium", default=os.environ.get("MARQUEE_CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--only")
    args = parser.parse_args()
    ui = Ui(args)
    failed = []
    with sync_playwright() as p:
        ui.browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        for test in TESTS:
            if args.only and args.only not in test.__name__:
                continue
            started = time.time()
            try:
                test(ui)
                print(f"ok   {test.__name__} ({time.time() - started:.1f} s)", flush=True)
            except Exception:
                failed.append(test.__name__)
                print(f"FAIL {test.__name__} ({time.time() - started:.1f} s)\n{traceback.format_exc()}", flush=True)
        ui.browser.close()
    minor = sum(1 for _, v in ui.checked for x in v if x["impact"] not in SERIOUS)
    print(f"axe-core: {len(ui.checked)} pages checked, {minor} minor or moderate findings; screenshots in {ui.shots}")
    if failed:
        print(f"{len(failed)} browser test(s) failed: {', '.join(failed)}")
        sys.exit(1)
    print(f"{len(TESTS) if not args.only else 'the chosen'} browser tests passed ({args.label})")


if __name__ == "__main__":
    main()
