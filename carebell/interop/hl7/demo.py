"""HL7 in the demo: the senders the shared samples come from, and the MLLP listener
run beside the web server (`carebell demo`)."""

from __future__ import annotations

import asyncio
import logging
import threading

from carebell.demo.generate import SOURCE
from carebell.interop.hl7.models import Hl7Sender

logger = logging.getLogger(__name__)
DEMO_PORT = 2575


def ensure_demo_senders(clinic, pharmacy) -> None:
    """Every sender goes to the clinic, the sample pharmacy system (IMMAPP) to the
    pharmacy — unless the rows were set up otherwise already. Their ids are the demo
    data's (Patient.source "demo"), so a message naming a demo patient's id is about
    that patient."""
    for application, site in (("", clinic), ("IMMAPP", pharmacy)):
        if site is not None:
            Hl7Sender.objects.get_or_create(
                sending_application=application,
                sending_facility="",
                defaults={"site": site, "patient_source": SOURCE},
            )


def mllp_listener(stop: threading.Event) -> None:
    """A background service: the MLLP listener on 127.0.0.1:2575 until `stop`."""
    from django.conf import settings

    from carebell.interop.hl7.listener import Listener

    async def main() -> None:
        listener = Listener(max_bytes=settings.HL7_MAX_MESSAGE_BYTES, workers=2)
        try:
            await listener.start("127.0.0.1", DEMO_PORT)
        except OSError:
            logger.warning("HL7 listener not started: port %s is taken", DEMO_PORT)
            return
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        await listener.serve_until(done)

    asyncio.run(main())
