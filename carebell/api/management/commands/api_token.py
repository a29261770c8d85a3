"""`carebell api-token USERNAME NAME`: issue an API token for a staff member from the
command line (the staff app's API tokens page does the same) and print its secret,
once. `--days N` makes it expire; `--revoke PREFIX` revokes one of theirs instead."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from carebell.api import tokens


class Command(BaseCommand):
    help = "Issue (or revoke) an API token for a staff member; the secret is printed once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("name", nargs="?", default="command line", help="what it is for")
        parser.add_argument("--days", type=int, default=0, help="expire after this many days")
        parser.add_argument("--revoke", metavar="PREFIX", help="revoke the token starting so")

    def handle(self, *args, username: str, name: str, days: int, revoke: str | None, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        if revoke:
            token = tokens.tokens_of(user).filter(prefix=revoke[: tokens.SHOWN_CHARACTERS]).first()
            if token is None or not tokens.revoke(token, by=user):
                raise CommandError(f"{username} has no active token starting {revoke!r}.")
            self.stdout.write(f"revoked {token.prefix}…")
            return
        if days < 0:
            raise CommandError("--days must be 0 (never) or more.")
        now = timezone.now()
        expires = now + dt.timedelta(days=days) if days else None
        try:
            _token, secret = tokens.issue(user, name, expires_at=expires, now=now)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(secret)
