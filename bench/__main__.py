"""`python -m bench`: limits of the parts, the platform end to end at rising offered rates, the synchronous design."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench import limits
from bench.cpu import cpu_per_cancellation
from bench.environment import (
    RESULTS,
    Run,
    Tuning,
    seed_requests,
    start_services,
    start_slow_smtp,
    start_sync_app,
    tenant,
)
from bench.load import collect_effects, exactly_once, offer, wait_for_effects
from bench.report import save, step_numbers, table
from service_runtime.mongo import connect_mongo
from tests.support.mailpit import Mailpit
from tests.support.servers import LOCAL

CANCEL = "/v1/portal/job-requests/{id}/cancel"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--rates", default="25,50,75,100,125,150,200,300,500", help="offered cancellations/s, one step each"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument(
        "--sync-rates", default="25,50,75,100,125,150,200", help="offered rates for the synchronous design"
    )
    parser.add_argument("--prefetch", type=int, default=int(os.environ.get("PREFETCH", 200)))
    parser.add_argument("--smtp-connections", type=int, default=int(os.environ.get("SMTP_CONNECTIONS", 8)))
    parser.add_argument(
        "--consumer-nice", type=int, default=0, help="nice value of notifier and audit (default: as booking's)"
    )
    parser.add_argument(
        "--smtp-reply-delay-ms",
        type=float,
        default=0.0,
        help="delay every SMTP reply by this much (an SMTP provider, not a local catcher); both designs and step 1",
    )
    parser.add_argument("--skip-limits", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    return parser.parse_args()


async def design(
    name: str,
    run: Run,
    base_url: str,
    rates: list[float],
    seconds: float,
    dbs: dict[str, str],
    services: dict[int, str],
) -> dict[str, Any]:
    """Offer each rate in turn (a business per step) until one is not kept up; check every effect exactly once.

    `services` names the design's own processes by pid, for the CPU each part spends per cancellation.
    """
    mongo = connect_mongo(run.servers.mongodb_url, app_name="bench")
    mailpit = Mailpit(run.servers.mailpit_url)
    steps: list[dict[str, Any]] = []
    failures: dict[str, Any] = {}
    try:
        # aiohttp, not httpx: the load generator shares the two cores with what it measures, and httpx spent
        # ~5 ms of CPU per request here (26 % of the machine at 70 requests/s); aiohttp a fraction of that.
        connector = aiohttp.TCPConnector(limit=1000)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as http:
            for n, rate in enumerate([20.0, *rates]):  # the first, short step warms up and is not reported
                who = tenant(run, f"{name}{n}")
                count = int(rate * (2 if n == 0 else seconds))
                ids = await seed_requests(mongo, dbs["booking"], who, count)
                cpu: dict[str, float] = {}
                if n == 0:  # the warm-up: no CPU window
                    answers = await offer(http, CANCEL, ids, rate, who.headers)
                else:
                    answers, cpu = await asyncio.gather(
                        offer(http, CANCEL, ids, rate, who.headers), cpu_per_cancellation(rate, seconds, services)
                    )

                async def read(who: Any = who) -> Any:
                    return await collect_effects(
                        mongo,
                        mailpit,
                        business_id=who.business.id,
                        admin_email=who.business.admin_email,
                        notifier_db=dbs["notifier"],
                        audit_db=dbs["audit"],
                    )

                times, complete = await wait_for_effects(set(ids), read, timeout=60 + seconds)
                await asyncio.sleep(1.0)  # a late duplicate would show up here
                times = await read()
                unanswered = {a.request_id for a in answers if not 200 <= a.status < 300}
                problems = exactly_once(set(ids), times, unanswered=unanswered)
                if problems:
                    failures[f"{name}@{rate}"] = {
                        k: dict(list(v.items())[:5]) | {"count": len(v)} for k, v in problems.items()
                    }
                # Mailpit slows down as its store grows (54,000 messages after a day of runs): keep it small.
                await mailpit.delete_matching(f"cc:{who.business.admin_email}")
                if n == 0:
                    continue
                numbers = step_numbers(rate, answers, times, complete and not problems)
                numbers["cpu_ms_per_cancellation"] = cpu
                numbers["raw_api_s"] = [round(a.latency, 4) for a in answers]
                numbers["raw_all_effects_s"] = [
                    round(
                        max(times.email[a.request_id], times.notice[a.request_id], times.log[a.request_id])
                        - a.answered,
                        4,
                    )
                    for a in answers
                    if a.request_id in times.email and a.request_id in times.notice and a.request_id in times.log
                ]
                steps.append(numbers)
                print(
                    f"  {name} {rate}/s: api p99 {numbers['api_ms']['p99']} ms, all effects p99 "
                    f"{numbers['effects_after_answer_ms']['all']['p99']} ms, {numbers['all_effects_per_s']}/s, "
                    f"drain {numbers['drain_s']} s, kept up: {numbers['kept_up']}",
                    flush=True,
                )
                if not numbers["kept_up"]:
                    break
    finally:
        await mailpit.close()
        await mongo.close()
    return {"steps": steps, "exactly_once_failures": failures}


async def forget_mail(query: str, run: Run) -> None:
    """Delete the run's messages from Mailpit, which slows down as its store grows."""
    mailpit = Mailpit(run.servers.mailpit_url)
    try:
        await mailpit.delete_matching(query)
    finally:
        await mailpit.close()


async def drop_databases(run: Run) -> None:
    """Drop the run's databases (the results file keeps every number)."""
    mongo = connect_mongo(run.servers.mongodb_url, app_name="bench-cleanup")
    try:
        for part in ("booking", "notifier", "audit", "sync", "limits"):
            await mongo.drop_database(run.db(part))
    finally:
        await mongo.close()


def per_cancellation_limits(part_limits: dict[str, Any]) -> dict[str, float]:
    """Each part's limit in cancellations/s, from what one cancellation costs it (see bench/README.md)."""
    out: dict[str, float] = {}
    if "smtp" in part_limits:
        out["smtp (1 message)"] = part_limits["smtp"]["per_s"]
    if "rabbitmq_two_queues" in part_limits:  # one publish routed to two quorum queues, two deliveries and acks
        out["rabbitmq (1 publish to 2 queues)"] = part_limits["rabbitmq_two_queues"]["through_queue_per_s"]
    elif "rabbitmq" in part_limits:  # results of earlier runs: counted as two passes through one queue
        out["rabbitmq (2 queue passes)"] = part_limits["rabbitmq"]["through_queue_per_s"] / 2
    if "mongodb" in part_limits:
        ins, upd = part_limits["mongodb"]["insert_one_per_s"], part_limits["mongodb"]["conditional_update_per_s"]
        # Inserts: event, notice, email claim, sent-email record, log entry. By id (counted at the measured
        # conditional update's rate): projection read, projection replace, the relay's published mark.
        out["mongodb (5 inserts + 3 by-id ops)"] = round(1 / (5 / ins + 3 / upd), 1)
    return out


def shared_core_ceiling(part_limits: dict[str, Any], cores: int) -> dict[str, Any]:
    """The most cancellations/s these cores could give if they did nothing but the parts' own work for each.

    Every process shares the cores, so the parts' costs add up: what one cancellation needs of them, each at
    the CPU per operation (servers + client library) measured in step 1, and nothing else: an HTTP request
    answered with no work, no auth, no composing of the email, no service logic, no logging. The writes at their
    batched cost (the services' group writes), the projection's read and replace one at a time (they can't be
    batched), the relay's marks left out. A platform can't beat this; a target above it is out of reach on this
    machine, however the code is written.
    """
    needs: dict[str, float] = {}
    if "smtp" in part_limits:
        needs["smtp: 1 message"] = part_limits["smtp"]["cpu_ms_per_message"]["total"]
    if "rabbitmq_two_queues" in part_limits:
        needs["rabbitmq: 1 publish to 2 queues"] = part_limits["rabbitmq_two_queues"]["cpu_ms_per_message"]["total"]
    if "http" in part_limits:
        needs["http: 1 request, no work"] = part_limits["http"]["cpu_ms_per_request"]["total"]
    if "mongodb" in part_limits:
        cpu = part_limits["mongodb"]["cpu_ms_per_document"]
        needs["mongodb: 5 batched inserts"] = 5 * cpu["insert_batched"]["total"]
        needs["mongodb: 1 find + 1 conditional update by id"] = (
            cpu["find_by_id"]["total"] + cpu["conditional_update"]["total"]
        )
    if len(needs) < 5:
        return {}
    total = sum(needs.values())
    return {
        "cpu_ms_per_cancellation": {k: round(v, 3) for k, v in needs.items()} | {"total": round(total, 3)},
        "cores": cores,
        "cancellations_per_s": round(cores * 1000 / total, 1),
    }


async def main() -> int:
    args = arguments()
    slow_smtp, servers = (
        start_slow_smtp(LOCAL, args.smtp_reply_delay_ms) if args.smtp_reply_delay_ms > 0 else (None, LOCAL)
    )
    run = Run(servers=servers)
    tuning = Tuning(prefetch=args.prefetch, smtp_connections=args.smtp_connections, consumer_nice=args.consumer_nice)
    results: dict[str, Any] = {
        "run": run.name,
        "started": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "tuning": tuning.__dict__,
        "smtp_reply_delay_ms": args.smtp_reply_delay_ms,
        "step_seconds": args.seconds,
    }
    print(f"bench run {run.name} (vhost and databases of its own)", flush=True)
    run.create_vhost()
    procs: dict[str, Any] = {}
    try:
        if not args.skip_limits:
            print("step 1: limits of the parts", flush=True)
            mongo = connect_mongo(run.servers.mongodb_url, app_name="bench-limits")
            results["limits"] = {
                "rabbitmq": await limits.rabbitmq(run.amqp_url, prefetch=tuning.prefetch),
                "rabbitmq_two_queues": await limits.rabbitmq(run.amqp_url, queues=2, prefetch=tuning.prefetch),
                "mongodb": await limits.mongodb(mongo, run.db("limits")),
                "smtp": await limits.smtp(
                    run.servers.smtp_host, run.servers.smtp_port, connections=tuning.smtp_connections
                ),
                "http": await limits.http(run.log_dir()),
            }
            await mongo.close()
            await forget_mail("cc:admin-limits@bench.example", run)
        else:
            results["limits"] = {}
        print("step 2: the platform end to end (services as processes)", flush=True)
        procs.update(start_services(run, tuning))
        dbs = {"booking": run.db("booking"), "notifier": run.db("notifier"), "audit": run.db("audit")}
        rates = [float(r) for r in args.rates.split(",")]
        services = {proc.process.pid: name for name, proc in procs.items() if proc.process is not None}
        results["async"] = await design("async", run, procs["booking"].url, rates, args.seconds, dbs, services)
        for proc in procs.values():
            proc.stop()
        if not args.skip_sync:
            print("step 4: the synchronous design", flush=True)
            sync_proc, sync_url = start_sync_app(run, tuning)
            procs["sync"] = sync_proc
            sync_dbs = {"booking": run.db("sync"), "notifier": run.db("sync"), "audit": run.db("sync")}
            sync_rates = [float(r) for r in args.sync_rates.split(",")]
            results["sync"] = await design(
                "sync", run, sync_url, sync_rates, args.seconds, sync_dbs, {sync_proc.pid: "sync endpoint"}
            )
            sync_proc.terminate()
            sync_proc.wait(timeout=30)
    finally:
        for proc in procs.values():
            if hasattr(proc, "stop"):
                proc.stop()
            elif proc.poll() is None:
                proc.terminate()
        run.delete_vhost()
        await drop_databases(run)
        if slow_smtp is not None:
            slow_smtp.terminate()
    results["summary"] = summary(results)
    json_path, png_path = save(results, RESULTS / run.name)
    print(table(results))
    print(f"\nresults: {json_path}\nplot:    {png_path}")
    failures = {
        d: results[d]["exactly_once_failures"]
        for d in ("async", "sync")
        if results.get(d, {}).get("exactly_once_failures")
    }
    if failures:
        print(f"\nFAILED: effects missing or duplicated: {failures}", file=sys.stderr)
        return 1
    return 0


def summary(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    steps = results.get("async", {}).get("steps", [])
    kept = [s for s in steps if s["kept_up"]]
    sustained = max((s["all_effects_per_s"] for s in kept), default=0.0)
    out["sustained_cancellations_per_s"] = sustained
    at200 = next((s for s in steps if s["offered_per_s"] == 200), None)
    if at200:
        out["at_200_api_p99_ms"] = at200["api_ms"]["p99"]
        out["at_200_all_effects_p99_ms"] = at200["effects_after_answer_ms"]["all"]["p99"]
    part = per_cancellation_limits(results.get("limits", {}))
    if part:
        bottleneck = min(part, key=lambda k: part[k])
        out["part_limits_in_cancellations_per_s"] = part
        out["bottleneck"] = bottleneck
        out["ratio_to_bottleneck"] = round(sustained / part[bottleneck], 2) if part[bottleneck] else None
    ceiling = shared_core_ceiling(results.get("limits", {}), results["machine"]["cpus"] or 1)
    if ceiling:
        out["ceiling_of_the_parts_on_shared_cores"] = ceiling
        out["ratio_to_ceiling"] = round(sustained / ceiling["cancellations_per_s"], 2)
    sync_steps = {s["offered_per_s"]: s for s in results.get("sync", {}).get("steps", [])}
    ratios = {}
    for s in steps:
        other = sync_steps.get(s["offered_per_s"])
        if other:
            ratios[str(s["offered_per_s"])] = {
                "async_api_p50_ms": s["api_ms"]["p50"],
                "sync_api_p50_ms": other["api_ms"]["p50"],
                "async_api_p99_ms": s["api_ms"]["p99"],
                "sync_api_p99_ms": other["api_ms"]["p99"],
                "p99_ratio_sync_over_async": round(other["api_ms"]["p99"] / max(s["api_ms"]["p99"], 0.1), 1),
            }
    out["api_latency_vs_sync"] = ratios
    out["sync_sustained_per_s"] = max(
        (s["all_effects_per_s"] for s in sync_steps.values() if s["kept_up"]), default=0.0
    )
    return out


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
