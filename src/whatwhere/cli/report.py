"""``whatwhere report RESULTS_DIR``: the report of a results directory, as HTML and Markdown.

    whatwhere report RESULTS_DIR [--out DIR]

``DIR/index.html`` (self-contained: figures embedded, no network, no JavaScript) and
``DIR/report.md``: every table against the published values, every figure, and who made every
number (:mod:`whatwhere.orchestration.report`).  ``whatwhere reproduce`` ends with one.
"""

from __future__ import annotations


def cmd_report(args) -> int:
    from whatwhere.orchestration.report import write_report

    out = write_report(args.results, args.out)
    print(f"wrote {out / 'index.html'} and {out / 'report.md'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="an HTML and Markdown report of a results directory",
        description="Write a self-contained HTML page (figures embedded, CSS inline, no network, "
        "no JavaScript) and the same content as Markdown: every table of the results "
        "directory (trainings, central accuracy, shift-accuracy maps, benchmarks) "
        "against the published values with the differences marked, every figure, and "
        "a 'made by' table for every number.",
    )
    p.add_argument(
        "results", metavar="RESULTS_DIR", help="a `whatwhere reproduce` directory, or any folder of result files"
    )
    p.add_argument("--out", help="the report folder (default RESULTS_DIR/report); replaced atomically")
    p.set_defaults(func=cmd_report)
