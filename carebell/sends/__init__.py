"""Messages staff write themselves (SPEC §5.6): a group message to patients chosen
from a listing (`group`), and a one-off message to one patient (`one_off`).

Both are "general" messages: who receives one, and over which channel, is decided as
the planner decides it (`core.channels`: the contact's preference for general
messages, the channels the site enables for them, opt-outs, consent, verification),
the words are rendered for each recipient, and every recipient's message is written
through the outbox's one writer — scheduled to go, or blocked with its reason — so
the dispatcher's send-time checks (quiet hours, restricted words, opt-outs since)
apply to it like to any other. Every door (staff pages, the REST API) calls these
entry points, with the staff member acting as `by`.
"""
