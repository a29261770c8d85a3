"""The staff app's pages, one module per screen."""
