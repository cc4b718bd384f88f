"""Sixteen threads of random grants and revocations: the end state is what the acknowledged
operations imply, no call fails, and the latency is reported.

This is issue 10's concurrency proof at a size `make test` can afford (256 operations);
`scripts/bench_concurrency.py` runs 2,000 and compares with the engine's own refusals.
"""

import random
import statistics
import threading
import time

from bson import ObjectId

from core import AlreadyPurchasedError, NotPurchasedError, create_purchase, remove_purchase
from core.operations import check_consistency
from core.storage.schema import COURSES, PURCHASES, TESTS, USERS

THREADS, OPERATIONS = 16, 160


def test_sixteen_threads_end_where_their_acknowledged_operations_say(db):
    items = [("course", ObjectId()) for _ in range(3)] + [("test", ObjectId()) for _ in range(2)]
    for kind, item in items:
        db[COURSES if kind == "course" else TESTS].insert_one({"_id": item, "title": str(item)})
    users = [[ObjectId() for _ in range(3)] for _ in range(THREADS)]  # each thread owns its users: outcomes known
    db[USERS].insert_many([{"_id": u, "name": "U", "purchasedCourses": [], "purchasedTests": []}
                           for mine in users for u in mine])
    owned = [set() for _ in range(THREADS)]  # (user, item) each thread's acknowledged operations leave
    latencies, failures = [], []

    def work(n):
        rng = random.Random(n)
        for _ in range(OPERATIONS // THREADS):
            user, (kind, item) = rng.choice(users[n]), rng.choice(items)
            ids = (item, None) if kind == "course" else (None, item)
            started = time.perf_counter()
            try:
                if (user, item) in owned[n]:
                    remove_purchase(db, user, *ids)
                    owned[n].discard((user, item))
                else:
                    create_purchase(db, user, *ids, {"amount": rng.randint(0, 5000) / 100, "paymentMethod": "stripe"})
                    owned[n].add((user, item))
            except (AlreadyPurchasedError, NotPurchasedError) as error:
                failures.append(f"model and database disagree: {error}")
            except Exception as error:  # noqa: BLE001 - any other failure is what this test looks for
                failures.append(repr(error))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    assert failures == []
    expected = {pair for mine in owned for pair in mine}
    found = {(p["user"], p.get("course") or p.get("test")) for p in db[PURCHASES].find()}
    assert found == expected
    assert {name: problems for name, problems in check_consistency(db).items() if problems} == {}
    cuts = statistics.quantiles(latencies, n=100)
    print(f"\n{len(latencies)} operations from {THREADS} threads: {len(latencies) / elapsed:.1f} ops/s, "
          f"p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
