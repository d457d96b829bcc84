"""``python -m bench [--quick] [--only NAME ...] [--repeat N] [--no-s3]``: run the benchmarks.

Writes ``bench/out/report-<date>.md`` and the table in ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import sys

from .runner import FIGURES, Settings, prepare, run_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--only", action="append", choices=sorted(FIGURES), help="run only these figures"
    )
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure (median)")
    parser.add_argument(
        "--jobs", type=int, action="append", help="jobs-list sizes (default 1000 and 10000)"
    )
    parser.add_argument("--no-s3", action="store_true", help="skip the local S3 server")
    parser.add_argument(
        "--no-update", action="store_true", help="do not rewrite BENCHMARKS.md (report only)"
    )
    parser.add_argument(
        "--prepare", action="store_true", help="only generate and upload the data sets"
    )
    parser.add_argument("--out", help="report directory (default bench/out)")
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    if args.repeat:
        settings.repeat = args.repeat
    settings.s3 = not args.no_s3
    if args.jobs:
        settings.job_sizes = args.jobs
    if args.prepare:
        prepare(settings)
        return 0
    report = run_all(
        settings,
        only=args.only or sorted(FIGURES),
        update_benchmarks=not args.no_update and not args.quick,
        out_dir=args.out,
    )
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
