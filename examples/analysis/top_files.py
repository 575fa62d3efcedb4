"""Top files opened, by process: the bundled opensnoop run from Python for a while.

    sudo python examples/analysis/top_files.py --duration 10 --top 15

Events arrive as batches (numpy structured arrays). With pandas installed
(``pip install 'eunomia-bpf[data]'``) each batch becomes a DataFrame and one ``groupby``
does the counting; without it, a ``collections.Counter`` over the decoded columns gives
the same table.
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Iterable
from typing import Any

from eunomia_bpf import Program

Row = tuple[int, int, str, str]  # opens, failed, comm, file


def top_with_pandas(batches: Iterable[Any], top: int) -> list[Row]:
    import pandas as pd

    frames = [b.to_pandas() for b in batches]
    if not frames:
        return []
    df = pd.concat(frames, ignore_index=True)
    table = (df.assign(failed=df["ret"] < 0)
               .groupby(["comm", "fname"])
               .agg(opens=("ret", "size"), failed=("failed", "sum"))
               .sort_values(["opens", "failed"], ascending=False)
               .head(top))
    return [(int(r.opens), int(r.failed), str(comm), str(fname))
            for (comm, fname), r in table.iterrows()]


def top_plain(batches: Iterable[Any], top: int) -> list[Row]:
    opens: collections.Counter[tuple[str, str]] = collections.Counter()
    failed: collections.Counter[tuple[str, str]] = collections.Counter()
    for batch in batches:
        cols = batch.columns()
        for comm, fname, ret in zip(cols["comm"], cols["fname"], cols["ret"]):
            opens[comm, fname] += 1
            failed[comm, fname] += ret < 0
    ranked = sorted(opens.items(), key=lambda kv: (-kv[1], -failed[kv[0]]))[:top]
    return [(n, failed[key], key[0], key[1]) for key, n in ranked]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds to collect")
    parser.add_argument("--top", type=int, default=10, help="rows to print")
    parser.add_argument("--pid", type=int, default=0, help="only this process")
    parser.add_argument("--plain", action="store_true", help="do not use pandas")
    args = parser.parse_args(argv)
    try:
        import pandas  # noqa: F401
        use_pandas = not args.plain
    except ImportError:
        use_pandas = False

    with Program.open("opensnoop", arguments={"targ_pid": args.pid}) as prog:
        # keep only the batches: decoding waits until the run is over
        batches = [b for b in prog.batches(duration=args.duration) if b.source == "events"]
    events = sum(len(b) for b in batches)
    rows = top_with_pandas(batches, args.top) if use_pandas else top_plain(batches, args.top)

    print(f"{events} opens in {args.duration:g} s "
          f"(counted with {'pandas' if use_pandas else 'plain Python'})")
    print(f"{'OPENS':>6} {'FAILED':>6}  {'COMM':<16} FILE")
    for opens, bad, comm, fname in rows:
        print(f"{opens:>6} {bad:>6}  {comm:<16} {fname}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
