from django.conf import settings
from django.core.management.base import BaseCommand

from events import retention


class Command(BaseCommand):
    help = "Delete events, alerts and logs older than the retention period (EVENT_RETENTION_DAYS)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.EVENT_RETENTION_DAYS)

    def handle(self, *args, days, **options):
        result = retention.purge_expired(days=days)
        self.stdout.write(
            f"Deleted {result.events} events, {result.alerts} alerts and {result.logs} log records "
            f"older than {days} days."
        )
