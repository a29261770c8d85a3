"""The patient's pages: confirm by link, a review link, a one-click email unsubscribe."""
