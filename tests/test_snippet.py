"""`/ian.js` and its versioned, immutable twin, over real HTTP."""

from __future__ import annotations

import base64
import gzip
import hashlib
from typing import Any

import httpx
import pytest

from gateway.cli import main
from gateway.snippet import Snippet


@pytest.fixture
def gw(gateway: Any) -> Any:
    return gateway(IAN_SPOOL="memory:")


def test_the_built_snippet_is_in_the_package_and_within_budget() -> None:
    body = Snippet().body
    assert b"sendBeacon" in body
    assert len(gzip.compress(body, 9)) <= 3072


def test_ian_js_has_an_etag_and_cache_headers(gw: Any, http: httpx.Client) -> None:
    answer = http.get(gw.url + "/ian.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "max-age=" in answer.headers["cache-control"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    again = http.get(gw.url + "/ian.js", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_versioned_url_is_immutable_and_matches_its_integrity(gw: Any, http: httpx.Client
                                                              ) -> None:
    snippet = Snippet()
    answer = http.get(gw.url + snippet.path)
    assert answer.status_code == 200
    assert "immutable" in answer.headers["cache-control"]
    digest = base64.b64encode(hashlib.sha384(answer.content).digest()).decode()
    assert snippet.integrity == f"sha384-{digest}"
    stale = http.get(gw.url + "/ian.0000000000000000.js")
    assert stale.status_code == 404
    assert stale.json()["errors"][0]["error"]["error_code"] == 9999


def test_snippet_command_prints_the_tag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snippet", "--origin", "https://shop.example"]) == 0
    tag = capsys.readouterr().out
    assert f'src="https://shop.example{Snippet().path}"' in tag
    assert 'integrity="sha384-' in tag and 'crossorigin="anonymous"' in tag
