"""The worker: claim due messages, check them again, render, send, record."""
