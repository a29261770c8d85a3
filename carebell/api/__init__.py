"""The REST API /api/v1 (django-ninja, OpenAPI 3.1) and its tokens."""
