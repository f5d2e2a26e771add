"""`ian-gateway deadletters`: what the upstream refused is kept, listed and replayed.

A real gateway process forwards over real HTTP to the recording upstream; the
command runs as a child process against the same spool file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson

from tests.support import TRACK, send
from tests.support.factories import event, event_id


def test_400_is_a_dead_letter_never_retried(gateway: Any, http: httpx.Client, upstream: Any,
                                            tmp_path: Any) -> None:
    refusal = {"errors": [{"error": {"message": "must be a UUID", "error_code": 1001},
                           "meta": {"key": "data.sponsored_product_data.ad_id"}}]}
    upstream.answer_next(TRACK, 400, body=refusal)
    gw = gateway()
    send(http, gw, (evt := event()))
    upstream.wait_for(TRACK, 1)
    time.sleep(1.5)
    assert len(upstream.to(TRACK)) == 1
    metrics = http.get(gw.url + "/metrics").text
    assert 'ian_dead_letters_total{kind="track"} 1.0' in metrics
    gw.stop()
    letters = [orjson.loads(line) for line in deadletters(tmp_path, "list", "--json").splitlines()]
    assert len(letters) == 1 and letters[0]["status"] == 400
    assert letters[0]["key"] == event_id(evt) and "must be a UUID" in letters[0]["answer"]
    assert event_id(letters[0]["body"]) == event_id(evt)
    assert "replay: 1 dead letter(s)" in deadletters(tmp_path, "replay", "--all")
    assert deadletters(tmp_path, "list", "--json") == ""


def deadletters(tmp_path: Any, *args: str) -> str:
    env = {**os.environ, "IAN_SPOOL": f"sqlite:///{tmp_path}/spool.db"}
    return subprocess.run([sys.executable, "-m", "gateway", "deadletters", *args],
                          env=env, capture_output=True, check=True, text=True).stdout
