"""The planner: turns appointments, prescriptions, fills and patients into outbox rows.

`sources` load rows and ask the rules core what to send (pure decisions with their
reasons); `writer` stores the planned ones in bulk; `runner` runs it all once, on a
schedule, or as a dry run.
"""
