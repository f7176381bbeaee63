"""``python -m bench [--scenario NAME] [options of that scenario]``

Each scenario is a module of this package with ``add_arguments(parser)``,
``run(args)`` returning its figures, and ``report(figures)`` printing them and
returning what makes the run invalid. The bench exits 0 whether the bars are
met or not, 1 when a run is invalid (its work was not done, so its figures
mean nothing) and 2 when it cannot run (database, options).
"""

import argparse
import importlib
import os
import sys

import django

SCENARIOS = {
    "pipeline": "ingest_alerts with the aggregation pipeline after each batch, against COPY",
    "detection": "SIEM detection rules over log records, against a plain scan",
    "tracing": "the source tracing diagram of one large event",
    "pages": "the event list, event details and Alert page over 1,000,000 alerts",
}
# "all" runs them in this order: the pipeline scenario empties the tables
# the others add their data to.
ALL = ["pipeline", "detection", "tracing", "pages"]


def parse_arguments(argv=None) -> tuple[argparse.Namespace, list[str]]:
    choices = [*SCENARIOS, "all"]
    scenario_parser = argparse.ArgumentParser(add_help=False)
    scenario_parser.add_argument("--scenario", choices=choices, default="pipeline")
    known, _ = scenario_parser.parse_known_args(argv)
    names = ALL if known.scenario == "all" else [known.scenario]

    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the console against PostgreSQL (DATABASE_URL, a database "
        "whose name contains 'bench': scenarios empty and refill its tables).",
    )
    parser.add_argument(
        "--scenario",
        choices=choices,
        default="pipeline",
        help="; ".join(f"{name}: {text}" for name, text in SCENARIOS.items())
        + "; all: each in turn (default: pipeline)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (1)")
    for name in names:
        group = parser.add_argument_group(f"scenario {name}")
        scenario_module(name).add_arguments(group)
    return parser.parse_args(argv), names


def scenario_module(name: str):
    return importlib.import_module(f"bench.{name}")


def main(argv=None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "secops.settings")
    django.setup()

    from bench.database import BenchDatabaseError

    arguments, names = parse_arguments(argv)
    invalid = False
    for name in names:
        module = scenario_module(name)
        try:
            figures = module.run(arguments)
        except (BenchDatabaseError, ValueError) as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2
        problems = module.report(figures)
        for problem in problems:
            print(f"bench: invalid {name} run: {problem}", file=sys.stderr)
        invalid = invalid or bool(problems)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
