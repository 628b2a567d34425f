"""HTTPS on the public endpoint: config refuses a plain public endpoint unless told, each certificate source reaches
the place TLS ends (the gateway, the CLB listener, cert-manager's Secret), the private key stays a secret end to end,
and the client outputs say https. (The real nginx serving the rendered TLS config: tests/engine/test_gateway_tls.py.)"""

from __future__ import annotations

import base64

import pytest
from harness import (
    PEM_TLS,
    PUBLIC_LB_IP,
    TEST_CERTIFICATE,
    TEST_KEY,
    all_strings,
    is_secret,
    run_stack,
    unwrap,
    user_data_files,
    validate_kubernetes,
)
from test_config import problem, problems_of

from core.config.problems import ConfigError

PUBLIC = {"access.public": True, "access.allowedCidrs": ["203.0.113.0/24"]}
CAS = {"access.tls.source": "alibaba-cas", "access.tls.certificateId": "1234567890_18b2e7c0a1f_-1227033245"}
CLB = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-"
SECRET_PARAMETER = "alicloud:oos/secretParameter:SecretParameter"


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("stack", ["dev", "acs", "ack", "gke", "kubernetes"])
def test_a_public_endpoint_without_tls_is_refused_with_the_ways_out(stack):
    found = problem(stack, PUBLIC, "access.tls.source")
    assert "serves HTTPS only" in found.allowed
    assert "access.tls.source' pem" in found.fix and "access.allowPlainHttp' true" in found.fix
    assert ("alibaba-cas" in found.fix) == (stack in ("acs", "ack"))
    assert ("cert-manager" in found.fix) == (stack == "kubernetes")


def test_plain_http_when_allowed_explicitly_serves_http_and_warns(monkeypatch):
    import pulumi

    warnings = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    run = run_stack("acs", {**PUBLIC, "access.allowPlainHttp": True})
    assert run.outputs["publicApiUrl"] == f"http://{PUBLIC_LB_IP}:8000/v1"
    assert any("plain HTTP" in w and "unencrypted" in w for w in warnings)
    warnings.clear()
    run_stack("acs", {**PUBLIC, **PEM_TLS})
    assert not any("plain HTTP" in w for w in warnings)


def test_private_endpoints_stay_http_and_tls_without_a_public_endpoint_is_refused():
    assert problem("acs", PEM_TLS, "access.tls.source").allowed.startswith("applies to the public endpoint")
    run = run_stack("acs")
    assert run.outputs["privateApiUrl"].startswith("http://") and run.outputs.get("publicApiUrl") is None


def test_tls_and_plain_http_together_contradict():
    assert (
        "contradicts"
        in problem("acs", {**PUBLIC, **PEM_TLS, "access.allowPlainHttp": True}, "access.allowPlainHttp").allowed
    )


@pytest.mark.parametrize(
    "overrides,key,words",
    [
        ({"tlsKey": TEST_KEY}, "tlsCertificate", "PEM"),
        ({"tlsCertificate": TEST_CERTIFICATE}, "tlsKey", "PEM"),
        ({"tlsCertificate": "not a certificate", "tlsKey": TEST_KEY}, "tlsCertificate", "PEM"),
        ({"tlsCertificate": TEST_CERTIFICATE, "tlsKey": TEST_CERTIFICATE}, "tlsKey", "private key"),
        (
            {
                "tlsCertificate": TEST_CERTIFICATE,
                "tlsKey": TEST_KEY.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"),
            },
            "tlsKey",
            "encrypted",
        ),
    ],
)
def test_pem_needs_a_certificate_chain_and_an_unencrypted_key(overrides, key, words):
    found = problem("acs", {**PUBLIC, "access.tls.source": "pem", **overrides}, key)
    assert words in found.allowed and found.value in (None, "****")  # never the text itself


def test_the_tls_key_must_be_a_secret_and_is_never_echoed():
    problems = problems_of("acs", {**PUBLIC, **PEM_TLS}, secret_keys=["apiKey", "tlsCertificate"])
    found = [p for p in problems if p.key == "tlsKey"]
    assert found and "plaintext" in found[0].allowed and found[0].value == "****"
    assert all(TEST_KEY not in str(p) for p in problems)


def test_an_ecs_key_must_fit_an_oos_encrypted_parameter():
    body = "A" * 4100
    big = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    assert "4096" in problem("dev", {**PUBLIC, **PEM_TLS, "tlsKey": big}, "tlsKey").allowed
    run_stack("acs", {**PUBLIC, **PEM_TLS, "tlsKey": big})  # a Kubernetes Secret holds it


@pytest.mark.parametrize(
    "stack,overrides,key,words",
    [
        ("dev", CAS, "access.tls.source", "acs, ack or ack-edge"),
        ("gke", CAS, "access.tls.certificateId", "applies to target"),
        ("acs", {"access.tls.source": "alibaba-cas"}, "access.tls.certificateId", "required"),
        ("acs", {"access.tls.source": "cert-manager"}, "access.tls.source", "target kubernetes"),
        ("kubernetes", {"access.tls.source": "cert-manager"}, "access.tls.issuer", "required"),
        (
            "kubernetes",
            {"access.tls.source": "cert-manager", "access.tls.issuer": "le"},
            "access.tls.hostname",
            "required",
        ),
        ("acs", {**CAS, "access.tls.certificateId": "id with spaces"}, "access.tls.certificateId", "certificate id"),
    ],
)
def test_each_source_where_it_works_and_with_what_it_needs(stack, overrides, key, words):
    assert words in problem(stack, {**PUBLIC, **overrides}, key).allowed


# ---------------------------------------------------------------------------------------------- Kubernetes


def services(run) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in run.kubernetes_objects() if o["kind"] == "Service"}


def serving_pod(run) -> dict:
    return run.kubernetes_object("Deployment")["spec"]["template"]["spec"]


def gateway_conf(run) -> str:
    (conf,) = [o for o in run.kubernetes_objects() if o["kind"] == "ConfigMap" and "nginx.conf" in o.get("data", {})]
    return conf["data"]["nginx.conf"]


def gateway(run) -> dict:
    return next(c for c in serving_pod(run)["containers"] if c["name"] == "gateway")


@pytest.mark.parametrize("stack", ["acs", "ack", "gke", "kubernetes"])
def test_pem_terminates_at_the_gateway_from_a_tls_secret_and_only_the_public_service_targets_it(stack):
    run = run_stack(stack, {**PUBLIC, **PEM_TLS})
    # Every plain object (the TLS Secret, Services, NetworkPolicies, the pods) against the real schemas, strictly.
    assert not [kind for kind in validate_kubernetes(run) if kind.startswith(("v1/", "apps/", "networking.k8s.io/"))]
    secret = next(o for o in run.kubernetes_objects() if o["kind"] == "Secret" and o["type"] == "kubernetes.io/tls")
    assert secret["immutable"] is True and set(secret["stringData"]) == {"tls.crt", "tls.key"}
    raw = next(
        r for r in run.of_type("kubernetes:core/v1:Secret") if unwrap(r.inputs).get("type") == "kubernetes.io/tls"
    )
    assert is_secret(raw.inputs["stringData"])  # the whole map travels as a secret
    pod = serving_pod(run)
    volume = next(v for v in pod["volumes"] if v["name"] == "gateway-tls")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert {p["name"]: p["containerPort"] for p in gateway(run)["ports"]} == {
        "http": 8000,
        "https": 8443,
        "metrics": 8002,
    }
    conf = gateway_conf(run)
    assert "listen 0.0.0.0:8443 ssl default_server;" in conf and "listen 0.0.0.0:8000;" in conf
    assert "ssl_certificate_key /etc/llm-gateway-tls/tls.key;" in conf and TEST_KEY.split("\n")[1] not in conf
    by_name = services(run)
    assert by_name["llm-public"]["spec"]["ports"] == [
        {"name": "https", "port": 8000, "targetPort": "https", "protocol": "TCP"}
    ]
    for name in ("llm-api", *(["llm-private"] if "llm-private" in by_name else [])):
        assert by_name[name]["spec"]["ports"][0]["targetPort"] == "http"  # inside the cluster / VPC: plain HTTP
    assert run.outputs["publicApiUrl"] == f"https://{PUBLIC_LB_IP}:8000/v1"
    assert run.outputs["privateApiUrl"].startswith("http://")
    assert f"curl https://{PUBLIC_LB_IP}:8000/v1/chat/completions" in run.outputs["curlCommand"]
    assert run.outputs["chatboxSettings"]["apiHost"] == f"https://{PUBLIC_LB_IP}:8000"
    assert f"base_url='https://{PUBLIC_LB_IP}:8000/v1'" in run.outputs["openaiSnippet"]
    key_body = TEST_KEY.split("\n")[1]
    for resource in run.resources:
        if resource is raw:
            continue
        for text in all_strings(unwrap(resource.inputs)):
            assert key_body not in text, f"{resource.type} {resource.name} holds the TLS key"
    assert all(key_body not in str(v) for v in run.outputs.values())


def test_the_hostname_names_the_certificate_in_the_outputs():
    run = run_stack("gke", {**PUBLIC, **PEM_TLS, "access.tls.hostname": "llm.example.com"})
    assert run.outputs["publicApiUrl"] == "https://llm.example.com:8000/v1"


def test_a_new_certificate_rolls_the_pods():
    def secret_name(certificate):
        run = run_stack("acs", {**PUBLIC, **PEM_TLS, "tlsCertificate": certificate})
        return serving_pod(run)["volumes"][-1]["secret"]["secretName"]

    other = TEST_CERTIFICATE.replace("TUlJQ", "TUlJR")
    assert secret_name(TEST_CERTIFICATE) != secret_name(other)


@pytest.mark.parametrize("stack", ["acs", "ack", "ack-edge"])
def test_alibaba_cas_puts_the_certificate_on_the_public_clb_which_sends_plain_http_inside_the_vpc(stack):
    run = run_stack(stack, {**PUBLIC, **CAS})
    by_name = services(run)
    public = by_name["llm-public"]
    annotations = public["metadata"]["annotations"]
    assert annotations[CLB + "protocol-port"] == "https:8000"
    assert annotations[CLB + "cert-id"] == CAS["access.tls.certificateId"]
    assert public["spec"]["ports"] == [{"name": "https", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert not any(
        CLB + "cert-id" in (s["metadata"].get("annotations") or {}) for n, s in by_name.items() if n != "llm-public"
    )
    assert not any(o["kind"] == "Secret" and o.get("type") == "kubernetes.io/tls" for o in run.kubernetes_objects())
    assert "ssl" not in gateway_conf(run)
    assert run.outputs["publicApiUrl"] == f"https://{PUBLIC_LB_IP}:8000/v1"


def test_cert_manager_issues_the_certificate_the_gateway_serves():
    overrides = {
        **PUBLIC,
        "access.tls.source": "cert-manager",
        "access.tls.issuer": "letsencrypt",
        "access.tls.hostname": "llm.example.com",
    }
    run = run_stack("kubernetes", overrides)
    assert "cert-manager.io/v1/Certificate" in validate_kubernetes(run)  # a custom resource: checked below
    certificate = next(o for o in run.kubernetes_objects() if o["kind"] == "Certificate")
    assert certificate["apiVersion"] == "cert-manager.io/v1"
    spec = certificate["spec"]
    assert spec["issuerRef"] == {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert spec["dnsNames"] == ["llm.example.com"]
    volume = next(v for v in serving_pod(run)["volumes"] if v["name"] == "gateway-tls")
    assert volume["secret"]["secretName"] == spec["secretName"]
    assert services(run)["llm-public"]["spec"]["ports"][0]["targetPort"] == "https"
    assert run.outputs["publicApiUrl"] == "https://llm.example.com:8000/v1"


# ---------------------------------------------------------------------------------------------- ecs


def test_ecs_serves_https_on_the_api_port_with_the_key_from_an_oos_parameter():
    run = run_stack("dev", {**PUBLIC, **PEM_TLS})
    user_data = base64.b64decode(unwrap(run.one("alicloud:ecs/instance:Instance").inputs)["userData"]).decode()
    nginx = user_data_files(user_data)["/etc/llm-serving/gateway/nginx.conf"]
    assert "listen 0.0.0.0:8000 ssl default_server;" in nginx
    assert "ssl_certificate_key /etc/llm-gateway/tls/key.pem;" in nginx
    assert "GATEWAY_TLS_DIR=/etc/llm-serving/gateway/tls" in user_data
    parameters = {unwrap(r.inputs)["secretParameterName"]: r for r in run.of_type(SECRET_PARAMETER)}
    assert set(parameters) == {"llm-dev-api-key", "llm-dev-tls-key"}
    assert is_secret(parameters["llm-dev-tls-key"].inputs["value"])
    assert unwrap(parameters["llm-dev-tls-key"].inputs["value"]) == TEST_KEY
    command = base64.b64decode(unwrap(run.one("alicloud:ecs/command:Command").inputs)["commandContent"]).decode()
    assert "TLS_KEY_VALUE='{{oos-secret:llm-dev-tls-key}}'" in command
    assert TEST_CERTIFICATE.strip() in command  # public; the key never is
    policy = unwrap(run.one("alicloud:ram/policy:Policy").inputs)["policyDocument"]
    assert "secretparameter/llm-dev-tls-key" in policy and "secretparameter/llm-dev-api-key" in policy
    key_body = TEST_KEY.split("\n")[1]
    for resource in run.resources:
        if resource is parameters["llm-dev-tls-key"]:
            continue
        for text in all_strings(unwrap(resource.inputs)):
            assert key_body not in text and key_body not in _b64(text), f"{resource.type} holds the TLS key"
    # Nor any file the host unpacks from its user-data (the large ones go gzip-compressed).
    assert not [path for path, text in user_data_files(user_data).items() if key_body in text]
    assert run.outputs["publicApiUrl"] == "https://47.96.0.10:8000/v1"
    assert run.outputs["privateApiUrl"] == "https://192.168.0.10:8000/v1"


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode(errors="ignore")
    except ValueError:
        return ""


def test_config_error_is_one_exception_listing_tls_with_the_other_problems():
    with pytest.raises(ConfigError) as error:
        run_stack("acs", {**PUBLIC, "access.tls.source": "pem", "engine.maxModelLen": 0})
    keys = {p.key for p in error.value.problems}
    assert {"tlsCertificate", "tlsKey", "engine.maxModelLen"} <= keys
