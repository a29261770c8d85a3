"""carebell's PostgreSQL database backend (ENGINE "carebell.postgresql"): Django's,
with one change (see base)."""
