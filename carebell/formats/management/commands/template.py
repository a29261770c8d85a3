"""`carebell template preview`: a template rendered with sample data, as the patient
would get it, with the SMS figures (encoding, characters, segments) and warnings."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from carebell.core.vocab import FORMAT_KINDS, Channel, Kind
from carebell.formats import service


class Command(BaseCommand):
    help = "Work with message templates (formats)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        show = actions.add_parser("preview", help="Render a template with sample data.")
        show.add_argument("--channel", choices=[c.value for c in Channel])
        show.add_argument("--kind", choices=[k.value for k in FORMAT_KINDS], default=None)
        show.add_argument("--language", default=None, help="en or es (default: en)")
        source = show.add_mutually_exclusive_group(required=True)
        source.add_argument("--body", help="Template text to preview.")
        source.add_argument("--template", type=int, help="Id of a saved template.")
        show.add_argument("--subject", default="", help="Email subject (with --body).")
        show.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        if options["action"] == "preview":
            self._preview(options)

    def _preview(self, options):
        fields = (
            self._from_template(options) if options.get("template") else self._from_body(options)
        )
        try:
            result = service.preview(**fields)
        except ValueError as error:
            raise CommandError(str(error)) from error
        if options.get("json"):
            self.stdout.write(json.dumps(result, ensure_ascii=False))
        else:
            self.stdout.write(_as_text(result))
        if result["errors"]:
            # The preview is shown either way; the exit status tells a script that
            # this template would be refused.
            count = len(result["errors"])
            raise CommandError(f"the template has {count} error(s), shown above")

    def _from_body(self, options) -> dict:
        if not options.get("channel"):
            raise CommandError("--channel is required with --body")
        return {
            "channel": options["channel"],
            "kind": options.get("kind") or Kind.GENERAL.value,
            "language": options.get("language") or "en",
            "body": options["body"],
            "subject": options.get("subject") or "",
        }

    def _from_template(self, options) -> dict:
        # Imported here: the template model belongs to the messaging app, and the
        # --body preview must work without a database.
        try:
            from carebell.messaging.models import MessageTemplate
        except ImportError as error:
            raise CommandError("saved templates are not available in this build") from error
        template = (
            MessageTemplate.objects.select_related("site").filter(pk=options["template"]).first()
        )
        if template is None:
            raise CommandError(f"no template with id {options['template']}")
        return {
            "channel": options.get("channel") or template.channel,
            "kind": options.get("kind") or template.kind,
            "language": options.get("language") or template.language,
            "body": template.body,
            "subject": template.subject,
            "html_body": template.html_body,
            "site": template.site,
        }


def _as_text(result: dict) -> str:
    lines = []
    if result["channel"] == Channel.EMAIL:
        lines.append(f"subject: {result['subject']}")
    lines += ["body:", result["body"], ""]
    if result["channel"] == Channel.SMS:
        lines += [
            f"encoding: {result['encoding']}",
            f"characters: {result['characters']}",
            f"segments: {result['segments']}",
        ]
    lines += [f"error: {message}" for message in result["errors"]]
    lines += [f"warning: {message}" for message in result["warnings"]]
    if not result["errors"] and not result["warnings"]:
        lines.append("warnings: none")
    return "\n".join(lines)
