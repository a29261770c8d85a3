"""The staff web app: server-rendered pages for the people who run a site."""
