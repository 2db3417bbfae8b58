"""The fuzzing campaign's table (docs/fuzzing.md) from the logs scripts/fuzz.sh writes.

    python3 scripts/fuzz_summary.py runs/fuzz

One row per run (a log holds every run of its target, each ending with libFuzzer's final
statistics): executions, exec/s, time, coverage (libFuzzer's `cov`, edges reached) at the
start, at half the time and at the end, how long before the end the last new edge was found,
the growth of `cov` in the second half of the run, the new edges per million executions in its
last quarter (an estimate of how likely the next input is to reach new code: the quantity
species-discovery models of fuzzing, e.g. Böhme's STADS, watch fall towards zero), the
functions first reached in the second half (libFuzzer's NEW_FUNC lines, at most two per new
input; in brackets those of this crate rather than of a dependency or the standard library),
and how the run ended. A run has plateaued when
its last new edge came in its first half: the second half of its time found nothing. A second
table sums each target's campaign: its time, executions, best `cov` and the edges each doubling
of the time has been adding, and how long the campaign would have to run before a one-hour run
found nothing in its second half if it goes on growing that way.
"""

import math
import re
import sys
from pathlib import Path
from statistics import linear_regression

NEW_FUNC = re.compile(r"NEW_FUNC\[\d+/\d+\]: \S+ in (.*)")
STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+)")
DONE = re.compile(r"^Done (\d+) runs in (\d+) second")
# A run stopped by hand (SIGINT) still prints its final statistics: a finished run that short.
INTERRUPTED = "libFuzzer: run interrupted"
EXECUTED = re.compile(r"^stat::number_of_executed_units:\s+(\d+)")
FAILURES = {
    "ERROR: libFuzzer: out-of-memory": "out-of-memory",
    "ERROR: libFuzzer: timeout": "timeout",
    "ERROR: libFuzzer: deadly signal": "crash",
    "ERROR: AddressSanitizer": "crash",
    "ERROR: LeakSanitizer": "leak",
    "panicked at": "crash",
}


def runs(log: Path):
    """Each run of a log as a list of (unix time, text) lines."""
    # libFuzzer says "Running with" once per process: a run killed before its final statistics
    # (a machine restart) still ends where the next one begins.
    run, started = [], False
    for raw in log.read_text(errors="replace").splitlines():
        stamp, _, text = raw.partition(" ")
        if text.startswith("INFO: Running with"):
            if started:
                yield run
                run = []
            started = True
        if stamp.isdigit():
            run.append((int(stamp), text))
    if run:
        yield run


def finished(run) -> bool:
    """Whether a run printed its final statistics: its time ran out, or it was stopped by hand."""
    return any(DONE.match(text) or INTERRUPTED in text for _, text in run)


def window(run):
    """When a run's fuzzing started and ended, in Unix seconds."""
    # cargo's own lines (a build before the run) are stamped too: only libFuzzer's count.
    fuzzer = [t for t, text in run if text.startswith(("INFO:", "#", "Done", "stat::", "==", "SUMMARY"))]
    return min(fuzzer, default=run[0][0]), max(fuzzer, default=run[-1][0])


def summarise(target: str, run):
    start, end = window(run)
    points = []  # (time, executions, cov)
    executions, done, stopped, failure = 0, False, False, None
    replayed = None  # `cov` once the corpus was replayed (INITED), before any mutation
    artifact = ""
    for t, text in run:
        if m := STATUS.match(text):
            executions = int(m[1])
            points.append((t, executions, int(m[3])))
            if m[2] == "INITED":
                replayed = int(m[3])
        elif m := DONE.match(text):
            executions, done = int(m[1]), True
        elif m := EXECUTED.match(text):
            executions = int(m[1])
        elif INTERRUPTED in text:
            stopped = True
        for needle, what in FAILURES.items():
            if needle in text and failure is None:
                failure = what
        if "Test unit written to" in text:
            artifact = text.rsplit("/", 1)[-1]
    if not points:
        return None
    ended = failure or ("time" if done else "stopped" if stopped else "no end (killed, or still running)")
    seconds = max(end - start, 1)
    half = start + seconds / 2
    cov_half = max((c for t, _, c in points if t <= half), default=points[0][2])
    cov_end = points[-1][2]
    # cov never falls, so the last new edge came when it first reached its final value.
    last_new = next(t for t, _, c in points if c == cov_end)
    quiet = end - last_new
    growth = 100 * (cov_end - cov_half) / max(cov_half, 1)
    quarter = [(x, c) for t, x, c in points if t >= end - seconds / 4]
    rate = "—"
    if len(quarter) > 1 and quarter[-1][0] > quarter[0][0]:
        (x0, c0), (x1, c1) = quarter[0], quarter[-1]
        rate = f"{1e6 * (c1 - c0) / (x1 - x0):,.1f}"
    plateau = "yes" if quiet >= seconds / 2 else "no"
    late = [m[1] for t, text in run if t > half and (m := NEW_FUNC.search(text))]
    ours = sum(1 for where in late if where.startswith("pneumoscope::"))
    if ended not in ("time", "stopped"):
        plateau = "—"  # cut short: says nothing about coverage
    if artifact:
        ended = f"{ended} ({artifact})"
    cov_start = replayed if replayed is not None else points[0][2]
    return (
        f"| `{target}` | {executions:,} | {executions / seconds:,.0f} | {seconds / 60:.0f} min "
        f"| {cov_start:,} → {cov_half:,} → {cov_end:,} | {growth:.1f} % | {rate} | {len(late)} ({ours}) "
        f"| {quiet / 60:.0f} min "
        f"| {plateau} | {ended} |"
    )


def trend(target: str, target_runs):
    """The campaign so far for one target: total time and executions, best `cov`, and the edges each doubling of
    the fuzzing time has been adding (a least-squares fit of `cov` on the logarithm of the time,
    past the first 10 minutes). Coverage that grows like that never has a quiet second half."""
    elapsed, executions, best, points = 0, 0, 0, []
    for run in target_runs:
        start, end = window(run)
        run_executions = 0
        for t, text in run:
            if m := DONE.match(text) or EXECUTED.match(text):
                run_executions = int(m[1])
            if m := STATUS.match(text):
                run_executions = max(run_executions, int(m[1]))
                best = max(best, int(m[3]))
                if elapsed + t - start >= 600:
                    points.append((math.log(elapsed + t - start), best))
        elapsed += end - start
        executions += run_executions
    per_doubling, needed = "—", "—"
    if len({x for x, _ in points}) > 1:
        slope = linear_regression([x for x, _ in points], [y for _, y in points]).slope
        per_doubling = f"{slope * math.log(2):,.0f}"
        if slope > 0:
            needed = f"{quiet_after(slope, 3600) / 3600:,.0f} h"
    return f"| `{target}` | {elapsed / 60:.0f} min | {executions:,} | {best:,} | {per_doubling} | {needed} |"


def quiet_after(slope: float, run: float) -> float:
    """The fuzzing time t0 after which a run of `run` seconds is expected to find less than one
    edge in its second half, if `cov` goes on growing as `slope` × ln(time):
    slope × ln((t0 + run) / (t0 + run / 2)) < 1."""
    q = math.exp(1 / slope)
    return max(0.0, run * (1 - q / 2) / (q - 1))


def main():
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/fuzz")
    campaign = {log.stem: list(runs(log)) for log in sorted(folder.glob("*.log")) if log.stem != "tiny-run"}
    print(
        "| target | executions | exec/s | time | `cov` start → half → end | growth in the second half "
        "| new edges per 1 M executions, last quarter | new functions in the second half (ours) | last new edge, before the end | plateau "
        "| ended by |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for target, target_runs in campaign.items():
        for run in target_runs:
            row = summarise(target, run)
            if row:
                print(row)
    print()
    print(
        "| target | fuzzing time, all runs | executions, all runs | best `cov` | edges gained per doubling of the time "
        "| fuzzing before a 1-hour run would have a quiet second half, projected |"
    )
    print("|---|---|---|---|---|---|")
    for target, target_runs in campaign.items():
        print(trend(target, target_runs))


if __name__ == "__main__":
    main()
