"""`carebell hl7 listen|import|send|purge`: HL7 v2 in, over MLLP or from files.

  carebell hl7 listen [--host 127.0.0.1] [--port 2575] [--idle-timeout 300] [--site ID]
                     [--processes 1] [--workers 8]
  carebell hl7 import FILE… [--dry-run] [--json] [--site ID]   (batch files, .zip, .tar.gz)
  carebell hl7 send FILE… [--host 127.0.0.1] [--port 2575]     (a test sender)
  carebell hl7 purge [--dry-run]        (messages older than CAREBELL_HL7_RETENTION_DAYS)

`--site` names the site (id or name) that takes messages from senders no HL7 sender
row names yet; they are added as rows for it. `import` exits 1 when a message got an
AE or AR.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from carebell.cli import check_count


class Command(BaseCommand):
    help = "HL7 v2 in: an MLLP listener, a batch file importer, a test sender, a purge."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listen = sub.add_parser("listen", help="Receive messages over MLLP.")
        listen.add_argument("--host", default="127.0.0.1")
        listen.add_argument("--port", type=int, default=2575)
        listen.add_argument("--idle-timeout", type=float, default=300.0, help="Seconds.")
        listen.add_argument("--workers", type=int, default=8,
                            help="Database threads per process.")  # fmt: skip
        listen.add_argument("--processes", type=int, default=1,
                            help="Listener processes sharing the port (one per core).")  # fmt: skip
        listen.add_argument("--site", help="Site (id or name) for senders not set up yet.")
        imp = sub.add_parser("import", help="Import batch files and archives.")
        imp.add_argument("files", nargs="+")
        imp.add_argument("--dry-run", action="store_true", help="Check; write nothing.")
        imp.add_argument("--json", action="store_true", help="The report as JSON.")
        imp.add_argument("--site", help="Site (id or name) for senders not set up yet.")
        send = sub.add_parser("send", help="Send files to an MLLP listener.")
        send.add_argument("files", nargs="+")
        send.add_argument("--host", default="127.0.0.1")
        send.add_argument("--port", type=int, default=2575)
        purge = sub.add_parser("purge", help="Delete messages past the retention period.")
        purge.add_argument("--dry-run", action="store_true")

    def handle(self, *args, **options) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _listen(self, options) -> None:
        from carebell.interop.hl7.listener import run, run_processes

        check_count("--port", options["port"], 0, 65_535)
        check_count("--workers", options["workers"], 1, 64)
        check_count("--processes", options["processes"], 1, 64)
        if options["idle_timeout"] <= 0:
            raise CommandError("--idle-timeout must be more than 0 seconds")
        site, processes = _site(options.get("site")), options["processes"]

        def ready(port):
            many = f", {processes} processes" if processes > 1 else ""
            self.stdout.write(f"carebell hl7: listening on {options['host']}:{port} (MLLP{many})")
            self.stdout.flush()

        listen = dict(max_bytes=settings.HL7_MAX_MESSAGE_BYTES, ready=ready,
                      idle_timeout=options["idle_timeout"], workers=options["workers"],
                      default_site=site)  # fmt: skip
        try:
            if processes > 1:
                run_processes(options["host"], options["port"], processes=processes, **listen)
            else:
                run(options["host"], options["port"], stop_on_signals=True, **listen)
        except OSError as error:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: "
                               f"{error.strerror or error}") from None  # fmt: skip

    def _import(self, options) -> None:
        from tqdm import tqdm

        from carebell.interop.hl7.batch import Item, read_paths
        from carebell.interop.hl7.receive import receive

        site = _site(options.get("site"))
        items = list(read_paths(options["files"], settings.HL7_MAX_MESSAGE_BYTES))
        report, failed = [], 0
        bar = tqdm(items, desc="HL7", unit="msg", file=sys.stderr, disable=None)
        for item in bar:
            if not isinstance(item, Item):
                report.append({"where": item[0], "outcome": "unreadable", "reason": item[1]})
                failed += 1
                continue
            got = receive(item.raw, via="file", peer=item.where[:200],
                          dry_run=options["dry_run"], default_site=site)  # fmt: skip
            failed += got.code != "AA"
            report.append({
                "where": item.where, "type": got.message_type, "control_id": got.control_id,
                "ack": got.code, "outcome": str(got.outcome), "duplicate": got.duplicate,
                "reason": got.reason,
            })  # fmt: skip
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            for row in report:
                self.stdout.write(_line(row))
            verb = "checked (dry run, nothing written)" if options["dry_run"] else "imported"
            self.stdout.write(f"{len(report)} messages {verb}; {failed} with AE/AR.")
        if failed:
            raise SystemExit(1)

    def _send(self, options) -> None:
        from carebell.interop.hl7.batch import Item, read_paths
        from carebell.interop.hl7.client import Client, ack_code, ack_field

        check_count("--port", options["port"], 1, 65_535)
        try:
            client = Client(options["host"], options["port"])
        except OSError as error:
            raise CommandError(f"cannot connect to {options['host']}:{options['port']}: "
                               f"{error.strerror or error}") from None  # fmt: skip
        with client:
            for item in read_paths(options["files"], settings.HL7_MAX_MESSAGE_BYTES):
                if not isinstance(item, Item):
                    self.stdout.write(f"{item[0]}: {item[1]}")
                    continue
                ack = client.send(item.raw)[0]
                self.stdout.write(f"{item.where}: {ack_code(ack)} {ack_field(ack, 'MSA', 3)}")

    def _purge(self, options) -> None:
        from carebell.interop.hl7.models import Hl7Message

        cutoff = timezone.now() - dt.timedelta(days=settings.HL7_RETENTION_DAYS)
        old = Hl7Message.objects.filter(received_at__lt=cutoff)
        if options["dry_run"]:
            self.stdout.write(f"{old.count()} messages received before {cutoff:%Y-%m-%d} "
                              "would be deleted.")  # fmt: skip
            return
        deleted, _ = old.delete()
        self.stdout.write(f"{deleted} messages received before {cutoff:%Y-%m-%d} deleted.")


def _line(row: dict) -> str:
    if row["outcome"] == "unreadable":
        return f"{row['where']}: unreadable: {row['reason']}"
    dup = " (resent: original ACK)" if row.get("duplicate") else ""
    reason = f" — {row['reason']}" if row.get("reason") else ""
    return (f"{row['where']}: {row['type'] or '?'} {row['control_id'] or '?'} "
            f"{row['ack']} {row['outcome']}{dup}{reason}")  # fmt: skip


def _site(value: str | None):
    from carebell.sites.models import Site

    if not value:
        return None
    sites = (
        Site.objects.filter(pk=int(value)) if value.isdigit() else Site.objects.filter(name=value)
    )
    site = sites.first()
    if site is None:
        raise CommandError(f"no site {value!r} (give its id or exact name)")
    return site
