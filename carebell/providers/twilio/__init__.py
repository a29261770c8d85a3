"""Twilio: SMS (`sms`), calls (`voice`) and their shared request signatures (`signature`)."""
