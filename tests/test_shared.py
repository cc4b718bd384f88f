"""Work shared by the tabs: one version read in flight, one render per view and version."""

import os
import threading
import time

import pytest
from bson import ObjectId

from app import create_app
from core import create_purchase, get_data_version
from core.storage.schema import COURSES, USERS
from dashboard import shell
from dashboard.pages import live
from dashboard.shared import RenderCache, SharedReading
from database.embedded import EmbeddedServer
from scripts.dash_client import callback_body, callback_key
from tests.conftest import signed_in


def run_together(n: int, call) -> list:
    """`call()` from n threads released at the same instant; results (or errors) in a list."""
    barrier, results = threading.Barrier(n), [None] * n

    def one(i):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as error:  # noqa: BLE001 - returned for the test to look at
            results[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_callers_share_one_read_and_its_failure():
    reads = []

    def read():
        reads.append(1)
        time.sleep(0.1)
        return len(reads)

    shared = SharedReading(read, fresh=0.2, backoff=0.5)
    assert run_together(20, lambda: shared.get(5)) == [1] * 20
    assert len(reads) == 1
    time.sleep(0.25)
    # older than `fresh`: the caller that starts the new read waits for it, the others meanwhile
    # get the last value at once
    assert sorted(run_together(5, lambda: shared.get(5))) == [1, 1, 1, 1, 2]
    assert len(reads) == 2

    failing = SharedReading(lambda: reads.append(1) or 1 / 0, fresh=0.2, backoff=0.5)
    before = len(reads)
    assert all(isinstance(r, ZeroDivisionError) for r in run_together(10, lambda: failing.get(5)))
    with pytest.raises(ZeroDivisionError):
        failing.get(5)  # within the back-off: the same failure, no new attempt
    assert len(reads) == before + 1


def test_while_down_a_retry_as_slow_as_the_wait_still_answers_down():
    """A read of a stopped server fails only when its time limit ends, as late as a poll may wait:
    the poll that started the retry must hear "down", not "no news" (the banner never came)."""
    reads = []

    def read():
        reads.append(1)
        if len(reads) == 1:
            return "version"
        time.sleep(0.3)
        raise ConnectionError("connection refused")

    shared = SharedReading(read, fresh=0.0, backoff=0.05)
    assert shared.get(1) == "version"
    assert shared.get(0.1) == "version"  # the first failing read is not back yet: the last value
    deadline = time.monotonic() + 5
    while len(reads) < 2 or shared._flight is not None:  # that read has failed
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # past the back-off: the next caller starts a retry and waits 0.1 s for it
    with pytest.raises(ConnectionError):
        shared.get(0.1)
    shared.close()


def test_one_render_per_view_and_version_shared_by_every_caller():
    cache, calls = RenderCache(size=2), []

    def render(tag):
        calls.append(tag)
        time.sleep(0.1)
        return {"tag": tag}

    assert run_together(20, lambda: cache.get("a", 1, lambda: render("a1"), 5)) == [(1, {"tag": "a1"})] * 20
    assert cache.get("a", 2, lambda: render("a2"), 5) == (2, {"tag": "a2"})
    assert cache.get("a", 2, lambda: render("again"), 5) == (2, {"tag": "a2"})
    cache.get("b", 1, lambda: render("b1"), 5)
    cache.get("c", 1, lambda: render("c1"), 5)  # size 2: "a" is evicted
    cache.get("a", 2, lambda: render("a2 again"), 5)
    assert calls == ["a1", "a2", "b1", "c1", "a2 again"]
    assert cache.renders == 5


def test_a_render_outlives_the_poll_that_gave_up_on_it():
    cache, calls = RenderCache(), []

    def slow():
        calls.append(1)
        time.sleep(0.4)
        return "drawn"

    with pytest.raises(TimeoutError):
        cache.get("v", 1, slow, 0.05)
    time.sleep(0.5)
    assert cache.get("v", 1, slow, 0.05) == (1, "drawn")
    assert calls == [1]


def test_data_changing_faster_than_a_render_still_moves_the_page():
    cache, calls = RenderCache(), []

    def slow(version):
        calls.append(version)
        time.sleep(0.3)
        return f"drawn at {version}"

    with pytest.raises(TimeoutError):
        cache.get("v", 1, lambda: slow(1), 0.05)
    time.sleep(0.4)
    # version 2 arrived: while it renders, a caller that cannot wait gets version 1's render
    assert cache.get("v", 2, lambda: slow(2), 0.05) == (1, "drawn at 1")
    # version 3 arrives while 2 renders: nobody starts another render of this view, and
    # nobody but the request that started it waits for it
    assert cache.get("v", 3, lambda: slow(3), 1.0) == (1, "drawn at 1")
    time.sleep(0.35)
    assert cache.get("v", 3, lambda: slow(3), 0.0) == (2, "drawn at 2")  # 2 done: 3 starts
    assert cache.get("v", 4, lambda: slow(4), 1.0) == (2, "drawn at 2")
    time.sleep(0.35)
    assert cache.get("v", 4, lambda: slow(4), 1.0) == (4, "drawn at 4")
    assert calls == [1, 2, 3, 4]


def test_many_tabs_polling_after_a_sale_cost_one_render(app):
    db = app.extensions["purchase_database"].db
    user, course = ObjectId(), ObjectId()
    db[USERS].insert_one({"_id": user, "name": "Ada", "purchasedCourses": [], "purchasedTests": []})
    db[COURSES].insert_one({"_id": course, "title": "Course 0", "price": 29.99})
    clients = [signed_in(app, "viewer", f"tab{i}@example.com") for i in range(12)]
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{live.STATE}.data", f"{live.FEED}.children")

    def poll(client, state):
        values = {f"{live.INTERVAL}.n_intervals": 1, f"{live.URL}.search": "?range=7d", f"{live.STATE}.data": state}
        reply = client.post("/_dash-update-component",
                            json=callback_body(dash_app, key, values, [f"{live.INTERVAL}.n_intervals"]))
        body = reply.get_json() if reply.status_code == 200 else None
        if body is not None and live.STATE not in body["response"]:
            return 204, None  # nothing new: only the stamp of the check ("checked just now")
        return reply.status_code, body

    renders = app.extensions["caches"].live_renders
    first = [poll(c, {}) for c in clients]
    assert {code for code, _ in first} == {200}
    states = [body["response"][live.STATE]["data"] for _, body in first]
    assert renders.renders == 1
    assert {code for code, _ in (poll(c, s) for c, s in zip(clients, states, strict=True))} == {204}

    create_purchase(db, user, course_id=course, purchase_data={"amount": 29.99, "paymentMethod": "paypal"})
    # the first tab to see the sale (the shared version read is refreshed in the background)
    give_up = time.monotonic() + 2
    while (first_after := poll(clients[0], states[0]))[0] != 200 and time.monotonic() < give_up:
        time.sleep(0.1)
    assert first_after[0] == 200
    tabs = list(zip(clients[1:], states[1:], strict=True))
    after = [first_after, *run_together(len(tabs), lambda: poll(*tabs.pop()))]
    assert {code for code, _ in after} == {200}
    assert renders.renders == 2
    feeds = [str(body["response"][live.FEED]["children"]) for _, body in after]
    assert all("Course 0" in feed for feed in feeds)



@pytest.fixture
def live_app(tmp_path):
    """The app with the live page's real refresh interval (1 s): a poll gives up after 0.5 s."""
    server = create_app({"DATA_DIR": str(tmp_path), "SEED_DEMO": "0", "TESTING": True, "REFRESH_MS": "1000",
                         "HEALTH_CHECK_SECONDS": "0"})
    yield server
    server.extensions["purchase_database"].close()


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="stops and restarts the embedded server")
def test_every_tab_sees_an_outage_within_2_s_and_recovers_with_one_render(live_app):
    app = live_app
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{live.STATE}.data", f"{live.FEED}.children")
    tabs = [[signed_in(app, "viewer", f"down{i}@example.com"), {}] for i in range(6)]

    def poll(tab):
        values = {f"{live.INTERVAL}.n_intervals": 1, f"{live.URL}.search": "", f"{live.STATE}.data": tab[1]}
        reply = tab[0].post("/_dash-update-component",
                            json=callback_body(dash_app, key, values, [f"{live.INTERVAL}.n_intervals"]))
        response = reply.get_json()["response"] if reply.status_code == 200 else {}
        tab[1] = response.get(live.STATE, {}).get("data", tab[1])
        return response

    def every_tab_until(condition, seconds: float) -> set:
        """Poll all tabs at once, round after round, until each met `condition` once."""
        met, started = set(), time.monotonic()
        while len(met) < len(tabs) and time.monotonic() - started < seconds:
            order = list(range(len(tabs)))
            replies = run_together(len(tabs), lambda order=order: (i := order.pop(), poll(tabs[i])))
            met |= {i for i, reply in replies if condition(reply)}
            time.sleep(0.1)
        return met

    every_tab_until(lambda reply: live.STATE in reply, 10)
    renders = app.extensions["caches"].live_renders.renders
    server = app.extensions["purchase_database"].server
    host, port = server.address
    server.stop()
    down = every_tab_until(lambda r: r.get(shell.BANNER, {}).get("children", "").startswith("Database unreachable"), 2)
    assert len(down) == len(tabs)
    assert all(poll(tab) == {} for tab in tabs)  # the banner is up: nothing more is sent

    replacement = EmbeddedServer(server.sqlite_path, host=host, port=port, credentials=server.credentials)
    replacement.start()
    try:
        db = app.extensions["purchase_database"].db
        user, course = ObjectId(), ObjectId()
        db[USERS].insert_one({"_id": user, "name": "Ada", "purchasedCourses": [], "purchasedTests": []})
        db[COURSES].insert_one({"_id": course, "title": "Course 0", "price": 29.99})
        create_purchase(db, user, course_id=course, purchase_data={"amount": 29.99, "paymentMethod": "paypal"})
        up = every_tab_until(lambda reply: reply.get(shell.BANNER, {}).get("className") == "banner hidden", 2)
        assert len(up) == len(tabs)
        assert all("downSince" not in tab[1] for tab in tabs)
        current = get_data_version(db)  # the sale made while it was back: on every tab by the next tick
        every_tab_until(lambda reply: reply.get(live.STATE, {}).get("data", {}).get("version") == current, 2)
        assert {tab[1]["version"] for tab in tabs} == {current}
        assert app.extensions["caches"].live_renders.renders == renders + 1  # one render served every tab
    finally:
        replacement.stop()
