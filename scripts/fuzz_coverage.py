"""How many edges of this crate's own code each fuzzing run reached, and when (docs/fuzzing.md).

    python3 scripts/fuzz_coverage.py runs/fuzz TARGET [TARGET ...] [--corpora DIR] [--last] [--lines] [--where]

libFuzzer's `cov` counts edges in the whole binary: the standard library, serde_json, dicom-rs,
zune-jpeg, hdf5-pure... A run can go on finding edges in a dependency's parser long after it
stopped finding any in ours. For each run in a target's log (scripts/fuzz.sh) this replays the
corpus as it stood at the run's start, at half its time and at its end (the files libFuzzer had
written by then, told by their modification time, plus the seed folders the run read) through the
target's fuzz binary with `-runs=0 -print_coverage=1`, and sums the covered edges of the
functions whose source lies in this crate's `src/` apart from all the others.

Those sums move by a few edges between two replays of the same files: a function's edges include
code inlined into it (hashbrown's probing, whose branches follow the process's random hash seed).
The last column is exact: libFuzzer lists every edge a reached function has not taken yet
(`UNCOVERED_PC`, at the innermost inlined source line), so the edges located in our `src/` that a
reached function took in the second half are how many fewer of its untaken edges lie there at the
end than at half time; a function of ours first reached in the second half counts apart.
`--lines` lists the source lines of those edges under the table. `--where` also replays the corpus
at three quarters of the run's time and says in which crates the edges reached in the last quarter
lie (by the source file of the function that holds them, so inlined code counts where it was
inlined; the total can differ a little from the difference of libFuzzer's `cov`).

scripts/fuzz.sh runs with `-reduce_inputs=0`, so no corpus file is deleted and the snapshots are
exact. Runs without it (libFuzzer's default replaces a file by a smaller one with the same
coverage) can miss in an early snapshot a file that existed then: an early count can only be too
low, which shows growth that was not there, never hides growth that was. `--corpora DIR` reads the corpora from a copy taken
between sessions (`cp -a runs/fuzz/corpus DIR`, which keeps the times) instead of the live folders.
"""

import argparse
import os
import re
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from fuzz_summary import finished, runs, window

ROOT = Path(__file__).resolve().parent.parent
BINARIES = ROOT / "fuzz/target/x86_64-unknown-linux-gnu/release"
FOUND = re.compile(r"INFO:\s+\d+ files found in (\S+)")
FUNC = re.compile(r"^COVERED_FUNC: hits: \d+ edges: (\d+)/(\d+) (.*) ((\S+):\d+)$")
UNTAKEN = re.compile(r"^\s+UNCOVERED_PC: ((\S+):\d+)$")
OURS = str(ROOT / "src") + "/"
CRATE = re.compile(r"/registry/src/[^/]+/(.+?)-\d+\.\d+\.\d+[^/]*/|/rustc/[^/]+/library/([^/]+)/")


def crate_of(path: str) -> str:
    """The crate a source file belongs to: ours, a dependency (without its version), or the
    standard library's part (core, alloc, std)."""
    if path.startswith(OURS):
        return "pneumoscope"
    if m := CRATE.search(path):
        return m[1] or m[2]
    return "other"


def folders(run):
    """The corpus folder (libFuzzer writes new inputs to the first) and the seed folders."""
    found = []
    for _, text in run:
        if (m := FOUND.search(text)) and m[1] not in found:
            found.append(m[1])
    return found[0], found[1:]


def snapshot(corpus: Path, until: float, into: Path):
    """Hard links to the corpus files written by `until`."""
    for entry in os.scandir(corpus):
        if entry.stat().st_mtime <= until:
            os.link(entry.path, into / entry.name)


def edges(target: str, inputs):
    """Covered edges of this crate's functions, of all functions, per function of ours, per
    reached function (any crate's) its untaken edges located in our `src/`, and per crate, after
    replaying `inputs`."""
    replay = subprocess.run(
        [BINARIES / target, "-runs=0", "-print_coverage=1", "-detect_leaks=0",
         "-rss_limit_mb=2048", "-timeout=5", *map(str, inputs)],
        capture_output=True, text=True, errors="replace", check=False,
    )
    ours = everything = 0
    functions, untaken, current, crates = {}, {}, None, Counter()
    for line in replay.stderr.splitlines():
        if m := FUNC.match(line):
            covered = int(m[1])
            everything += covered
            crates[crate_of(m[5])] += covered
            # Generic copies can share a name and line: the key tells them apart in order.
            current = next(k for n in range(len(untaken) + 1)
                           if (k := (m[3], m[4], m[2], n)) not in untaken)
            untaken[current] = Counter()
            if m[5].startswith(OURS):
                ours += covered
                functions[m[3]] = functions.get(m[3], 0) + covered
        elif (m := UNTAKEN.match(line)) and current and m[2].startswith(OURS):
            untaken[current][m[1].removeprefix(OURS)] += 1
    if not everything:
        raise SystemExit(f"{target}: the replay printed no coverage:\n{replay.stderr[-2000:]}")
    return ours, everything, functions, untaken, crates


def taken_in_our_source(at_half, at_end):
    """Source lines (in our `src/`) of the edges taken between two replays by functions reached in
    both, and our functions first reached in the second (their own edges there are not listed)."""
    taken = Counter()
    for f, lines in at_end.items():
        if f in at_half:
            taken += at_half[f] - lines
    new = sorted({f[0] for f in at_end if f not in at_half and f[1].startswith(OURS)})
    return taken, new


def report(target: str, run, corpora, lines=False, where=False):
    start, end = window(run)
    corpus, seeds = folders(run)
    if corpora:
        corpus = str(corpora / Path(corpus).name)

    def replay(until):
        with tempfile.TemporaryDirectory(dir=Path(corpus).parent) as held:
            snapshot(Path(corpus), until, Path(held))
            return edges(target, [held, *seeds])

    counts = [replay(until) for until in (start - 1, start + (end - start) / 2, end)]
    (ours0, all0, *_), (ours1, all1, at_half, untaken1, _), (ours2, all2, at_end, untaken2, crates) = counts
    grew = sorted(f for f in at_end if at_end[f] > at_half.get(f, 0))
    taken, new = taken_in_our_source(untaken1, untaken2)
    exact = f"{taken.total()}" + (f", and new functions of ours: {', '.join(new)}" if new else "")
    minutes = (end - start) / 60
    print(
        f"| `{target}` | {minutes:.0f} min | {ours0:,} → {ours1:,} → {ours2:,} "
        f"| {all0:,} → {all1:,} → {all2:,} | {', '.join(grew) or 'none'} | {exact} |",
        flush=True,
    )
    if lines and taken:
        spots = ", ".join(f"{line} ({n})" if n > 1 else line for line, n in sorted(taken.items()))
        print(f"\n`{target}`, edges in our source taken in the second half: {spots}\n", flush=True)
    if where:
        gained = crates - replay(start + (end - start) * 3 / 4)[4]
        spots = ", ".join(f"{crate} {n}" for crate, n in gained.most_common()) or "none"
        print(f"\n`{target}`, edges reached in the last quarter, by crate: {spots}\n", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the campaign's folder (runs/fuzz)")
    parser.add_argument("targets", nargs="+")
    parser.add_argument("--corpora", type=Path, help="a copy of the corpus folders to read instead")
    parser.add_argument("--last", action="store_true", help="only each target's last finished run")
    parser.add_argument("--lines", action="store_true", help="list where those exact edges lie")
    parser.add_argument("--where", action="store_true",
                        help="replay at three quarters too: the last quarter's new edges by crate")
    args = parser.parse_args()
    print(
        "| target | run | edges of this crate: start → half → end "
        "| all edges: start → half → end | our functions that gained edges in the second half "
        "| edges in our source taken in the second half (exact) |"
    )
    print("|---|---|---|---|---|---|")
    for target in args.targets:
        ended = [run for run in runs(args.folder / f"{target}.log") if finished(run)]
        for run in ended[-1:] if args.last else ended:
            report(target, run, args.corpora, args.lines, args.where)


if __name__ == "__main__":
    main()
