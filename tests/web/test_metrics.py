"""/metrics: only for the holder of its token in production, and cheap to scrape."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.web import metrics

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789"


@pytest.fixture(autouse=True)
def fresh_aggregate():
    metrics.forget_aggregate()
    yield
    metrics.forget_aggregate()


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.METRICS_NEED_TOKEN = True
    settings.METRICS_TOKEN = ""
    return settings


def test_in_production_without_a_token_configured_metrics_do_not_exist(client, production):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_in_production_a_scraper_without_the_token_is_refused(client, production):
    production.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ünïcode").status_code == 401


def test_in_production_the_token_holder_reads_the_metrics(client, production):
    production.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert "carebell_outbox_messages" in response.content.decode()


def test_in_development_metrics_are_open_without_a_token(client, settings):
    settings.METRICS_NEED_TOKEN, settings.METRICS_TOKEN = False, ""
    assert client.get("/metrics").status_code == 200


def test_a_second_scrape_within_the_cache_time_reads_nothing(
    client, settings, django_assert_num_queries
):
    settings.METRICS_NEED_TOKEN, settings.METRICS_CACHE_SECONDS = False, 5
    first = client.get("/metrics").content
    with django_assert_num_queries(0):
        assert client.get("/metrics").content == first


def test_without_a_cache_time_every_scrape_reads_the_outbox(client, settings):
    settings.METRICS_NEED_TOKEN, settings.METRICS_CACHE_SECONDS = False, 0
    client.get("/metrics")
    with CaptureQueriesContext(connection) as second:
        client.get("/metrics")
    assert len(second) > 0


def test_scrapers_arriving_together_share_one_aggregation(settings, monkeypatch):
    settings.METRICS_CACHE_SECONDS = 5
    runs = []

    def slow_aggregate() -> bytes:
        runs.append(1)
        time.sleep(0.2)
        return b"text"

    monkeypatch.setattr(metrics, "_read_aggregate", slow_aggregate)
    scrapers = [threading.Thread(target=metrics.current_text) for _ in range(8)]
    for scraper in scrapers:
        scraper.start()
    for scraper in scrapers:
        scraper.join()
    assert len(runs) == 1
