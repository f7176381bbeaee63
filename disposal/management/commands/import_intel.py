"""``manage.py import_intel``: import threat intelligence (STIX 2.1 bundles, CSV IOC lists)."""

from django.core.management.base import BaseCommand, CommandError

from disposal.intel_import import FORMATS, IntelFileError, import_intel, summary_lines
from secops.services import ProvisioningError, get_organisation


class Command(BaseCommand):
    help = (
        "Import indicators of compromise (IPs, file hashes, domains, URLs) from STIX 2.1 "
        "bundles and CSV IOC lists. Importing a file again updates its indicators. "
        "Examples: docs/intel/example-bundle.json and docs/intel/example-iocs.csv; "
        "docs/intel/README.md describes both formats."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help="STIX bundles or CSV files.")
        parser.add_argument(
            "--organisation",
            metavar="NAME",
            help="The organisation the indicators belong to; without it they are shared "
            "by every organisation.",
        )
        parser.add_argument(
            "--source",
            metavar="NAME",
            help="The source every indicator is recorded under; by default the STIX "
            "bundle's producer (created_by_ref), the CSV source column, or "
            "'STIX import' / 'CSV import'.",
        )
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="Read every file in this format; by default .json files are STIX, "
            ".csv files CSV, others by their first character.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Read and check the files; write nothing."
        )

    def handle(self, *args, files, organisation, source, format, dry_run, **options):
        try:
            owner = get_organisation(organisation) if organisation else None
        except ProvisioningError as error:
            raise CommandError(str(error)) from error
        try:
            result = import_intel(
                files, organisation=owner, source=source, format=format, dry_run=dry_run
            )
        except IntelFileError as error:
            raise CommandError(f"Nothing imported: {error}") from error
        for line in summary_lines(result):
            self.stdout.write(line)
