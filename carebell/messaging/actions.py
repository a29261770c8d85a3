"""The planner's former path to the outbox verbs; carebell.outbox is the writer.

Kept only while carebell/messaging/planning/ still imports it (it moves to
carebell/planning/ next, importing carebell.outbox).
"""

from carebell.outbox import Move, close_replanned, move_planned, reasons_json

__all__ = ["Move", "close_replanned", "move_planned", "reasons_json"]
