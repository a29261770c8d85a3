"""`carebell demo [--port 8000] [--no-seed]`: a ready-to-try carebell on this machine.

Migrates the database, seeds it when empty, creates a demo administrator and a Front
Desk user (passwords generated once into the data directory), starts the background
services and serves the web app on 127.0.0.1 until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.servers.basehttp import (
    ThreadedWSGIServer,
    WSGIRequestHandler,
    get_internal_wsgi_application,
)
from django.utils import timezone

from carebell.cli import check_count
from carebell.demo import data
from carebell.demo.seeding import describe_clock, seed_demo
from carebell.demo.services import (
    BACKGROUND_SERVICES,
    start_background_services,
    stop_background_services,
)
from carebell.interop.hl7.demo import DEMO_PORT, ensure_demo_senders, mllp_listener
from carebell.outbound.services import event_deliverer
from carebell.people.models import Patient
from carebell.sites.models import DeliverySettings, Site, StaffMembership
from carebell.sites.roles import FRONT_DESK

HOST = "127.0.0.1"
DEMO_PATIENTS = 300
ADMIN = "admin"
FRONT_DESK_USER = "frontdesk"


def _stop_serving(signum, frame) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Migrate, seed when empty, create demo users and serve carebell on 127.0.0.1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-seed", action="store_true", help="Do not seed demo data.")
        parser.add_argument("--patients", type=int, default=DEMO_PATIENTS, help="Demo size.")

    def handle(self, *args, **options) -> None:
        if not settings.SIM_ENABLED:
            raise CommandError(
                "The demo sends through the simulated phone and mailbox, which are off: "
                "run it with CAREBELL_DEBUG=1 (make demo)."
            )
        check_count("--port", options["port"], 1, 65_535)
        check_count("--patients", options["patients"], 0)
        call_command("migrate", interactive=False, verbosity=0)
        if not options["no_seed"] and not Patient.objects.exists():
            report = seed_demo(options["patients"], seed=1, now=timezone.now())
            self.stdout.write(f"Seeded {report.organization.name} ({report.total_rows} rows).")
        clinic = Site.objects.filter(organization__slug=data.ORGANIZATION_SLUG).first()
        if clinic is not None:
            self.stdout.write(describe_clock(clinic, timezone.now()))
        passwords = _demo_passwords(Path(settings.DATA_DIR) / "demo-passwords.json")
        _ensure_admin(passwords[ADMIN])
        _ensure_front_desk(passwords[FRONT_DESK_USER])
        _use_the_simulator(options["port"])
        pharmacy = Site.objects.filter(organization__slug=data.ORGANIZATION_SLUG, kind="pharmacy")
        ensure_demo_senders(clinic, pharmacy.first())
        self._serve(options["port"], passwords)

    def _serve(self, port: int, passwords: dict[str, str]) -> None:
        try:
            server = ThreadedWSGIServer((HOST, port), WSGIRequestHandler, ipv6=False)
        except OSError as error:  # the port is taken, or reserved
            raise CommandError(f"cannot serve on {HOST}:{port}: {error.strerror}") from None
        server.daemon_threads = True
        server.set_app(StaticFilesHandler(get_internal_wsgi_application()))
        stop_event = threading.Event()
        services = [*BACKGROUND_SERVICES, event_deliverer, mllp_listener]
        threads = start_background_services(stop_event, services)
        signal.signal(signal.SIGTERM, _stop_serving)
        self._announce(port, passwords)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            still_running = stop_background_services(stop_event, threads)
            if still_running:
                self.stderr.write(f"Did not stop in time: {', '.join(still_running)}")
            self.stdout.write("carebell demo stopped.")

    def _announce(self, port: int, passwords: dict[str, str]) -> None:
        url = f"http://{HOST}:{port}"
        self.stdout.write(
            f"\ncarebell demo: the staff app at {url}/staff/ (the Django admin at {url}/admin/)\n"
            f"  administrator: {ADMIN} / {passwords[ADMIN]}\n"
            f"  front desk:    {FRONT_DESK_USER} / {passwords[FRONT_DESK_USER]}\n"
            f"simulated phone and mailbox: {settings.SIM_URL}/ (read and answer as a patient)\n"
            f"HL7 v2 over MLLP: {HOST}:{DEMO_PORT} (carebell hl7 send FILE…)\n"
            "Press Ctrl-C to stop.\n"
        )
        self.stdout.flush()


def _use_the_simulator(port: int) -> None:
    """The demo sites send through the simulated phone and mailbox, and links and
    callbacks point at this server's port unless CAREBELL_BASE_URL says otherwise."""
    if not os.environ.get("CAREBELL_BASE_URL"):
        settings.BASE_URL = f"http://{HOST}:{port}"
    if not os.environ.get("CAREBELL_WEBHOOKS_ALLOW_PRIVATE"):
        settings.WEBHOOKS_ALLOW_PRIVATE = True  # a receiver on this machine, to try events
    sites = Site.objects.filter(organization__slug__startswith=data.ORGANIZATION_SLUG)
    sites.update(providers={"sms": "sim", "email": "sim", "call": "sim"})
    # So that something arrives whatever the hour the demo is tried: email may go
    # around the clock; texts and calls still keep the 08:00–21:00 quiet-hours floor.
    DeliverySettings.objects.filter(site__in=sites).update(
        email_sms_window_start=dt.time(0), email_sms_window_end=dt.time(23, 59, 59)
    )


def _demo_passwords(path: Path) -> dict[str, str]:
    """Generated once and kept in the data directory, so they survive restarts."""
    stored = json.loads(path.read_text()) if path.exists() else {}
    names = (ADMIN, FRONT_DESK_USER)
    wanted = {name: stored.get(name) or secrets.token_urlsafe(12) for name in names}
    if wanted != stored:
        path.write_text(json.dumps(wanted, indent=2))
        path.chmod(0o600)
    return wanted


def _ensure_admin(password: str) -> None:
    user, _ = User.objects.get_or_create(username=ADMIN)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()


def _ensure_front_desk(password: str) -> None:
    user, _ = User.objects.get_or_create(username=FRONT_DESK_USER)
    user.is_staff = user.is_active = True
    user.set_password(password)
    user.save()
    user.groups.add(Group.objects.get(name=FRONT_DESK))
    for site in Site.objects.filter(organization__slug=data.ORGANIZATION_SLUG):
        StaffMembership.objects.get_or_create(user=user, site=site)
