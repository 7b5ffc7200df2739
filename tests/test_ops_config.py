"""`scopesvc serve` configuration: flags > environment > config file > defaults, all documented."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scopesvc.cli import build_parser, main
from scopesvc.ops import config

from .conftest import ROOT


def resolve(argv: list[str], env: dict[str, str] | None = None) -> config.ServerConfig:
    return config.resolve(build_parser().parse_args(["serve", *argv]), env or {})


def test_defaults():
    resolved = resolve([])
    assert (resolved.host, resolved.port, resolved.metrics_port, resolved.dry_run) == ("127.0.0.1", 50051, 9464, False)
    assert config.ServerConfig().metrics_port == 0  # embedding the server opens no metrics port by default


def test_precedence_flags_over_env_over_file(tmp_path):
    path = tmp_path / "scopesvc.yaml"
    path.write_text("port: 7001\ncache-ttl: 5\ndry_run: true\ngrace: 3\nlog_format: json\n")
    env = {"SCOPESVC_PORT": "7002", "SCOPESVC_CACHE_TTL": "6", "SCOPESVC_DRY_RUN": "false"}
    resolved = resolve(["--config", str(path), "--port", "7003"], env)
    assert resolved.port == 7003  # flag
    assert resolved.cache_ttl == 6.0 and resolved.dry_run is False  # environment over file
    assert resolved.grace == 3.0 and resolved.log_format == "json"  # file over defaults
    from_env_file = resolve([], {"SCOPESVC_CONFIG": str(path)})
    assert from_env_file.port == 7001 and from_env_file.dry_run is True
    assert resolve(["--no-dry-run", "--config", str(path)]).dry_run is False


@pytest.mark.parametrize(
    ("argv", "env", "file", "message"),
    [
        ([], {"SCOPESVC_PORT": "http"}, None, "SCOPESVC_PORT: bad value 'http'"),
        ([], {"SCOPESVC_DRY_RUN": "maybe"}, None, "SCOPESVC_DRY_RUN: bad value 'maybe'"),
        ([], {"SCOPESVC_LOG_FORMAT": "xml"}, None, "SCOPESVC_LOG_FORMAT: must be one of text, json"),
        ([], {}, "colour: blue\n", "unknown option 'colour'"),
        ([], {}, "- port\n", "must be a mapping"),
        ([], {}, "port: [1]\n", "port: bad value [1]"),
        ([], {}, "port: 7.5\n", "port: bad value 7.5: expected an integer"),
        (["--port", "70000"], {}, None, "port: must be 0..65535"),
        (["--tls-cert", "c.pem"], {}, None, "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "ca.pem"], {}, None, "mutual TLS needs --tls-cert"),
        (["--host", ""], {}, None, "give a TCP --host or a --uds socket"),
        (["--decision-log-sample", "2"], {}, None, "decision_log_sample: must be between 0 and 1"),
        (["--cache-size", "-1"], {}, None, "cache_size: must not be negative"),
    ],
)
def test_bad_configuration_is_a_clear_error(tmp_path, argv, env, file, message):
    if file is not None:
        path = tmp_path / "c.yaml"
        path.write_text(file)
        argv = [*argv, "--config", str(path)]
    with pytest.raises(config.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resolve(argv, env)


def test_cli_exits_2_on_bad_configuration(capsys, monkeypatch):
    monkeypatch.setenv("SCOPESVC_MAX_MESSAGE_BYTES", "10")
    assert main(["serve", "--port", "0"]) == 2
    assert "max_message_bytes: must be at least 1024" in capsys.readouterr().err


def test_cli_exits_2_on_unreadable_tls_files(tmp_path):
    result = subprocess.run([sys.executable, "-m", "scopesvc", "serve", "--port", "0", "--metrics-port", "0",
                             "--tls-cert", str(tmp_path / "no.crt"), "--tls-key", str(tmp_path / "no.key")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "tls_cert: cannot read" in result.stderr


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in config.FIELDS:
        assert config.flag_name(name) in text and config.env_name(name) in text
    assert "--config" in text and "SCOPESVC_CONFIG" in text


def test_every_option_is_documented():
    docs = ROOT / "docs"
    text = (docs / "operations.md").read_text() + (docs / "gateways.md").read_text()
    missing = [config.flag_name(name) for name in config.FIELDS if f"`{config.flag_name(name)}" not in text]
    assert not missing, f"not in docs/operations.md or docs/gateways.md: {missing}"
