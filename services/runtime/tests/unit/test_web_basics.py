"""What every service's app has, without servers: the metrics token, the API docs switch, the settings' guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field, ValidationError, field_validator

from service_runtime.settings import ServiceSettings
from service_runtime.web import require_public, service_app

STRONG = "x" * 40
METRICS = "m" * 40


@asynccontextmanager
async def _nothing(_: FastAPI) -> AsyncIterator[None]:
    yield


async def _get(settings: ServiceSettings, path: str, **headers: str) -> httpx.Response:
    app = service_app("t", settings, lifespan=_nothing, error_table={}, readiness={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        return await http.get(path, headers=headers)


def production(**overrides: Any) -> ServiceSettings:
    return ServiceSettings(environment="production", auth_secret=STRONG, **{"metrics_token": METRICS, **overrides})


async def test_metrics_answer_only_the_scraper_holding_the_metrics_token() -> None:
    settings = production()
    assert (await _get(settings, "/metrics", Authorization=f"Bearer {METRICS}")).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {METRICS}"}):
        refused = await _get(settings, "/metrics", **headers)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized", headers
    assert (await _get(settings, "/healthz")).status_code == 200  # health checks go without a token


def test_outside_local_mode_a_service_does_not_start_without_a_strong_metrics_token() -> None:
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        production(metrics_token=None)
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        production(metrics_token="short")


async def test_api_docs_are_served_locally_and_not_in_production_unless_asked_for() -> None:
    assert (await _get(ServiceSettings(), "/openapi.json")).status_code == 200
    assert (await _get(ServiceSettings(), "/metrics")).status_code == 200  # local: no metrics token set
    assert (await _get(production(), "/openapi.json")).status_code == 404
    assert (await _get(production(), "/docs")).status_code == 404
    assert (await _get(production(api_docs=True), "/openapi.json")).status_code == 200


class Note(BaseModel):
    text: str = Field(max_length=5)

    @field_validator("text")
    @classmethod
    def _no_bell(cls, value: str) -> str:
        if "\a" in value:
            raise ValueError("must not ring the bell")
        return value


async def test_a_422_lists_each_field_with_a_message_and_a_validators_own_wording_stays_as_it_is() -> None:
    app = service_app("t", ServiceSettings(), lifespan=_nothing, error_table={}, readiness={})

    @app.post("/notes")
    async def add(note: Note) -> Note:
        return note

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        bell = await http.post("/notes", json={"text": "\a"})
        long = await http.post("/notes", json={"text": "x" * 6})
    assert bell.status_code == long.status_code == 422
    assert bell.json()["code"] == "invalid_request"
    assert bell.json()["errors"] == [{"field": "text", "message": "must not ring the bell"}]
    assert bell.json()["message"] == "The request is not valid: text: must not ring the bell"
    assert [e["field"] for e in long.json()["errors"]] == ["text"]
    assert "at most 5 characters" in long.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8002",
        "http://localhost:8002",
        "http://localhost.:8002",
        "http://admin.localhost",
        "http://[::1]:8002",
        "http://[0:0:0:0:0:0:0:1]:8002",
        "http://[::ffff:127.0.0.1]:8002",
        "http://0.0.0.0:8002",
        "http://[::]:8002",
        "http://127.1",
        "http://2130706433/",
        "//notifier.petsit.example",
        "notifier.petsit.example",
        "ftp://notifier.petsit.example",
    ],
)
def test_outside_local_mode_a_url_browsers_call_must_name_a_public_http_host(url: str) -> None:
    with pytest.raises(ValueError, match="NOTIFIER_URL"):
        require_public("production", "NOTIFIER_URL", [url])
    require_public("local", "NOTIFIER_URL", [url])  # anything goes locally


def test_public_hosts_names_and_addresses_pass_and_an_empty_list_does_not() -> None:
    require_public("production", "CORS_ORIGINS", ["https://booking.petsit.example", "https://10.0.0.5:8443"])
    with pytest.raises(ValueError, match="CORS_ORIGINS"):
        require_public("production", "CORS_ORIGINS", [])
