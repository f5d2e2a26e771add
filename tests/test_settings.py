"""Every setting: its default parses, a bad value names its variable, the README shows them all."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.cli import main
from gateway.settings import SETTINGS, ConfigError, Setting, Settings, markdown_table
from tests.support import ROOT, free_port

# Values each parser must refuse; a setting whose parser is missing here fails a test,
# so a new kind of setting cannot arrive without its bad values.
BAD_VALUES: dict[str, tuple[str, ...]] = {
    "_networks": ("10.0.0.0/33", "not-a-cidr"),
    "_client_ip_header": ("X-Real-IP", "Forwarded"),
    "_spool": ("postgres://db/ian", "/var/spool/ian"),
    "_positive_int": ("0", "-3", "1.5", "many"),
    "_positive_float": ("0", "-1", "soon"),
    "_non_negative_float": ("-0.5", "fast"),
    "_flag": ("maybe", "2"),
    "_log_format": ("xml", "JSON "),
    "_pem_file": ("/nonexistent/ca.pem", "/etc/hostname"),
    "_proxy_url": ("proxy.internal:3128", "socks5://proxy:1080", "http://proxy:port"),
}
ANY_TEXT = {"_text", "_list"}  # free text: nothing to refuse


def ids(setting: Setting) -> str:
    return setting.env


@pytest.mark.parametrize("setting", SETTINGS, ids=ids)
def test_default_parses_to_the_settings_default(setting: Setting) -> None:
    parsed = setting.parse(setting.default)
    assert parsed == getattr(Settings(), setting.attr)
    assert getattr(Settings.from_env({}), setting.attr) == parsed


@pytest.mark.parametrize("setting", SETTINGS, ids=ids)
def test_every_parser_has_bad_values_or_takes_any_text(setting: Setting) -> None:
    assert setting.parse.__name__ in BAD_VALUES.keys() | ANY_TEXT


BAD_CASES = [(s, value) for s in SETTINGS for value in BAD_VALUES.get(s.parse.__name__, ())]


@pytest.mark.parametrize(("setting", "value"), BAD_CASES,
                         ids=[f"{s.env}={v}" for s, v in BAD_CASES])
def test_bad_value_fails_naming_the_variable(setting: Setting, value: str) -> None:
    with pytest.raises(ConfigError) as failed:
        Settings.from_env({setting.env: value})
    assert str(failed.value).startswith(setting.env)


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m gateway serve` with only `env` for IAN_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IAN_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1",
         "--port", str(free_port())],
        env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60)


UPSTREAM = {"IAN_UPSTREAM_URL": "http://127.0.0.1:9"}


def test_config_into_a_pipe_closed_early_ends_quietly() -> None:
    """`ian-gateway config | head -1`: no traceback when the reader leaves."""
    with subprocess.Popen([sys.executable, "-m", "gateway", "config"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()  # the reader is gone before the first line
        errors = child.stderr.read().decode()
        assert child.wait(timeout=60) == 1, errors
    assert "Traceback" not in errors, errors


@pytest.mark.parametrize(("env", "named"), [
    ({}, "IAN_UPSTREAM_URL"),
    ({"IAN_ACCESS_TOKEN": "x"}, "IAN_UPSTREAM_URL"),
    (UPSTREAM, "IAN_ACCESS_TOKEN"),
    ({**UPSTREAM, "IAN_CLIENT_ID": "client"}, "IAN_CLIENT_SECRET"),
    ({**UPSTREAM, "IAN_ACCESS_TOKEN": "x", "IAN_RATE_BURST": "0"}, "IAN_RATE_BURST"),
], ids=["nothing", "token-only", "no-credentials", "no-secret", "bad-value"])
def test_serve_refuses_to_start_naming_the_variable(env: dict[str, str], named: str) -> None:
    done = serve(env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("ian-gateway: IAN_"), done.stderr
    assert named in done.stderr


def readme_table() -> str:
    readme = ROOT / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    start, end = "<!-- config:start -->", "<!-- config:end -->"
    if start not in text or end not in text:
        pytest.skip("README.md has no <!-- config:start --> / <!-- config:end --> markers yet")
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_readme_table_is_the_output_of_config_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    table = readme_table()
    assert main(["config", "--markdown"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == markdown_table()
    assert table == printed, "README is stale: paste `ian-gateway config --markdown` between " \
        "the config markers"


def test_spool_lease_must_outlast_an_upstream_request() -> None:
    # a live forwarder still waiting on the upstream would lose its records to another
    with pytest.raises(ConfigError, match=r"^IAN_SPOOL_LEASE must be greater than IAN_UPSTREAM"):
        Settings.from_env({"IAN_SPOOL_LEASE": "10", "IAN_UPSTREAM_TIMEOUT": "10"})
    settings = Settings.from_env({"IAN_SPOOL_LEASE": "11", "IAN_UPSTREAM_TIMEOUT": "10"})
    assert settings.spool_lease == 11


def test_config_hides_secrets_and_url_passwords(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IAN_CLIENT_SECRET", "s3cret-value")
    monkeypatch.setenv("HTTPS_PROXY", "http://egress:pr0xy-pw@proxy.internal:3128")
    monkeypatch.setenv("IAN_SPOOL", "redis://:r3dis-pw@redis.internal:6379/0")
    assert main(["config"]) == 0
    printed = capsys.readouterr().out
    for secret in ("s3cret-value", "pr0xy-pw", "r3dis-pw"):
        assert secret not in printed
    assert "https_proxy = 'http://egress:***@proxy.internal:3128'" in printed
    assert "spool = 'redis://:***@redis.internal:6379/0'" in printed
    assert "client_secret = '***'" in printed
