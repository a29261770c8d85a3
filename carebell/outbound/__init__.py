"""Signed outbound events (Standard Webhooks) to the source systems' endpoints."""
