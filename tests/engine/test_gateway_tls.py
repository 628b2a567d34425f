"""HTTPS at the real nginx with the program's gateway config: a generated certificate, TLS only on the API port,
the key check unchanged over TLS, and the optional plain listener for in-cluster clients."""

from __future__ import annotations

import dataclasses
import signal
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

import gateway_check as check
import pytest
import substitutions as subs
from conftest import free_port, gateway_config, start_gateway, stop

from core.gateway import DEFAULT_ROUTES, GatewayTls, render_nginx_conf

KEY = subs.API_KEY
HOST = "127.0.0.1"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(workdir: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (P-256 keys), as a user would bring them."""
    d = workdir / "tls"
    d.mkdir(exist_ok=True)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ca_key))
    _openssl("req", "-x509", "-new", "-key", str(ca_key), "-subj", "/CN=llm test CA", "-days", "2", "-out", str(ca))
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    _openssl("req", "-new", "-key", str(key), "-subj", "/CN=127.0.0.1", "-out", str(csr))
    ext = d / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip
    key.chmod(0o644)  # read by nginx as nobody here; in a pod the Secret volume, on ecs a root-only directory
    return {"ca": ca, "cert": cert, "key": key}


@pytest.fixture(scope="module")
def tls_gateway(engine, workdir, certificates):
    base = gateway_config(workdir, engine.port, name="tls-gateway")
    config = dataclasses.replace(
        base,
        tls=GatewayTls(certificate_file=str(certificates["cert"]), key_file=str(certificates["key"])),
        plain_port=free_port(),
    )
    gateway = start_gateway(workdir, config, name="tls-gateway")
    yield gateway
    stop(gateway.process, signal.SIGQUIT, 30)


@pytest.fixture
def trust(certificates, monkeypatch):
    """urllib (and so gateway_check) verifies the server against the test CA, host name included."""
    context = ssl.create_default_context(cafile=str(certificates["ca"]))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    monkeypatch.setattr(urllib.request, "_opener", opener)
    return context


def https_url(gateway) -> str:
    return f"https://{HOST}:{gateway.config.listen_port}"


def test_the_conf_under_test_is_the_one_the_program_renders(tls_gateway):
    text = tls_gateway.conf_path.read_text()
    assert text == render_nginx_conf(tls_gateway.config)
    assert f"listen 0.0.0.0:{tls_gateway.config.listen_port} ssl default_server;" in text
    assert check.audit_conf(text) == []


def test_https_serves_the_api_with_the_key_and_refuses_without(tls_gateway, trust):
    url = https_url(tls_gateway)
    assert check.request("GET", f"{url}/v1/models", KEY)[0] == 200
    assert check.request("GET", f"{url}/health")[0] == 200
    for key in (None, "wrong-key-0123456789"):
        status, body, _ = check.request("GET", f"{url}/v1/models", key)
        assert status == 401 and check.from_gateway(status, body)


def test_every_engine_route_is_refused_over_https(engine, tls_gateway, trust):
    routes = check.engine_routes(engine.url)
    assert check.probe(https_url(tls_gateway), KEY, routes, set(DEFAULT_ROUTES), subs.SERVED_NAME) == []


def test_plain_http_on_the_tls_port_gets_400_and_reaches_no_route(tls_gateway):
    """nginx answers a plain request on an ssl port with 400 ("The plain HTTP request was sent to HTTPS port"),
    with or without the key: the bearer key sent in clear would have crossed the network already, which is why
    config refuses a plain public endpoint; here the point is that nothing behind the port answers it."""
    port = tls_gateway.config.listen_port
    for path in ("/v1/models", "/invocations", "/health"):
        for key in (None, KEY):
            status, body, _ = check.request("GET", f"http://{HOST}:{port}{path}", key)
            assert status == 400 and b"HTTPS port" in body, (path, status, body[:200])


def test_the_handshake_offers_only_tls_1_2_and_up_with_the_configured_certificate(tls_gateway, certificates):
    port = tls_gateway.config.listen_port
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    try:
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with pytest.raises(ssl.SSLError), socket.create_connection((HOST, port), timeout=5) as raw:
        with old.wrap_socket(raw, server_hostname=HOST):
            pass
    modern = ssl.create_default_context(cafile=str(certificates["ca"]))
    with socket.create_connection((HOST, port), timeout=5) as raw, modern.wrap_socket(raw, server_hostname=HOST) as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        served = ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True))
    assert served.strip() == certificates["cert"].read_text().strip()


def test_an_untrusted_client_is_refused_by_its_own_verification(tls_gateway):
    """Without the CA the client's verification fails: the certificate is what the gateway serves, not a default."""
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{https_url(tls_gateway)}/health", timeout=5, context=ssl.create_default_context())


def test_the_plain_listener_for_in_cluster_clients_keeps_the_key_check(engine, tls_gateway):
    url = f"http://{HOST}:{tls_gateway.config.plain_port}"
    assert check.request("GET", f"{url}/v1/models", KEY)[0] == 200
    assert check.request("GET", f"{url}/v1/models")[0] == 401
    assert check.probe(url, KEY, check.engine_routes(engine.url), set(DEFAULT_ROUTES), subs.SERVED_NAME) == []


def test_the_hosts_readiness_checks_pass_over_https(tls_gateway, tmp_path):
    """ecs with TLS: ready.sh checks /health and the key through the TLS port (its loopback check skips the name)."""
    from test_gateway_live import check_readiness_script

    check_readiness_script(tls_gateway.config.listen_port, KEY, tmp_path, tls=True)
