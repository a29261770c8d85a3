"""Provider webhooks: delivery reports. Thin: verify, parse, hand to the writer.

A forged request is refused with 403 before anything is written; a report for an
id carebell does not know is answered 200 (so the provider stops retrying) and
changes nothing; a replayed report changes nothing (de-duplicated by message id
and status in `actions.record_status`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from carebell.messaging import actions
from carebell.messaging.provider_set import provider_named
from carebell.providers.base import Unsupported

log = logging.getLogger("carebell.hooks")


def called_url(request: HttpRequest) -> str:
    """The URL as the provider called it: carebell's public base URL plus the path
    (behind a proxy, the request's own host and scheme may differ from what the
    provider signed)."""
    return settings.BASE_URL + request.get_full_path()


@csrf_exempt
@require_POST
def status_callback(request: HttpRequest, provider: str, attempt_id: int) -> HttpResponse:
    handler = provider_named(provider)
    if handler is None:
        return HttpResponseNotFound("unknown provider")
    try:
        genuine = handler.verify_signature(called_url(request), request.POST, request.headers)
    except Unsupported:
        genuine = False
    if not genuine:
        log.warning("hooks.bad_signature", extra={"ids": {"provider": provider}})
        return HttpResponseForbidden("invalid signature")
    update = handler.parse_status(request.POST, attempt_id)
    if update is not None:
        actions.record_status(
            provider,
            update.provider_message_id,
            update.status,
            now=timezone.now(),
            attempt_id=attempt_id,
            error_code=update.error_code,
            opt_out=update.opt_out,
        )
    return HttpResponse(status=200)
