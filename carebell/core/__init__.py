"""carebell's decisions, as pure Python: no Django, no I/O, `now` is always an argument.

Everything that answers "should this message go, to whom, over which channel, when,
and saying what" lives here and returns its reasons, so the Django layer only loads
rows, calls these functions and stores what they return.
"""
