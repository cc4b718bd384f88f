"""The tables scripts/bench_api.py prints: ownership checks over HTTP and in-process, paced
checks, purchases over HTTP against in-process, and the targets."""

import os

from scripts.bench_clients import OWNERSHIP, PURCHASES, Result, errors_text

TARGET_OWNERSHIP_P99_MS = 10.0
TARGET_RATIO = 1.3


def ms(value: float) -> str:
    if value != value:  # nan: no call succeeded
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def longest(r: Result) -> str:
    return ms(max(r.latencies) * 1000) if r.latencies else "-"


def ratio(a: float, b: float) -> float:
    return a / b if b and a == a and b == b else float("nan")


def http_table(rows: dict) -> None:
    print("| clients | requests | requests/s | p50 | p99 | max | errors | CPU: web / database / clients |")
    print("|---:|---:|---:|---:|---:|---:|---|---|")
    for n, r in rows.items():
        print(f"| {n} | {r.count:,} | {r.rate:,.0f}/s | {ms(r.p(0.5))} | {ms(r.p(0.99))} | {longest(r)} | "
              f"{errors_text(r.errors)} | {r.cpu_percent('web'):.0f}% / {r.cpu_percent('database'):.0f}% / "
              f"{r.cpu_percent('clients'):.0f}% |")


def print_tables(args, users: int, seed_seconds: float, http: dict, local: dict, paced: dict, sales: dict) -> None:
    print(f"\n{args.purchases:,} demo purchases ({users:,} users, 40 courses and tests), embedded server in its own "
          f"process; gunicorn as `make run` (1 worker, gthread, 128 threads); API_RATE_LIMIT {args.rate_limit!r}; "
          f"{os.cpu_count()} CPUs shared by gunicorn, the database process and this script's client threads "
          f"(one process, one GIL); demo load {seed_seconds:.0f} s\n")

    print(f"Ownership checks over HTTP (GET {OWNERSHIP}?course=..., keep-alive, back to back, "
          f"{args.seconds:g} s a row):\n")
    http_table(http)

    print(f"\nThe same check in-process (core.has_purchased, a client joined to the same server, back to back; "
          f"{args.seconds:g} s a row):\n")
    print("| threads | calls | calls/s | p50 | p99 | max | errors | CPU: database / this script | HTTP / in-process p50 |")
    print("|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for n, r in local.items():
        print(f"| {n} | {r.count:,} | {r.rate:,.0f}/s | {ms(r.p(0.5))} | {ms(r.p(0.99))} | {longest(r)} | "
              f"{errors_text(r.errors)} | {r.cpu_percent('database'):.0f}% / {r.cpu_percent('clients'):.0f}% | "
              f"{ratio(http[n].p(0.5), r.p(0.5)):.2f}x |")

    if args.paced:
        print(f"\nOwnership checks over HTTP at {args.paced:g} requests/s in all, spread over the clients (open loop: "
              f"latency from each request's planned time; {args.seconds:g} s a row):\n")
        http_table({n: r for n, r in paced.items() if r is not None})
        skipped = [n for n, r in paced.items() if r is None]
        if skipped:
            print(f"\nNot run at {', '.join(map(str, skipped))} client(s): each would have to send a request every "
                  f"{skipped[0] / args.paced * 1000:.0f} ms or more often, under twice the time one takes "
                  f"({ms(http[min(http)].p(0.5))} at {min(http)} client): that measures a client falling behind.")

    print(f"\nPurchases: POST {PURCHASES} (a new Idempotency-Key each) against core.create_purchase in-process "
          f"(the same fields, an idempotency key and an actor), {args.writes} of each a row, items not owned yet; "
          "in parts of four a client (at most half a row), in the order HTTP, in-process, in-process, HTTP, "
          "HTTP...:\n")
    print("| clients | HTTP: purchases/s | p50 | p99 | errors | in-process: purchases/s | p50 | p99 | errors "
          "| HTTP / in-process p50 | engine held after (HTTP / in-process) | aborted at 60 s |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---|---:|")
    for n, (h, p) in sales.items():
        print(f"| {n} | {h.rate:.1f}/s | {ms(h.p(0.5))} | {ms(h.p(0.99))} | {errors_text(h.errors)} | "
              f"{p.rate:.1f}/s | {ms(p.p(0.5))} | {ms(p.p(0.99))} | {errors_text(p.errors)} | "
              f"{ratio(h.p(0.5), p.p(0.5)):.2f}x | {h.blocked:.0f} s / {p.blocked:.0f} s | {h.aged + p.aged} |")

    last = max(http)
    p99 = http[last].p(0.99)
    ratios = [(n, ratio(h.p(0.5), p.p(0.5))) for n, (h, p) in sales.items()]
    met = all(r <= TARGET_RATIO for _, r in ratios if r == r)
    print(f"\nTargets: ownership p99 <= {TARGET_OWNERSHIP_P99_MS:g} ms at {last} clients: {ms(p99)} "
          f"({'met' if p99 <= TARGET_OWNERSHIP_P99_MS else 'NOT met'})"
          + (f"; at {args.paced:g} requests/s from {last} clients: {ms(paced[last].p(0.99))} "
             f"({'met' if paced[last].p(0.99) <= TARGET_OWNERSHIP_P99_MS else 'NOT met'})"
             if paced.get(last) is not None else "")
          + f"; purchase over HTTP within {TARGET_RATIO}x of in-process (medians): "
          + ", ".join(f"{r:.2f}x at {n}" for n, r in ratios) + f" ({'met' if met else 'NOT met'}).")
    print("CPU in % of one core over each row: gunicorn and its worker / the embedded database's process / this "
          "script (its client threads; in-process rows: the core calls). Latencies are as the client threads saw "
          "them, so they include the clients' own share of the CPUs. Errors: HTTP status and problem type, or the "
          "exception; rates, p50 and p99 are of the calls that succeeded. 'Engine held after': how long after a "
          "part the engine answered no read (a transaction whose client gave up at the 10 s bound holds it until aborted "
          "for age at 60 s).")
