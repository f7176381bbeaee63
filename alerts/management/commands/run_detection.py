from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from alerts import detection_run
from secops.models import Organisation


class Command(BaseCommand):
    help = (
        "Run the enabled SIEM detection rules now over the logs received since their last "
        "run (what the periodic job does every minute)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--organisation",
            action="append",
            default=None,
            help="Only this organisation (by name); may be repeated.",
        )
        parser.add_argument(
            "--lag",
            type=float,
            default=detection_run.LAG.total_seconds(),
            help="Leave logs received within this many seconds for the next run "
            f"(default {detection_run.LAG.total_seconds():.0f}, see alerts/detection_run.py).",
        )
        parser.add_argument("--batch-size", type=int, default=detection_run.BATCH_SIZE)

    def handle(self, *args, organisation, lag, batch_size, **options):
        if lag < 0 or batch_size < 1:
            raise CommandError("--lag must be >= 0 and --batch-size >= 1.")
        organisation_ids = None
        if organisation:
            found = dict(
                Organisation.objects.filter(name__in=organisation).values_list("name", "id")
            )
            missing = sorted(set(organisation) - set(found))
            if missing:
                raise CommandError(f"No organisation named {', '.join(map(repr, missing))}.")
            organisation_ids = list(found.values())
        report = detection_run.run_detection(
            lag=timedelta(seconds=lag), batch_size=batch_size, organisation_ids=organisation_ids
        )
        self.stdout.write(
            f"Read {report.records:,} log records of {report.organisations} organisation(s) "
            f"in {report.batches} batch(es) and {report.seconds:.2f} s: {report.candidates:,} "
            f"went past the prefilter, {report.alerts:,} alert(s) raised."
        )
        if report.busy:
            self.stdout.write(
                f"{report.busy} organisation(s) skipped: another run is reading their logs."
            )
        for error in report.errors:
            self.stderr.write(f"Error: {error}")
