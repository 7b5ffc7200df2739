"""`scopesvc export envoy`: what it prints and writes, and how it refuses bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from scopesvc.cli import main

JWT = ["--jwt-issuer", "https://issuer.test", "--jwt-audience", "api.test", "--jwt-jwks-file", "/etc/jwks.json"]


def test_filters_for_a_connection_manager(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "envoy", *JWT]) == 0
    out = capsys.readouterr().out
    document = yaml.safe_load(out)
    assert [f["name"] for f in document["http_filters"]] == [
        "envoy.filters.http.jwt_authn", "scopesvc.decide", "scopesvc.enforce"]
    assert document["normalize_path"] is False and document["merge_slashes"] is False
    assert out.startswith("# Envoy configuration exported by scopesvc from catalog calendly-api-v2")


def test_bootstrap_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "envoy.yaml"
    assert main(["export", "envoy", *JWT, "--bootstrap", "--upstream", "api.internal:8080", "--listen-port", "9000",
                 "-o", str(target)]) == 0
    config = yaml.safe_load(target.read_text())
    listener = config["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"]["port_value"] == 9000
    upstream = config["static_resources"]["clusters"][0]
    assert upstream["type"] == "STRICT_DNS" and upstream["name"] == "upstream"
    assert [p.name for p in tmp_path.iterdir()] == ["envoy.yaml"]


def test_lds_mode_and_remote_jwks(tmp_path: Path) -> None:
    jwt = ["--jwt-issuer", "https://issuer.test", "--jwt-jwks-uri", "https://issuer.test/jwks"]
    assert main(["export", "envoy", *jwt, "--bootstrap", "--upstream", "127.0.0.1:8080",
                 "--lds-path", str(tmp_path / "lds.yaml"), "-o", str(tmp_path / "b.yaml")]) == 0
    config = yaml.safe_load((tmp_path / "b.yaml").read_text())
    assert "listeners" not in config["static_resources"]
    assert config["dynamic_resources"]["lds_config"]["path_config_source"]["path"] == str(tmp_path / "lds.yaml")
    jwks = config["static_resources"]["clusters"][1]
    assert jwks["name"] == "jwks" and jwks["transport_socket"]["typed_config"]["sni"] == "issuer.test"
    assert main(["export", "envoy", *jwt, "--lds", "-o", str(tmp_path / "lds.yaml")]) == 0
    resource = yaml.safe_load((tmp_path / "lds.yaml").read_text())["resources"][0]
    assert resource["@type"].endswith("envoy.config.listener.v3.Listener") and resource["name"] == "api"


@pytest.mark.parametrize("argv, message", [
    (["--bootstrap"], "--bootstrap needs --upstream"),
    (["--bootstrap", "--upstream", "nohost"], "--upstream must be HOST:PORT"),
    (["--jwt-issuer", ""], "--jwt-issuer is required"),
])
def test_bad_input_exits_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "envoy", *JWT, *argv]) == 2
    assert message in capsys.readouterr().err


def test_bad_jwks_uri_and_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "envoy", "--jwt-issuer", "i", "--jwt-jwks-uri", "ftp://x"]) == 2
    assert "--jwt-jwks-uri must be an absolute http(s) URL" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: nope\n")
    assert main(["export", "envoy", *JWT, "--catalog", str(bad)]) == 2
    assert "invalid catalog" in capsys.readouterr().err


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "envoy", *JWT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["merge_slashes"] is False
