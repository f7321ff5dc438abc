"""`python -m autograder <command>`: release, check, grade, similarity, gradescope, demo-class."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _release(args: argparse.Namespace) -> int:
    from autograder.release import release

    release(args.assignments, Path(args.to) if args.to else None)
    return 0


def _check(args: argparse.Namespace) -> int:
    from autograder.check import run

    return run(args.assignments, workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("release", help="generate release/ from source/ with nbgrader")
    p.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    p.add_argument("--to", help="write into this folder instead of release/")
    p.set_defaults(run=_release)

    p = commands.add_parser(
        "check", help="run every solution (must pass) and every stub (must fail), print a table"
    )
    p.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.set_defaults(run=_check)

    from autograder import democlass, grade, gradescope, similarity

    p = commands.add_parser("grade", help="grade a folder or zip of submissions")
    grade.add_grade_arguments(p)
    p.set_defaults(run=grade.run_grade)

    p = commands.add_parser(
        "similarity",
        help="which students share code beyond the starter code (similarity.csv, .html)",
        description=similarity.__doc__.split("\n\n")[0],
    )
    similarity.add_arguments(p)
    p.set_defaults(run=similarity.run)

    p = commands.add_parser(
        "gradescope", help="write a Gradescope autograder zip for an assignment"
    )
    gradescope.add_gradescope_arguments(p)
    p.set_defaults(run=gradescope.run_gradescope)

    p = commands.add_parser(
        "demo-class", help="grade a small class of honest students and cheaters (assignment 01)"
    )
    democlass.add_arguments(p)
    p.set_defaults(run=democlass.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["similarity"] and "-h" not in argv and "--help" not in argv:
        from autograder import similarity

        if not similarity.seed_is_fixed():  # same submissions, same numbers (see its docstring)
            return similarity.rerun_with_fixed_seed(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
