"""The Django app of messages: models (formats, automated-message rules, the outbox,
attempts, events, inbound texts), migrations, admin, and the worker, scheduler, plan
and explain commands. The code that plans, sends and answers lives in its own rooms
(planning, outbox, dispatch, twoway, webhooks)."""
