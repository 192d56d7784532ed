"""Numbers from the raw timings: percentiles, rates, the table, the JSON file and the PNG plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.load import Answer, EffectTimes


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds (nearest rank)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]

    return {
        "p50": round(rank(0.50) * 1000, 1),
        "p95": round(rank(0.95) * 1000, 1),
        "p99": round(rank(0.99) * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
        "n": len(ordered),
    }


def step_numbers(rate: float, answers: list[Answer], times: EffectTimes, complete: bool) -> dict[str, Any]:
    """One offered rate: API latency, effect latencies after the answer, achieved rates, and the drain."""
    ok = [a for a in answers if 200 <= a.status < 300]
    first = min(a.scheduled for a in answers)
    last_answer = max(a.answered for a in answers)
    effect_latency: dict[str, list[float]] = {"email": [], "notice": [], "log": [], "all": []}
    done_at: list[float] = []
    for a in ok:
        stamps = [getattr(times, kind).get(a.request_id) for kind in ("email", "notice", "log")]
        for kind, stamp in zip(("email", "notice", "log"), stamps, strict=True):
            if stamp is not None:
                effect_latency[kind].append(max(0.0, stamp - a.answered))
        if all(s is not None for s in stamps):
            finished = max(s for s in stamps if s is not None)
            effect_latency["all"].append(max(0.0, finished - a.answered))
            done_at.append(finished)
    last_effect = max(done_at) if done_at else last_answer
    numbers: dict[str, Any] = {
        "offered_per_s": rate,
        "requests": len(answers),
        "statuses": {str(s): sum(1 for a in answers if a.status == s) for s in sorted({a.status for a in answers})},
        "client_errors": {
            e: sum(1 for a in answers if a.error == e) for e in sorted({a.error for a in answers} - {""})
        },
        "api_ms": percentiles([a.latency for a in answers]),
        "effects_after_answer_ms": {k: percentiles(v) for k, v in effect_latency.items()},
        "api_answers_per_s": round(len(answers) / max(last_answer - first, 1e-9), 1),
        "all_effects_per_s": round(len(done_at) / max(last_effect - first, 1e-9), 1),
        "drain_s": round(last_effect - last_answer, 2),
        "complete": complete,
        "timeline": timeline(first, answers, done_at),
    }
    numbers["kept_up"] = bool(
        complete
        and len(ok) == len(answers)
        and numbers["drain_s"] <= 2.0
        and numbers["all_effects_per_s"] >= 0.9 * rate
    )
    return numbers


def timeline(first: float, answers: list[Answer], done_at: list[float]) -> dict[str, list[int]]:
    """Per second since the step's start: answers given, and cancellations with all three effects done."""
    span = int(max([a.answered for a in answers] + done_at) - first) + 1
    answered, effects = [0] * span, [0] * span
    for a in answers:
        answered[int(a.answered - first)] += 1
    for t in done_at:
        effects[int(t - first)] += 1
    return {"answered": answered, "all_effects": effects}


def table(results: dict[str, Any]) -> str:
    """The summary printed at the end of a run."""
    lines = ["", "== limits of the parts (this machine, now) =="]
    for part, numbers in results["limits"].items():
        lines.append(f"  {part:10} {numbers}")
    lines.append("")
    header = (
        f"  {'design':6} {'offered/s':>9} {'api/s':>7} {'effects/s':>9} {'api p50':>8} {'p99':>7} {'max':>7}"
        f" {'all-eff p50':>11} {'p99':>7} {'max':>7} {'drain s':>7} kept up"
    )
    for design in ("async", "sync"):
        lines += [f"== {design} design ==", header]
        for s in results.get(design, {}).get("steps", []):
            api, eff = s["api_ms"], s["effects_after_answer_ms"]["all"]
            lines.append(
                f"  {design:6} {s['offered_per_s']:>9} {s['api_answers_per_s']:>7} {s['all_effects_per_s']:>9}"
                f" {api['p50']!s:>8} {api['p99']!s:>7} {api['max']!s:>7} {eff['p50']!s:>11} {eff['p99']!s:>7}"
                f" {eff['max']!s:>7} {s['drain_s']:>7} {s['kept_up']}"
            )
    lines += ["", "== CPU per cancellation (ms, each process of the stack, middle of each step) =="]
    for design in ("async", "sync"):
        for s in results.get(design, {}).get("steps", []):
            cpu = s.get("cpu_ms_per_cancellation", {})
            parts = "  ".join(f"{part} {ms}" for part, ms in cpu.items() if part != "total" and ms >= 0.05)
            lines.append(f"  {design:6} {s['offered_per_s']:>9}/s  total {cpu.get('total')}  {parts}")
    lines.append("")
    for key, value in results.get("summary", {}).items():
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def save(results: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """Write results.json and plot.png into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "results.json"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    return json_path, plot(results, directory / "plot.png")


def plot(results: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for design, style in (("async", "-"), ("sync", "--")):
        for s in results.get(design, {}).get("steps", []):
            raw = s.get("raw_api_s", [])
            if raw:
                ordered = sorted(raw)
                left.plot(
                    [v * 1000 for v in ordered],
                    [(i + 1) / len(ordered) for i in range(len(ordered))],
                    style,
                    label=f"{design} API @ {s['offered_per_s']}/s",
                )
            eff = s.get("raw_all_effects_s", [])
            if design == "async" and eff:
                ordered = sorted(eff)
                left.plot(
                    [v * 1000 for v in ordered],
                    [(i + 1) / len(ordered) for i in range(len(ordered))],
                    ":",
                    label=f"all effects after answer @ {s['offered_per_s']}/s",
                )
    left.set_xscale("log")
    left.set_xlabel("latency (ms, log)")
    left.set_ylabel("fraction of cancellations")
    left.set_title("Latency distribution (CDF)")
    left.legend(fontsize=7)
    offset = 0
    for s in results.get("async", {}).get("steps", []):
        t = s["timeline"]
        xs = list(range(offset, offset + len(t["answered"])))
        right.plot(xs, t["answered"], "-", color="tab:blue")
        right.plot(xs, t["all_effects"], "-", color="tab:orange")
        right.hlines(s["offered_per_s"], offset, offset + len(xs) - 1, colors="grey", linestyles="dotted")
        offset += len(xs) + 1
    right.plot([], [], "-", color="tab:blue", label="API answers/s")
    right.plot([], [], "-", color="tab:orange", label="cancellations with all effects/s")
    right.plot([], [], ":", color="grey", label="offered rate")
    right.set_xlabel("seconds (steps one after another)")
    right.set_ylabel("per second")
    right.set_title("Async platform: throughput over time")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
