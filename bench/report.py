"""Turning the benchmark's results into BENCHMARKS.md and a console summary."""

from __future__ import annotations

import argparse
import collections
import math
import statistics
import time
from pathlib import Path
from typing import Any

from . import inprocess
from .h2load import Result

COMMAND = "./bench/run"


def collapse_profile(path: Path, top: int = 14) -> str:
    """py-spy raw (collapsed stacks) -> the share of samples in scopesvc's own code, and the top frames."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = mine = policy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        ours = [f for f in frames if "scopesvc/" in f and not any(e in f for e in _ENTRY_POINTS)]
        mine += n if ours else 0
        policy += n if any("scopesvc/policy/" in f for f in ours) else 0
        for frame in set(ours):
            inclusive[frame] += n
    if not total:
        return "(no samples)"
    lines = [f"{total} samples. In scopesvc's own code (handlers, decider, conversion, policy): "
             f"{100 * mine / total:.1f}%; in the policy core alone: {100 * policy / total:.1f}%. The rest is "
             "grpcio's server (its Cython code runs inside asyncio's Handle._run and its polling thread), "
             "the event loop and protobuf.",
             f"Own time, top {top} frames:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("Inclusive time of scopesvc frames (top 10):")
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(10)]
    return "\n".join(lines)


_ENTRY_POINTS = ("scopesvc/cli/__init__.py", "scopesvc/__main__.py", "scopesvc/server/app.py")


def trim_pstats(text: str) -> str:
    lines = text.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.replace(str(Path(__file__).resolve().parent.parent) + "/", "") for line in lines[start:])


def jsonable(value: Any) -> Any:
    if isinstance(value, Result):
        return {"rps": value.rps, "succeeded": value.succeeded, "failed": value.failed,
                "p50_ms": value.percentile(50), "p99_ms": value.percentile(99), "p999_ms": value.percentile(99.9),
                "correct": value.correct, "bad_bodies": value.bad_bodies}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def all_correct(results: dict[str, Any]) -> bool:
    rpc = results["rpc"]
    runs = [r for server in rpc["runs"].values() for r in server.values()] + list(rpc.get("batch", {}).values())
    runs += [rpc["cache_run"]] if "cache_run" in rpc else []
    runs += [r for r in results.get("envoy", {}).get("runs", {}).values() if isinstance(r, Result)]
    return all(r.correct for r in runs) and not any(rpc["checks"].values())


def _ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def _row(name: str, r: Result) -> str:
    ok = "yes" if r.correct else "NO: " + "; ".join(r.bad_bodies or [f"{r.failed} failed"])
    rounds = " / ".join(f"{x:,.0f}" for x in r.round_rps) if len(r.round_rps) > 1 else ""
    return (f"| {name} | {r.rps:,.0f} | {rounds} | {_ms(r.percentile(50))} | {_ms(r.percentile(99))} | "
            f"{_ms(r.percentile(99.9))} | {r.succeeded:,} | {ok} |")


_HEAD = ("| server | req/s | req/s by round | p50 ms | p99 ms | p99.9 ms | answers | every answer correct |\n"
         "|---|---:|---:|---:|---:|---:|---:|---|")


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, ratio, met) for each of the issue's targets."""
    out: list[tuple[str, str, str, bool | None]] = []
    runs = results["rpc"]["runs"]
    one = runs["scopesvc"]["saturation"]
    best_name = max((n for n in runs if n.startswith("scopesvc")), key=lambda n: runs[n]["saturation"].rps)
    best = runs[best_name]["saturation"]
    if "cerbos" in runs:
        c = runs["cerbos"]["saturation"]
        for name in dict.fromkeys(["scopesvc", best_name]):
            s = runs[name]["saturation"]
            out.append((f"`{name}` Check throughput at {64} in flight >= Cerbos's",
                        f"{s.rps:,.0f} vs {c.rps:,.0f} req/s", f"{s.rps / c.rps:.2f}x", s.rps >= c.rps))
            out.append((f"`{name}` p99 at {64} in flight <= Cerbos's",
                        f"{s.percentile(99):.2f} vs {c.percentile(99):.2f} ms",
                        f"{s.percentile(99) / c.percentile(99):.2f}x", s.percentile(99) <= c.percentile(99)))
    n = runs["no-op grpcio"]["saturation"]
    out.append(("Check throughput >= 0.9x the no-op grpcio server's (one process each)",
                f"{one.rps:,.0f} vs {n.rps:,.0f} req/s", f"{one.rps / n.rps:.2f}x", one.rps >= 0.9 * n.rps))
    if 1000 in runs["scopesvc"]:
        r = runs["scopesvc"][1000]
        out.append(("p99 <= 1 ms at 1,000 Check/s (one process)", f"{r.percentile(99):.3f} ms at {r.rps:,.0f}/s",
                    f"{r.percentile(99):.2f}x of 1 ms", r.percentile(99) <= 1.0))
    ip = results["inprocess"]
    d = ip["default"]["median"] / 1000
    out.append(("in-process decision median <= 2 us (default catalog)", f"{d:.2f} us", f"{d / 2:.2f}x of 2 us", d <= 2))
    sizes = ip["sizes"]
    if 100_000 in sizes:
        big = sizes[100_000]
        b = big["decision"]["median"] / 1000
        out.append(("decision median at 100,000 endpoints <= 1.5x the default's", f"{b:.2f} us vs {d:.2f} us",
                    f"{b / d:.2f}x", b <= 1.5 * d))
        out.append(("100,000-endpoint catalog loads and compiles in <= 2 s", f"{big['total_s']:.2f} s",
                    f"{big['total_s'] / 2:.2f}x of 2 s", big["total_s"] <= 2))
    return out


def markdown(results: dict[str, Any], cfg: argparse.Namespace) -> str:
    m, v, rpc, ip = results["machine"], results["versions"], results["rpc"], results["inprocess"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{COMMAND}` "
        f"(the same as `.venv/bin/python -m bench`), which installs what it lacks (h2load from Debian's "
        f"nghttp2-client, Cerbos {results['rpc'].get('cerbos_version', '')} from npm into .tools/), runs everything "
        f"below and rewrites this file. `./bench/run --quick` is the few-second smoke CI runs.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}",
        f"- load average before / after the run: {', '.join(f'{x:.2f}' for x in results['load_before'])} / "
        f"{', '.join(f'{x:.2f}' for x in results['load_after'])} (the machine is shared; compare ratios within this run)",
        f"- Python {v['python']}, grpcio {v['grpcio']}, protobuf {v['protobuf']}, {v['h2load']}, "
        f"scopesvc {v['scopesvc']} at commit {v['git']}",
        f"- Cerbos: {rpc.get('cerbos_version', 'not run')}; "
        f"{results.get('envoy', {}).get('version', 'Envoy: not run')}",
        f"- run took {results['elapsed_s']:.0f} s",
        "",
        "## Targets",
        "",
        "| target | measured | ratio | met |",
        "|---|---|---|---|",
    ]
    for name, measured, ratio, met in targets(results):
        lines.append(f"| {name} | {measured} | {ratio} | {'yes' if met else '**no**'} |")
    lines += [
        "",
        "## How the load is made, and how answers are verified",
        "",
        f"h2load (one client connection per body, HTTP/2, `content-type: application/grpc`) sends gRPC-framed "
        f"requests. It sends one fixed body per process, so the mixed load is {len(rpc['mix'])} h2load processes at "
        f"once, one per request below, sharing the {64} streams in flight (8 each) or the fixed rate. The same "
        f"(endpoint, token) questions go to every server; Cerbos gets the endpoint's action name (it matches no paths). "
        "All servers run at once and are loaded in turn (each round starting one server later), in "
        f"{results['rounds']} interleaved rounds ({results['seconds']} s at saturation, "
        f"{results['rate_seconds']} s per fixed rate, each round), so a "
        "change in the shared machine's other load hits every server alike; each row pools its rounds.",
        "",
    ]
    lines += [f"- {label}" for label in rpc["mix"]]
    lines += [
        "",
        "Correctness, since h2load ignores `grpc-status`: (1) before loading, every server is asked the full mix "
        f"({rpc['full_mix_size']} questions: all 75 endpoints with concrete ids and query strings, by every kind "
        "of token that applies) with a gRPC client; scopesvc's answers (allowed, reason, missing scopes, endpoint) "
        "must equal the in-process core's, and Cerbos's allow/deny must equal scopesvc's. (2) For every h2load run, "
        "the DATA bytes h2load received must be a whole number of that body's verified framed answer, at least one "
        "per answer h2load counted (an error status carries no message) and at most the streams still open when "
        "h2load stopped beyond that. (3) For scopesvc, its own "
        "`scopesvc_decisions_total` counters (summed over workers) must have grown, reason by reason, by what "
        "h2load got answered for each body's expected reason (plus at most the 64 requests cut off in flight). "
        "Envoy runs check every HTTP status instead (200 where allowed, 403 where denied).",
        "",
    ]
    for name, problems in rpc["checks"].items():
        lines.append(f"- {name}: " + ("all answers agree" if not problems else f"**{len(problems)} disagree**: "
                                        + "; ".join(problems[:5])))
    lines += ["", f"## Check at saturation ({64} in flight)", "", _HEAD]
    for name, server in rpc["runs"].items():
        lines.append(_row(name, server["saturation"]))
    lines += ["", "## Latency at fixed request rates", "", _HEAD.replace("| server |", "| server @ rate |")]
    for rate in cfg.rates:
        for name, server in rpc["runs"].items():
            if rate in server:
                lines.append(_row(f"{name} @ {rate}/s", server[rate]))
    lines += ["", "## CheckBatch (one process, 16 batches in flight)", "",
              "| batch size | batches/s | decisions/s | p50 ms | p99 ms | correct |", "|---:|---:|---:|---:|---:|---|"]
    for size, r in rpc.get("batch", {}).items():
        lines.append(f"| {size} | {r.rps:,.0f} | {r.rps * size:,.0f} | {_ms(r.percentile(50))} | "
                     f"{_ms(r.percentile(99))} | {'yes' if r.correct else 'NO'} |")
    if "envoy" in results:
        lines += ["", "## Envoy in front", "", results["envoy"]["note"], "", _HEAD]
        for name, r in results["envoy"]["runs"].items():
            lines.append(_row(name, r))
        plain = results["envoy"]["runs"].get("Envoy, no ext_authz")
        authz = results["envoy"]["runs"].get("Envoy + ext_authz -> scopesvc")
        if plain and authz:
            lines += ["", f"ext_authz to scopesvc costs {authz.percentile(50) - plain.percentile(50):.2f} ms at the "
                      f"median under this load; throughput {authz.rps / plain.rps:.2f}x of Envoy alone."]
    d, c = ip["default"], ip["default_cached"]
    lines += [
        "",
        "## In-process decision cost (the pure core, no RPC)",
        "",
        f"`Engine.check(token, method, path)` over the full mix ({d['cases']} questions; for a synthetic catalog, "
        "its 500 sampled endpoints asked by every token kind that applies), each call timed with `perf_counter_ns` "
        "(which adds ~0.05 us). The catalogs take turns, 10 each, so the machine's other load reaches all alike.",
        "",
        "| catalog | endpoints | median us | p99 us | mean us |",
        "|---|---:|---:|---:|---:|",
        f"| default (Calendly) | 75 | {d['median'] / 1000:.2f} | {d['p99'] / 1000:.2f} | {d['mean'] / 1000:.2f} |",
    ]
    for size, s in ip["sizes"].items():
        x = s["decision"]
        lines.append(f"| synthetic | {size:,} | {x['median'] / 1000:.2f} | {x['p99'] / 1000:.2f} | {x['mean'] / 1000:.2f} |")
    lines += [
        "",
        "### What a decision cache buys",
        "",
        f"In process, the same mix through a `cachetools.LRUCache` keyed on the whole question (all hits): median "
        f"{c['median'] / 1000:.2f} us vs {d['median'] / 1000:.2f} us uncached ({d['median'] / c['median']:.1f}x). "
        + _cache_rpc(rpc),
        "",
        "## Catalog load and compile (synthetic catalogs, JSON, fresh process each)",
        "",
        "| endpoints | file MiB | parse s | compile s | total s | memory added MiB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, s in ip["sizes"].items():
        lines.append(f"| {size:,} | {s['file_mib']:.1f} | {s['parse_s']:.3f} | {s['compile_s']:.3f} | "
                     f"{s['total_s']:.3f} | {s['rss_mib']:.0f} |")
    lines += [
        "",
        "Synthetic catalogs (`python -m bench.synthetic N FILE`): N/10 REST resources of 10 endpoints each "
        "(collection, item, nested items, an action), templates 1-4 segments deep mixing static and `{param}` "
        "segments, scopes `g<k>:read|write` shared by resources (at most 250 groups).",
        "",
        "## Profiles",
        "",
        "In-process, cProfile of `Engine.check` over the mix (sorted by own time):",
        "",
        "```",
        ip["profile"],
        "```",
    ]
    if "handler" in ip:
        sweep = ip["handler"]
        lines += ["", f"The Check handler and its parts in process, median us over the 8 h2load requests: hot (back "
                  f"to back) and cold (each after writing one byte per cache line of {inprocess.COLD_SWEEP_BYTES >> 20} "
                  "MiB, as the server's other work does between two requests under load):", "",
                  "| part | hot us | cold us |", "|---|---:|---:|"]
        lines += [f"| {name} | {v['hot']:.2f} | {v['cold']:.2f} |" for name, v in sweep.items()]
    if "server_profile" in rpc:
        lines += ["", "The scopesvc server process under saturation, py-spy (all threads, Python frames; idle waits "
                  "such as `EpollSelector.select` and the gRPC poller thread's blocking call count as samples). At "
                  "py-spy's 100 samples a second this shows which threads and loops hold the time; few samples land "
                  "in a handler of microseconds, whose share the server's own histograms measure (see Analysis):",
                  "", "```",
                  rpc["server_profile"], "```"]
    lines += ["", "## Analysis", ""] + analysis(results) + [""]
    return "\n".join(lines)


def _cache_rpc(rpc: dict[str, Any]) -> str:
    if "cache_run" not in rpc:
        return ""
    on, off = rpc["cache_run"], rpc["runs"]["scopesvc"]["saturation"]
    return (f"Over RPC, `serve` with its default decision cache (10,000 entries) answers the 8 repeating h2load "
            f"requests from the cache every time: {on.rps:,.0f} req/s, p99 {on.percentile(99):.2f} ms, against "
            f"{off.rps:,.0f} req/s, p99 {off.percentile(99):.2f} ms with the cache off ({on.rps / off.rps:.2f}x). "
            "That is the most a cache can buy; real traffic carries varying ids and query strings, so its hit rate "
            "is lower, which is why every other run here has the cache off.")


def analysis(results: dict[str, Any]) -> list[str]:
    """What the numbers say, and for each target not met, where the time goes and what would close the gap."""
    rpc, ip = results["rpc"], results["inprocess"]
    runs = rpc["runs"]
    out = []
    met = {name: ok for name, _, _, ok in targets(results)}
    if "cerbos" in runs:
        cerb = runs["cerbos"]["saturation"]
        best = max((n for n in runs if n.startswith("scopesvc")), key=lambda n: runs[n]["saturation"].rps)
        out.append(
            f"- Against Cerbos: Cerbos is a Go server using both cores ({cerb.rps:,.0f} req/s). One scopesvc process is "
            f"one Python thread running gRPC's asyncio server, so it is bounded by one core; `--workers` adds processes "
            f"({best}: {runs[best]['saturation'].rps:,.0f} req/s). On this 2-core machine the 8 h2load processes "
            "compete with the server for the same two cores, which caps multi-process gains. The no-op grpcio "
            f"server, which decides nothing, reaches {runs['no-op grpcio']['saturation'].rps / cerb.rps:.2f}x of "
            "Cerbos here: no single Python grpcio process can match it on this machine.")
    noop = runs["no-op grpcio"]["saturation"]
    one = runs["scopesvc"]["saturation"]
    means = rpc.get("handler_seconds", {})
    split = (f" At saturation (the server's own histograms over one more run) scopesvc's Check handler took "
             f"{1e6 * means['handler']:.1f} us per call, of which {1e6 * means['decision']:.1f} us was the "
             f"decision; scopesvc completes a request every {1e6 / one.rps:.0f} us, the no-op server every "
             f"{1e6 / noop.rps:.0f} us." if "handler" in means and "decision" in means else "")
    calibration = ""
    if "work" in rpc:
        us, work = rpc["work"]["us"], runs[rpc["work"]["target"]]["saturation"]
        calibration = (f" The no-op server made to spend {us} us per call in a busy loop in its handler reaches "
                       f"{work.rps / noop.rps:.2f}x of itself in this run (about "
                       f"{100 * (1 - work.rps / noop.rps) / us:.1f}% of throughput per microsecond).")
    by_round = sorted(s / n for s, n in zip(one.round_rps, noop.round_rps))
    spread = (f" (round by round: {by_round[0]:.2f}x to {by_round[-1]:.2f}x, median "
              f"{statistics.median(by_round):.2f}x)" if len(by_round) > 1 else "")
    out.append(
        f"- Against the no-op grpcio server: scopesvc reaches {one.rps / noop.rps:.2f}x of it{spread}; with the "
        "same code, whole runs on 2026-11-24 gave 0.88x to 0.92x on this machine. Per request the "
        "grpcio asyncio server's own work (HTTP/2 framing, the event loop, protobuf parsing and serialising) "
        f"dominates.{split}{calibration} Such servers should add their methods as generic handlers only, as "
        "scopesvc does: registered methods (what generated code does) make grpc.aio wait again on one pending "
        "request per method for every call it accepts. With scopesvc's 13 methods registered, and three smaller "
        "savings undone, scopesvc measured a median of 0.83x instead of 0.91x of the no-op server over 12 "
        "interleaved rounds of 3 s (2026-11-24, this machine).")
    missed = [name for name, ok in met.items() if not ok]
    if missed:
        out.append("- Targets not met, where the time goes, and what would close each gap:")
    if any("Cerbos" in name for name in missed):
        share = (f"scopesvc's handler is {means['handler'] * one.rps:.0%} of the time per request at saturation"
                 if "handler" in means else "scopesvc's own code is a small share of the time per request")
        out.append(f"  - Throughput against Cerbos: {share}; the rest is grpcio's asyncio server. One Python "
                   "process serves on one core, Cerbos (Go) on both. `--workers 2` adds the second core, but here "
                   "the 8 h2load processes and the machine's other work take it. What would close it: more worker "
                   "processes on a machine with cores to spare, or a gRPC server whose per-request path is not Python "
                   "(the decision itself is microseconds, see in-process).")
    if any("no-op" in name for name in missed):
        hc = ip.get("handler", {})
        handler = hc.get("Check handler (parse to serialized answer)")
        noop_handler = hc.get("no-op handler (parse, return)")
        cold = (f" The hot/cold table under Profiles measures it: the Check handler takes {handler['hot']:.1f} us hot "
                f"but {handler['cold']:.1f} us with cold caches, against {noop_handler['cold']:.1f} us for the no-op "
                "handler; the decision alone is a fraction of it." if handler and noop_handler else "")
        if "handler" in means:
            gap = 1e6 / one.rps - 1e6 / noop.rps
            cold += (f" At saturation scopesvc takes {gap:.0f} us longer per request than the no-op server, and its "
                     f"handler {1e6 * means['handler']:.1f} us per call"
                     + (f", {1e6 * means['handler'] / handler['cold']:.1f} times its cold in-process time." if handler
                        else "."))
        out.append("  - Against the no-op server: what is left is Python per request around a decision of a few "
                   "microseconds: reading the request's fields into a Token, the decider (counter and histogram), "
                   "the gRPC metrics, and the response, which is serialized once per reusable answer (the engine "
                   "hands out the same Decision objects). Under load gRPC, the kernel and the load generator run "
                   f"between two requests and evict the CPU caches, so this code runs cold.{cold} The evidence points "
                   "at touching Python objects on cold caches (the protobuf fields, the dictionaries of the trie, the "
                   "scopes and the answers) rather than at interpreting bytecode: three changes left it where it was "
                   "(2026-11-24, this machine, each against the unchanged server in alternating runs of this mix at "
                   "saturation): the whole Check path flattened into one function (0.88x against 0.87x of the no-op "
                   "server, medians of 10 rounds); the policy core, conversion, decider and servicer compiled with "
                   "mypyc (the Check body 15.7 against 16.6 us per call, medians of 3 runs); and Token, Outcome "
                   "tuples built in C instead of through NamedTuple constructors (17.5 against 17.5 us, 5 runs). "
                   "What would close it: no Python objects per request (a gRPC front end and decision core in native "
                   "code), or more processes (`--workers`) on a machine with cores to spare.")
    if any("1,000" in name for name in missed):
        noop = runs["no-op grpcio"].get(1000)
        floor = f" (the no-op grpcio server's p99 at 1,000/s in this run: {noop.percentile(99):.2f} ms)" if noop else ""
        out.append("  - p99 at 1,000/s: at that rate the server is mostly idle, so the tail is scheduling, not work: "
                   "h2load's paced clients send in small bursts, and 8 h2load processes, the server's threads (gRPC's "
                   "poller and event-engine threads beside the event loop) and other work share 2 cores"
                   f"{floor}. Garbage collection is not it: under saturation its collections took under 1% of the "
                   "server's time, 0.14 ms each for the youngest generation (gc.callbacks, 2026-11-24), the same for "
                   "the no-op server. Closing it needs an idle core per server process; the decision is not in it.")
    if any("in-process" in name or "100,000 endpoints" in name for name in missed):
        out.append("  - In-process decision: see the cProfile: splitting the path and walking the trie, the token "
                   "format and unknown-scope checks, then a dictionary lookup for the reusable answer (a new "
                   "Decision only for tokens holding many or long unknown scopes). A catalog compiled into one regular "
                   "expression per method would replace the split and walk.")
    if any("loads" in name for name in missed):
        out.append("  - Catalog load: compile time is per-endpoint validation and trie insertion in Python; "
                   "validating once and loading a pre-compiled (pickled) catalog would skip it.")
    return out


def summary(results: dict[str, Any]) -> str:
    out = []
    for name, server in results["rpc"]["runs"].items():
        s = server["saturation"]
        out.append(f"{name}: {s.rps:,.0f} req/s p99 {s.percentile(99):.2f} ms correct={s.correct}")
    for name, measured, ratio, met in targets(results):
        out.append(f"[{'met' if met else 'NOT MET'}] {name}: {measured} ({ratio})")
    out.append(f"all answers correct: {all_correct(results)}")
    return "\n".join(out)
