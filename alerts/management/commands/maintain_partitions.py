from django.core.management.base import BaseCommand

from alerts import partitions


class Command(BaseCommand):
    help = (
        "Make the weekly partitions of alerts, alert-entity links and logs from the "
        "retention period's start to four weeks ahead (PostgreSQL; nothing to do on SQLite)."
    )

    def handle(self, *args, **options):
        if not partitions.enabled():
            self.stdout.write("The tables are not partitioned on this database: nothing to do.")
            return
        made = partitions.ensure_partitions()
        self.stdout.write(f"Made {len(made)} partitions." + "".join(f"\n  {n}" for n in made))
