"""The planner: turns appointments, prescriptions, fills and patients into outbox rows.

Each source (`appointments`, `recalls`, `pharmacy`, `refills`, `reviews`, `greetings`)
loads rows and asks the rules core what to send (pure decisions with their reasons);
the outbox stores the planned ones in bulk (`carebell.outbox.OutboxWriter`); `runner`
runs it all once or on a schedule, `dry_run` without storing, `replan` after a change
to a patient, a contact or a site; `explain` says why, `policies` caches each site's
delivery policy.
"""
