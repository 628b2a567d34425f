"""The ecs target as deployed: resources, security rules, options, outputs and secrecy."""

import base64
import json
import re
import subprocess
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest
from harness import (
    GENERATED_API_KEY,
    PEM_TLS,
    all_strings,
    closure,
    header,
    is_secret,
    run_provider_isolated,
    run_stack,
    serve_on_loopback,
    unwrap,
    user_data_files,
)

from core.config.problems import ConfigError

INSTANCE = "alicloud:ecs/instance:Instance"
RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
INVOCATION = "alicloud:ecs/ecsInvocation:EcsInvocation"
COMMAND = "alicloud:ecs/command:Command"
SECRET_PARAMETER = "alicloud:oos/secretParameter:SecretParameter"
CONFIGURED_KEY = "configured-KEY-abcdefghijklmnopqrstuvwxyz-0123"


@pytest.fixture(scope="module")
def dev():
    return run_stack("dev")


@pytest.fixture(scope="module")
def prod():
    return run_stack("prod")


def ingress(run):
    return sorted((unwrap(r.inputs)["portRange"], unwrap(r.inputs)["cidrIp"]) for r in run.of_type(RULE))


NGINX_CONF = "/etc/llm-serving/gateway/nginx.conf"


def user_data(run):
    return base64.b64decode(unwrap(host_instance(run).inputs)["userData"]).decode()


def host_instance(run):
    """The GPU host (not one of the import workers of ecs.weights.source import)."""
    (host,) = [r for r in run.of_type(INSTANCE) if "-import-" not in r.name]
    return host


def test_dev_builds_network_nat_instance_key_and_readiness_gate(dev):
    assert {
        "alicloud:vpc/network:Network",
        "alicloud:vpc/switch:Switch",
        "alicloud:ecs/securityGroup:SecurityGroup",
        "alicloud:vpc/natGateway:NatGateway",
        "alicloud:vpc/snatEntry:SnatEntry",
        INSTANCE,
        SECRET_PARAMETER,
        COMMAND,
        INVOCATION,
        "random:index/randomPassword:RandomPassword",
    } <= dev.types()
    instance = unwrap(dev.one(INSTANCE).inputs)
    assert instance["instanceType"] == "ecs.gn7i-c16g1.4xlarge"
    assert instance["systemDiskSize"] == 140 and instance["systemDiskCategory"] == "cloud_essd"
    assert instance["internetMaxBandwidthOut"] == 0  # private: egress through NAT
    assert instance["httpTokens"] == "optional"  # the agent reads the role without a token (cloud rule)
    vswitch = unwrap(dev.one("alicloud:vpc/switch:Switch").inputs)
    assert vswitch["zoneId"] == "cn-hangzhou-i"  # the first zone the lookup returned


def test_zone_lookup_asks_for_the_instance_type_and_disk(dev):
    _token, args = next(i for i in dev.invokes if i[0] == "alicloud:index/getZones:getZones")
    assert args["availableInstanceType"] == "ecs.gn7i-c16g1.4xlarge"
    assert args["availableResourceCreation"] == "VSwitch" and args["availableDiskCategory"] == "cloud_essd"


def test_api_is_private_and_ssh_closed_by_default(dev):
    # The gateway's API port and its metrics port from the VPC only; never the engine's loopback port.
    assert ingress(dev) == [("8000/8000", "192.168.0.0/16"), ("8002/8002", "192.168.0.0/16")]


def test_the_engine_listens_on_loopback_behind_the_gateway_on_the_api_port(dev):
    from core.gateway import ENGINE_LOOPBACK_PORT

    text = user_data(dev)
    assert f"--host 127.0.0.1 --port {ENGINE_LOOPBACK_PORT}" in text and "0.0.0.0 --port" not in text
    # vLLM 0.11.0 (the mainland default) has no --shutdown-timeout; the host drains anyway: systemd stops the
    # gateway first, which lets streams finish while the engine still runs.
    assert "--shutdown-timeout" not in text
    abroad = user_data(run_stack("dev", {"alicloud:region": "ap-southeast-1"}))
    assert "--shutdown-timeout 100" in abroad  # below llm-serving.service's docker stop --time 120
    nginx = user_data_files(text)[NGINX_CONF]  # gzip-compressed in the user-data, like the large scripts
    assert "listen 0.0.0.0:8000 default_server;" in nginx and f"server 127.0.0.1:{ENGINE_LOOPBACK_PORT};" in nginx
    # The key's map entry lives in the key file the map includes, never in the conf itself.
    assert "include /etc/llm-gateway/api-key.map;" in nginx
    assert not re.search(r'^\s*"Bearer [^"]+"\s+1;', nginx, re.M)
    assert "GATEWAY_IMAGE=alibaba-cloud-linux-3-registry" in text  # mainland China: no Docker Hub
    for rule in dev.of_type(RULE):
        assert unwrap(rule.inputs)["portRange"] != f"{ENGINE_LOOPBACK_PORT}/{ENGINE_LOOPBACK_PORT}"


def test_the_host_gateway_takes_the_configured_image_and_extra_routes():
    route = {"path": "/v1/embeddings", "method": "POST", "reason": "embeddings for the search index"}
    mirrored = "registry.cn-hangzhou.aliyuncs.com/me/nginx:1.30.6-alpine"
    text = user_data(run_stack("dev", {"gateway.extraRoutes": [route], "gateway.image": mirrored}))
    assert f"GATEWAY_IMAGE={mirrored}" in text
    nginx = user_data_files(text)[NGINX_CONF]
    assert "location = /v1/embeddings {" in nginx and "proxy_pass http://llm_engine/v1/embeddings;" in nginx


def test_public_access_opens_only_the_api_port_to_the_allowed_cidrs():
    run = run_stack(
        "dev", {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["203.0.113.0/24", "198.51.100.7/32"]}
    )
    assert ingress(run) == [
        ("8000/8000", "192.168.0.0/16"),
        ("8000/8000", "198.51.100.7/32"),
        ("8000/8000", "203.0.113.0/24"),
        ("8002/8002", "192.168.0.0/16"),  # metrics: never public
    ]
    assert unwrap(run.one(INSTANCE).inputs)["internetMaxBandwidthOut"] == 100
    assert not run.of_type("alicloud:vpc/natGateway:NatGateway")
    assert run.outputs["publicApiUrl"] == "https://47.96.0.10:8000/v1"
    assert "https://47.96.0.10:8000/v1/chat/completions" in run.outputs["curlCommand"]


def test_ssh_opens_port_22_only_to_the_configured_cidrs_with_a_key_pair():
    run = run_stack("dev", {"access.sshCidrs": ["198.51.100.0/24"], "access.sshKeyPair": "ops"})
    assert ("22/22", "198.51.100.0/24") in ingress(run)
    assert unwrap(run.one(INSTANCE).inputs)["keyName"] == "ops"
    assert run.outputs["sshCommand"] == "ssh -i <ops.pem> root@192.168.0.10"


def test_prod_serves_qwq_on_four_a10_with_tensor_parallel_and_is_protected(prod):
    instance = host_instance(prod)
    assert unwrap(instance.inputs)["instanceType"] == "ecs.gn7i-4x.8xlarge"
    assert unwrap(instance.inputs)["deletionProtection"] is True and instance.protect
    assert "--tensor-parallel-size 4" in user_data(prod) and "/root/llm-model/Qwen/QwQ-32B" in user_data(prod)
    assert prod.outputs["servedModelName"] == "Qwen/QwQ-32B" and prod.outputs["gpus"] == "4x A10"


def test_dev_is_not_protected_so_destroy_works(dev):
    assert not any(r.protect or r.retain_on_delete for r in dev.resources)


def test_a_newer_image_never_replaces_the_serving_host(dev):
    assert dev.one(INSTANCE).ignore_changes == ["imageId"]


def test_new_model_or_engine_settings_replace_the_host(dev):
    # user-data runs once per instance; an in-place update would leave the old model serving.
    assert dev.one(INSTANCE).replace_on_changes == ["userData"]


def test_up_waits_for_the_readiness_command_sized_for_the_model(dev):
    invocation = dev.one(INVOCATION)
    command = unwrap(dev.one(COMMAND).inputs)
    # core.durations: 16.9 min modelled (the engine image at 200 Mbit/s; the weights from ModelScope's OSS copy over
    # cn-hangzhou's internal network beside it) x 1.5 is below the 30-minute floor
    assert dev.outputs["readinessTimeoutMinutes"] == 30
    assert command["timeout"] == 30 * 60 + 300 and command["enableParameter"] is True
    assert invocation.custom_timeouts["create"] == "40m"
    secret_parameter = dev.one(SECRET_PARAMETER)
    assert secret_parameter.urn in invocation.dependencies
    assert invocation.has_replacement_trigger  # a rotated key is installed again


def test_readiness_command_checks_health_and_key_enforcement(dev):
    script = base64.b64decode(unwrap(dev.one(COMMAND).inputs)["commandContent"]).decode()
    assert "API_KEY_VALUE='{{oos-secret:llm-dev-api-key}}'" in script
    assert "/health" in script and "expected 401" in script and "TIMEOUT_SECONDS=1800" in script
    assert "/invocations" in script and "expected the gateway's 404" in script  # the path vLLM's key skips
    assert "GATEWAY_KEY_PATH=/etc/llm-serving/gateway/api-key.map" in script
    assert unwrap(dev.one(SECRET_PARAMETER).inputs)["secretParameterName"] == "llm-dev-api-key"


def test_every_child_is_parented_to_a_component(dev):
    components = {r.urn for r in dev.resources if r.type.startswith("llm:")}
    for resource in dev.resources:
        if resource.type.startswith(("alicloud:", "random:")):
            assert resource.parent in components, resource.name


def test_all_alibaba_resources_use_the_region_provider(dev):
    provider = unwrap(dev.one("pulumi:providers:alicloud").inputs)
    assert provider["region"] == "cn-hangzhou"


def test_outputs_tell_how_to_call_the_model(dev):
    out = dev.outputs
    assert out["privateApiUrl"] == "http://192.168.0.10:8000/v1"
    assert "publicApiUrl" not in out
    assert out["servedModelName"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert "$(pulumi stack output apiKey --show-secrets)" in out["curlCommand"]
    assert "OpenAI(base_url='http://192.168.0.10:8000/v1'" in out["openaiSnippet"]
    assert out["chatboxSettings"] == {
        "modelProvider": "Add custom provider",
        "name": "vLLM API",
        "apiHost": "http://192.168.0.10:8000",
        "apiPath": "/v1/chat/completions",
        "improveNetworkCompatibility": True,
        "apiKey": "run: pulumi stack output apiKey --show-secrets",
        "model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    }
    assert out["healthCheck"] == "curl http://192.168.0.10:8000/health"


def test_generated_key_is_a_secret_output_and_appears_nowhere_in_plaintext(dev):
    assert dev.outputs["apiKey"] == GENERATED_API_KEY and dev.secret_outputs == {"apiKey"}
    assert_only_secret_holders(dev, GENERATED_API_KEY)


def test_configured_key_stays_secret_end_to_end():
    run = run_stack("dev", {"apiKey": CONFIGURED_KEY}, secret_keys=["apiKey"])
    assert run.outputs["apiKey"] == CONFIGURED_KEY and "apiKey" in run.secret_outputs
    assert not run.of_type("random:index/randomPassword:RandomPassword")
    assert_only_secret_holders(run, CONFIGURED_KEY)
    assert is_secret(run.one(SECRET_PARAMETER).inputs["value"])


def assert_only_secret_holders(run, key):
    """Only the OOS parameter's value may hold the key (secret-wrapped); no other input may, even as a
    secret, since the cloud would still show it (a description, a tag, user-data, a command)."""
    for resource in run.resources:
        for field, value in resource.inputs.items():
            if (resource.type, field) == (SECRET_PARAMETER, "value"):
                assert is_secret(value)
                continue
            for text in all_strings(unwrap(value)):
                assert key not in text, f"{resource.type} {resource.name}.{field} holds the API key"
                assert key not in decoded(text), f"{resource.type} {resource.name}.{field} holds it base64-encoded"
    for name, value in run.outputs.items():
        if name not in run.secret_outputs:
            assert key not in str(value), name


def decoded(text):
    try:
        return base64.b64decode(text, validate=True).decode(errors="ignore")
    except ValueError:
        return ""


def test_sglang_runs_with_its_own_image_and_key_variable():
    run = run_stack("dev", {"engine.name": "sglang"})
    text = user_data(run)
    assert "egs/sglang:0.4.6.post1" in text and '--api-key "${SGLANG_API_KEY}"' in text
    script = base64.b64decode(unwrap(run.one(COMMAND).inputs)["commandContent"]).decode()
    assert "API_KEY_ENV=SGLANG_API_KEY" in script
    assert run.outputs["chatboxSettings"]["name"] == "SGLang API"


def test_regions_outside_mainland_china_pull_upstream_images():
    run = run_stack("dev", {"alicloud:region": "ap-southeast-1"})
    assert run.outputs["engineImage"] == "docker.io/vllm/vllm-openai:v0.32.0"
    assert unwrap(run.one("pulumi:providers:alicloud").inputs)["region"] == "ap-southeast-1"


def test_uefi_only_h20_machines_get_a_uefi_image_and_fabric_manager():
    run = run_stack("dev", {"model": "QwQ-32B", "placement.instanceType": "ecs.ebmgn8v.48xlarge"})
    _token, args = next(i for i in run.invokes if i[0] == "alicloud:ecs/getImages:getImages")
    assert args["nameRegex"] == "^ubuntu_22_04_uefi_x64" and args["instanceType"] == "ecs.ebmgn8v.48xlarge"
    assert "FABRIC_MANAGER=true" in user_data(run)


def test_configured_image_skips_the_lookup():
    run = run_stack("dev", {"ecs.imageId": "m-custom123"})
    assert unwrap(run.one(INSTANCE).inputs)["imageId"] == "m-custom123"
    assert not [i for i in run.invokes if i[0] == "alicloud:ecs/getImages:getImages"]


def test_preview_builds_the_same_graph(dev):
    preview = run_stack("dev", preview=True)
    assert sorted(r.name for r in preview.resources) == sorted(r.name for r in dev.resources)


def test_tags_reach_every_taggable_resource():
    run = run_stack("dev", {"tags": {"team": "ml", "cost-center": "42"}})
    tagged = [r for r in run.resources if "tags" in r.inputs]
    assert tagged and all(unwrap(r.inputs)["tags"]["team"] == "ml" for r in tagged)


def test_v100_hosts_serve_bf16_checkpoints_as_fp16():
    run = run_stack("dev", {"placement.instanceType": "ecs.gn6e-c12g1.3xlarge"})
    assert "--dtype half" in user_data(run)
    assert "--dtype" not in user_data(run_stack("dev"))


# --- A prepared image (docs/targets/ecs-prepared-image.md) -----------------------------------------------------

COMPONENT = "alicloud:ecs/ecsImageComponent:EcsImageComponent"
PIPELINE = "alicloud:ecs/ecsImagePipeline:EcsImagePipeline"
EXECUTION = "alicloud:ecs/imagePipelineExecution:ImagePipelineExecution"
DYNAMIC = "pulumi-python:dynamic:Resource"
BUILD = {"ecs.preparedImage.build": True}


def test_a_build_on_request_makes_the_image_with_image_builder_beside_a_host_from_ubuntu(tmp_path):
    import json
    from pathlib import Path

    from harness import PREPARED_IMAGE_ID

    run = run_stack("dev", BUILD)
    assert unwrap(run.one(INSTANCE).inputs)["imageId"] == "m-ubuntu2204-mock"  # the first host: public Ubuntu
    component, pipeline = unwrap(run.one(COMPONENT).inputs), unwrap(run.one(PIPELINE).inputs)
    assert pipeline["baseImageType"] == "IMAGE" and pipeline["baseImage"] == "m-ubuntu2204-mock"
    assert pipeline["buildContent"] == f"COMPONENT {run.one(COMPONENT).name}-id"
    assert pipeline["vswitchId"] == unwrap(run.one(INSTANCE).inputs)["vswitchId"]  # behind the stack's NAT
    assert pipeline["internetMaxBandwidthOut"] == 0 and pipeline["systemDiskSize"] == 80
    assert pipeline["deleteInstanceOnFailure"] is True
    # The provider's execution only starts the build; the dynamic resource waits for it and holds the image.
    execution = run.one(EXECUTION)
    assert unwrap(execution.inputs)["imagePipelineId"] == f"{run.one(PIPELINE).name}-id"
    image = next(r for r in run.of_type(DYNAMIC) if "execution_id" in r.inputs)
    assert execution.urn in image.dependencies and not image.retain_on_delete
    assert run.outputs["preparedImageId"] == PREPARED_IMAGE_ID
    assert "DescribeImagePipelineExecutions --RegionId cn-hangzhou --ExecutionId" in run.outputs["preparedImageBuild"]
    # What the intermediate instance runs: the host's own scripts in Image Builder mode, shellcheck-clean.
    (task,) = json.loads(component["content"])["Tasks"]
    assert task["Action"] == "RunShellCommand" and component["componentType"] == "Build"
    script = task["Properties"]["commandContent"]
    assert (
        "/var/tmp/llm-serving-image/bootstrap.sh --prepare-image" in script
        and "/usr/local/lib/llm-serving/install-driver.sh" in script
    )
    assert "ENGINE_IMAGE=egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm" in script
    path = tmp_path / "prepare.sh"
    path.write_text(script)
    shellcheck = str(Path(sys.executable).parent / "shellcheck")
    result = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_build_waits_long_enough_and_the_image_is_kept_only_when_retained():
    from core import durations

    run = run_stack("dev", BUILD)
    image = next(r for r in run.of_type(DYNAMIC) if "execution_id" in r.inputs)
    modelled = durations.prepared_image_build(200, False).minutes
    assert image.inputs["wait_minutes"] >= modelled
    assert int(image.custom_timeouts["create"].removesuffix("m")) >= image.inputs["wait_minutes"]
    kept = next(
        r
        for r in run_stack("dev", {**BUILD, "ecs.preparedImage.retain": True}).of_type(DYNAMIC)
        if "execution_id" in r.inputs
    )
    assert kept.retain_on_delete
    assert "prepared image" in str(run.outputs["costEstimate"])


def test_a_public_host_builds_with_the_builders_own_bandwidth():
    run = run_stack("dev", {**BUILD, **PEM_TLS, "access.public": True, "access.allowedCidrs": ["203.0.113.0/24"]})
    assert unwrap(run.one(PIPELINE).inputs)["internetMaxBandwidthOut"] == 100  # no NAT; the API's maximum


def test_a_taken_prepared_image_is_checked_and_starts_the_host():
    from harness import PREPARED_IMAGE_ID

    run = run_stack("dev", {"ecs.preparedImage.id": PREPARED_IMAGE_ID}, images=[PREPARED_IMAGE_ID])
    assert unwrap(run.one(INSTANCE).inputs)["imageId"] == PREPARED_IMAGE_ID
    _token, args = next(i for i in run.invokes if i[0] == "alicloud:ecs/getImages:getImages")
    assert args["imageId"] == PREPARED_IMAGE_ID
    assert not run.of_type(PIPELINE) and run.outputs["hostImage"] == PREPARED_IMAGE_ID
    # The wait is modelled without the installs and the pull (both waits sit at the 30-minute floor).
    assert run.outputs["expectedReadyMinutes"]["total"] < run_stack("dev").outputs["expectedReadyMinutes"]["total"]
    assert run.outputs["readinessTimeoutMinutes"] <= run_stack("dev").outputs["readinessTimeoutMinutes"]
    with pytest.raises(ConfigError, match=r"ecs\.preparedImage\.id.*is no image in cn-hangzhou"):
        run_stack("dev", {"ecs.preparedImage.id": "m-bp1someoneelse01"}, images=[PREPARED_IMAGE_ID])
    with pytest.raises(ConfigError, match=r"disk\.sizeGib.*smaller than the prepared image m-bp1bigimage0001 \(500"):
        run_stack("dev", {"ecs.preparedImage.id": "m-bp1bigimage0001"}, images=["m-bp1bigimage0001"])
    with pytest.raises(ConfigError, match=r"disk\.sizeGib.*smaller than the prepared image's 80 GiB"):
        run_stack("dev", {"ecs.preparedImage.id": PREPARED_IMAGE_ID, "disk.sizeGib": 79}, images=[PREPARED_IMAGE_ID])


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({**BUILD, "ecs.preparedImage.id": "m-bp1preparedmock01"}, "ecs.preparedImage.id"),
        ({"ecs.preparedImage.retain": True}, "ecs.preparedImage.retain"),
        ({"ecs.preparedImage.id": "m-bp1preparedmock01", "ecs.imageId": "m-custom123"}, "ecs.imageId"),
        ({"ecs.weights.source": "oss"}, "ecs.weights.bucket"),
        ({"ecs.weights.bucket": "my-models"}, "ecs.weights.bucket"),
        ({"ecs.preparedImage.id": "ubuntu_22_04"}, "ecs.preparedImage.id"),
        ({"ecs.weights.parallel": 65}, "ecs.weights.parallel"),
    ],
)
def test_prepared_image_and_weights_settings_that_cannot_work_are_refused(overrides, key):
    from harness import settings_for

    with pytest.raises(ConfigError, match=rf"{key.replace('.', chr(92) + '.')}"):
        settings_for("dev", overrides)


# --- The weights from OSS in the region ------------------------------------------------------------------------

# A bucket another stack filled; prod's own import (ecs.weights.importWorkers) is unset.
NO_IMPORT = {"ecs.weights.source": None, "ecs.weights.importWorkers": None}  # ModelScope onto the host
OSS = {"ecs.weights.source": "oss", "ecs.weights.bucket": "my-models", "ecs.weights.importWorkers": None}


def test_weights_from_a_bucket_in_the_region_use_the_internal_endpoint_and_the_hosts_role():
    import json

    prod = run_stack("prod", NO_IMPORT)
    run = run_stack("prod", OSS)
    text = user_data(run)
    assert "WEIGHTS_SOURCE=oss" in text and "WEIGHTS_BUCKET=my-models" in text
    assert "OSS_ENDPOINT=oss-cn-hangzhou-internal.aliyuncs.com" in text
    assert "| gunzip > /usr/local/lib/llm-serving/fetch-oss.py" in text  # compressed: the user-data's 32 KB
    # Each host ships only the fetch it runs: the bucket's copy, or the download from ModelScope.
    assert "/usr/local/lib/llm-serving/fetch-model.sh" not in user_data_files(text)
    assert "/usr/local/lib/llm-serving/fetch-oss.py" not in user_data(prod)
    assert "/usr/local/lib/llm-serving/fetch-model.sh" in user_data_files(user_data(prod))
    policy = json.loads(unwrap(run.one("alicloud:ram/policy:Policy").inputs)["policyDocument"])
    reads = [s for s in policy["Statement"] if "oss:GetObject" in s["Action"]]
    assert reads == [
        {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": ["acs:oss:*:*:my-models/models/Qwen/QwQ-32B/*"]}
    ]
    assert run.outputs["weightsSource"] == "oss://my-models/models/Qwen/QwQ-32B/"
    assert not [r for r in run.resources if "accessKey" in r.type]  # no long-lived key anywhere
    # Never longer than ModelScope's way; in cn-hangzhou both are bounded by the engine image through the NAT.
    assert run.outputs["readinessTimeoutMinutes"] <= prod.outputs["readinessTimeoutMinutes"]


def test_a_host_copying_weights_without_the_role_to_read_them_is_refused():
    import cloud_rules

    from components.alibaba import instance_role

    original = instance_role.bucket_read_statements
    instance_role.bucket_read_statements = lambda bucket, prefix: original("other-bucket", prefix)
    try:
        import stacks.alibaba.ecs as ecs_stack

        ecs_stack.bucket_read_statements = instance_role.bucket_read_statements
        with pytest.raises(cloud_rules.CloudRefusal, match="may not oss:GetObject oss://my-models/"):
            run_stack("dev", OSS)
    finally:
        instance_role.bucket_read_statements = original
        ecs_stack.bucket_read_statements = original


# --- The weights streamed from OSS into the engine (ecs.weights.load stream) -------------------------------------

STREAM = {**OSS, "ecs.weights.load": "stream", "engine.image": "vllm/vllm-openai:v0.32.0"}


def test_a_streaming_host_copies_nothing_and_its_engine_reads_the_bucket_with_the_instance_role(prod):
    from pathlib import Path

    from harness import settings_for

    from core.config.settings import EcsSettings

    run = run_stack("prod", STREAM)
    files = user_data_files(user_data(run))
    conf = files["/etc/llm-serving/serving.conf"]
    assert "WEIGHTS_LOAD=stream" in conf
    engine = next(line for line in conf.splitlines() if line.startswith("ENGINE_CMD="))
    assert " s3://my-models/models/Qwen/QwQ-32B " in engine and "--load-format runai_streamer" in engine
    assert '"distributed":true' in engine  # QwQ-32B over the host's 4 GPUs: each rank streams a share
    # The AWS config names the credential process with the ECS source; the process is the repository's script.
    config = files["/etc/llm-serving/oss-stream/aws-config"]
    assert "credential_process = python3 /etc/llm-oss-stream/rrsa-credential-process.py --source ecs-ram-role" in config
    assert "region = cn-hangzhou" in config and "addressing_style = virtual" in config
    script = Path(__file__).parents[1] / "components" / "scripts" / "rrsa-credential-process.py"
    assert files["/etc/llm-serving/oss-stream/rrsa-credential-process.py"] == script.read_text()
    env = dict(line.split("=", 1) for line in files["/etc/llm-serving/oss-stream.env"].splitlines())
    assert env == {
        "AWS_CONFIG_FILE": "/etc/llm-oss-stream/aws-config",
        "AWS_ENDPOINT_URL": "https://s3.oss-cn-hangzhou-internal.aliyuncs.com",
        "AWS_REGION": "cn-hangzhou",
        "AWS_DEFAULT_REGION": "cn-hangzhou",
        "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "RUNAI_STREAMER_LOG_TO_STDERR": "1",  # the streamer's time and rate in the engine's log
    }
    # No key anywhere: no AccessKey resource, no AWS key variable, nothing but the role.
    everything = " ".join(all_strings(run))
    assert not [r for r in run.resources if "accessKey" in r.type]
    assert not any(k in everything for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    # What the readiness wait is derived from: no copy, the load streamed by the 4 ranks (core.durations).
    streamed, copied = settings_for("prod", STREAM).ecs, settings_for("prod", OSS).ecs
    assert isinstance(settings_for("prod", STREAM), EcsSettings) and streamed.start.stream_ranks == 4
    assert copied.start.stream_ranks == 0
    assert run.outputs["readinessTimeoutMinutes"] == streamed.readiness_timeout_minutes


def test_the_streaming_hosts_role_reads_the_prefix_and_lists_exactly_what_the_streamer_lists():
    import fnmatch
    import json

    run = run_stack("prod", STREAM)
    policy = json.loads(unwrap(run.one("alicloud:ram/policy:Policy").inputs)["policyDocument"])
    reads = [s for s in policy["Statement"] if "oss:GetObject" in s["Action"]]
    assert reads == [
        {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": ["acs:oss:*:*:my-models/models/Qwen/QwQ-32B/*"]}
    ]
    (listing,) = [s for s in policy["Statement"] if "oss:ListObjects" in s["Action"]]
    assert listing["Resource"] == ["acs:oss:*:*:my-models"]
    # runai-model-streamer-s3 0.17.1 files.list_files: ListObjectsV2 with Prefix "<path>/" (trailing slash added);
    # the condition's StringLike '*' matches any characters, none included (OSS "RAM policies" condition keys).
    (pattern,) = listing["Condition"]["StringLike"]["oss:Prefix"]
    assert fnmatch.fnmatchcase("models/Qwen/QwQ-32B/", pattern)
    assert not fnmatch.fnmatchcase("models/Qwen/", pattern)  # not the rest of the bucket


def test_streaming_is_asked_for_and_refused_where_the_image_has_no_streamer():
    from harness import settings_for

    assert settings_for("prod", STREAM).ecs.weights.load == "stream"
    # The default is the copy, with any image: neither OSS path has met a live account (ecs-prepared-image.md).
    assert settings_for("prod", OSS).ecs.weights.load == "copy"
    assert settings_for("prod", {**OSS, "engine.image": "vllm/vllm-openai:v0.32.0"}).ecs.weights.load == "copy"
    assert settings_for("prod", {**STREAM, "ecs.weights.load": "copy"}).ecs.weights.load == "copy"
    with pytest.raises(ConfigError) as refused:
        settings_for("prod", {**OSS, "ecs.weights.load": "stream", "engine.name": "vllm"})
    text = str(refused.value)
    assert "ecs.weights.load" in text and "EGS vLLM 0.11.0" in text
    assert "engine.image' docker.io/vllm/vllm-openai:" in text and "ecs.weights.load' copy" in text
    with pytest.raises(ConfigError) as both:  # all at once: the bucket and the load without source oss
        settings_for("prod", {**NO_IMPORT, "ecs.weights.load": "stream", "ecs.weights.bucket": "my-models"})
    assert str(both.value).count("ecs.weights.source is modelscope") == 2
    with pytest.raises(ConfigError, match=r"ecs\.weights\.load.*SGLang"):
        settings_for("prod", {**STREAM, "ecs.weights.load": "stream", "engine.name": "sglang"})
    with pytest.raises(ConfigError, match=r"ecs\.weights\.load"):
        settings_for("prod", {**OSS, "ecs.weights.load": "fast"})


# --- The build's wait and the image's deletion, against a fake ECS API ------------------------------------------


class _FakeEcs(BaseHTTPRequestHandler):
    """The ECS API on loopback: records each request (its query, headers) and answers DescribeImages."""

    seen: ClassVar[list[tuple[dict[str, str], dict[str, str]]]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
        self.seen.append((query, {k.lower(): v for k, v in self.headers.items()}))
        body = json.dumps({"RequestId": "r-1", "Images": {"Image": [{"ImageId": query.get("ImageId")}]}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_ecs_call_goes_through_alibabas_sdk_signed_as_the_stacks_identity():
    from components.alibaba.prepared_image import call

    _FakeEcs.seen = []
    server, url = serve_on_loopback(_FakeEcs)
    try:
        credentials = {"accessKey": "S-AK", "secretKey": "S-SK", "securityToken": "S-T"}
        answer = call("cn-hangzhou", "DescribeImages", {"ImageId": "m-1"}, credentials, endpoint=url)
    finally:
        server.shutdown()
    assert answer["Images"]["Image"] == [{"ImageId": "m-1"}]
    ((query, headers),) = _FakeEcs.seen
    assert query == {"RegionId": "cn-hangzhou", "ImageId": "m-1"}
    assert (headers["x-acs-action"], headers["x-acs-version"]) == ("DescribeImages", "2014-05-26")
    assert headers["authorization"].startswith("ACS3-HMAC-SHA256 Credential=S-AK,")  # the SDK's signature
    assert headers["x-acs-security-token"] == "S-T"


def test_the_wait_follows_the_build_to_its_image_or_its_failure():
    from components.alibaba.prepared_image import wait_for_image

    states = iter(["PREPARING", "BUILDING", "DISTRIBUTING", "SUCCESS"])
    calls = []

    def send(action, params):
        calls.append((action, params))
        status = next(states)
        task = {"Status": status, "ImageId": "m-built" if status == "SUCCESS" else ""}
        return {"ImagePipelineExecution": {"ImagePipelineExecutionSet": [task]}}

    pauses = []
    assert wait_for_image("cn-hangzhou", "exec-1", {}, 3600, send, pauses.append) == "m-built"
    assert calls[0] == ("DescribeImagePipelineExecutions", {"ExecutionId": "exec-1"})
    assert len(pauses) == 3

    def failed(action, params):
        return {"ImagePipelineExecution": {"ImagePipelineExecutionSet": [{"Status": "FAILED", "Message": "apt"}]}}

    with pytest.raises(RuntimeError, match="ended FAILED: apt"):
        wait_for_image("cn-hangzhou", "exec-1", {}, 3600, failed, pauses.append)

    def stuck(action, params):
        return {"ImagePipelineExecution": {"ImagePipelineExecutionSet": [{"Status": "BUILDING"}]}}

    with pytest.raises(RuntimeError, match="still BUILDING after 2 min"):
        wait_for_image("cn-hangzhou", "exec-1", {}, 120, stuck, lambda s: None)


def test_deleting_the_image_deletes_its_snapshots_too():
    from components.alibaba.prepared_image import delete_image

    calls = []

    def send(action, params):
        calls.append((action, params.get("ImageId") or params.get("SnapshotId")))
        if action == "DescribeImages":
            mapping = [{"SnapshotId": "s-1"}, {"SnapshotId": ""}, {"SnapshotId": "s-2"}]
            return {"Images": {"Image": [{"DiskDeviceMappings": {"DiskDeviceMapping": mapping}}]}}
        return {}

    assert delete_image("cn-hangzhou", "m-built", {}, send) == ["s-1", "s-2"]
    assert calls == [
        ("DescribeImages", "m-built"),
        ("DeleteImage", "m-built"),
        ("DeleteSnapshot", "s-1"),
        ("DeleteSnapshot", "s-2"),
    ]


def test_the_build_provider_is_pickled_by_value_and_acts_as_the_stacks_identity_else_the_cli_profile(tmp_path):
    from components.alibaba.prepared_image import _provider

    home = tmp_path / "home"
    (home / ".aliyun").mkdir(parents=True)
    profile = {"name": "work", "mode": "AK", "access_key_id": "P-AK", "access_key_secret": "P-SK"}
    (home / ".aliyun" / "config.json").write_text(json.dumps({"current": "", "profiles": [profile]}))
    _FakeEcs.seen = []
    server, url = serve_on_loopback(_FakeEcs)
    script = (
        "props = {'execution_id': 'exec-1', 'region': 'cn-hangzhou', 'wait_minutes': 60, 'image_id': None}\n"
        "try:\n"  # no credentials in the props (an older stack's state) and no current profile
        "    p.create(props)\n"
        "    refused = ''\n"
        "except RuntimeError as error:\n"
        "    refused = str(error)\n"
        "p.delete('m-built', props)\n"
        "credentials = p.credentials({'profile': 'work'})\n"
        "stack = p.credentials({'accessKey': 'S-AK', 'secretKey': 'S-SK', 'securityToken': 'S-T'})\n"
        "work = {'profile': 'work'}\n"
        f"found = p.call('cn-hangzhou', 'DescribeImages', {{'ImageId': 'm-1'}}, work, endpoint={url!r})\n"
        "states = iter(['BUILDING', 'SUCCESS'])\n"
        "def build(action, params):\n"
        "    status = next(states)\n"
        "    task = {'Status': status, 'ImageId': 'm-built' if status == 'SUCCESS' else ''}\n"
        "    return {'ImagePipelineExecution': {'ImagePipelineExecutionSet': [task]}}\n"
        "pauses = []\n"
        "image = p.wait_for_image('cn-hangzhou', 'exec-1', {}, 3600, build, pauses.append)\n"
        "calls = []\n"
        "def ecs(action, params):\n"
        "    calls.append(action)\n"
        "    mapping = {'DiskDeviceMappings': {'DiskDeviceMapping': [{'SnapshotId': 's-1'}]}}\n"
        "    return {'Images': {'Image': [mapping]}} if action == 'DescribeImages' else {}\n"
        "snapshots = p.delete_image('cn-hangzhou', image, {}, ecs)\n"
        "print(json.dumps([type(p).__name__, refused, credentials, stack, found, image, pauses, snapshots, calls]))\n"
    )
    try:
        done, _ = run_provider_isolated(_provider(), script, tmp_path, without_alibaba_credentials=True, home=home)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert "the prepared image m-built was not deleted" in done.stderr  # delete without credentials only warns
    name, refused, credentials, stack, found, image, pauses, snapshots, calls = json.loads(done.stdout)
    assert name == "WaitForImage" and credentials == ["P-AK", "P-SK", None] and stack == ["S-AK", "S-SK", "S-T"]
    assert "aliyun ecs DescribeImagePipelineExecutions --RegionId cn-hangzhou --ExecutionId exec-1" in refused
    assert found["Images"]["Image"] == [{"ImageId": "m-1"}]  # the SDK's call, from the provider's own process
    assert _FakeEcs.seen[0][1]["authorization"].startswith("ACS3-HMAC-SHA256 Credential=P-AK,")  # as the profile
    assert (image, pauses) == ("m-built", [30])
    assert snapshots == ["s-1"] and calls == ["DescribeImages", "DeleteImage", "DeleteSnapshot"]


def test_the_stacks_credentials_reach_the_build_as_a_secret_and_a_new_identity_keeps_the_image():
    from components.alibaba.prepared_image import _provider

    run = run_stack("dev", {"ecs.preparedImage.build": True, "alicloud:profile": "deploy"})
    (build,) = [r for r in run.resources if "credentials" in r.inputs and "execution_id" in r.inputs]
    assert is_secret(build.inputs["credentials"]) and unwrap(build.inputs["credentials"]) == {"profile": "deploy"}
    provider = _provider()
    old = {"execution_id": "e-1", "region": "cn-hangzhou", "image_id": "m-1", "credentials": {"profile": "a"}}
    new = {**old, "image_id": None, "credentials": {"profile": "b"}}
    rotated = provider.diff("m-1", old, new)
    assert rotated.changes and not rotated.replaces
    assert provider.update("m-1", old, new).outs == {**new, "image_id": "m-1"}
    assert provider.diff("m-1", old, {**new, "execution_id": "e-2"}).replaces == ["execution_id"]


def test_a_wait_and_a_deletion_each_make_one_sdk_client_for_all_their_calls(monkeypatch):
    from components.alibaba.prepared_image import _provider

    provider = _provider()
    made, calls = [], []
    states = iter(["BUILDING", "BUILDING", "SUCCESS"])

    def sender(region, credentials, endpoint=""):
        made.append((region, credentials))

        def send(action, params):
            calls.append(action)
            if action == "DescribeImages":
                return {"Images": {"Image": [{"DiskDeviceMappings": {"DiskDeviceMapping": [{"SnapshotId": "s-1"}]}}]}}
            status = next(states, "")
            task = {"Status": status, "ImageId": "m-1" if status == "SUCCESS" else ""}
            return {"ImagePipelineExecution": {"ImagePipelineExecutionSet": [task]}}

        return send

    monkeypatch.setattr(type(provider), "sender", staticmethod(sender))
    assert provider.wait_for_image("cn-hangzhou", "e-1", {"profile": "p"}, 3600, sleep=lambda s: None) == "m-1"
    assert provider.delete_image("cn-hangzhou", "m-1", {"profile": "p"}) == ["s-1"]
    assert made == [("cn-hangzhou", {"profile": "p"})] * 2 and len(calls) == 3 + 3


# --- The stack's own import at t=0 (ecs.weights.source import: prod) ------------------------------------------

BUCKET = "alicloud:oss/bucket:Bucket"


def test_prod_imports_into_its_own_bucket_beside_the_host_which_waits_for_the_workers_and_copies_it(prod):
    import hashlib

    from harness import ACCOUNT_ID, PROJECT

    bucket = unwrap(prod.one(BUCKET).inputs)
    digest = hashlib.sha256(f"{ACCOUNT_ID}/{PROJECT}/prod".encode()).hexdigest()[:8]
    name = f"llm-prod-models-{digest}"  # known before the bucket exists: the host's user-data and role name it
    assert bucket["bucket"] == name and len(name) <= 63
    assert bucket["serverSideEncryptionRule"]["sseAlgorithm"] == "AES256" and bucket.get("acl", "private") == "private"
    workers = [r for r in prod.of_type(INSTANCE) if "-import-" in r.name]
    invocations = [r for r in prod.of_type(INVOCATION) if "-import-" in r.name]
    assert len(workers) == len(invocations) == 8  # ecs.weights.importWorkers
    commands = {f"{c.name}-id": unwrap(c.inputs) for c in prod.of_type(COMMAND)}
    texts = [base64.b64decode(commands[unwrap(i.inputs)["commandId"]]["commandContent"]).decode() for i in invocations]
    assert {header(t, "BUCKET") for t in texts} == {name}
    assert {header(t, "PREFIX") for t in texts} == {"models/Qwen/QwQ-32B"}
    assert sorted(int(header(t, "WORKER")) for t in texts) == list(range(8))
    # The host reads the bucket like any bucket in the region, and waits as long as a worker may run.
    text = user_data(prod)
    assert header(text, "WEIGHTS_SOURCE") == "oss" and header(text, "WEIGHTS_BUCKET") == name
    worker_timeout = {commands[unwrap(i.inputs)["commandId"]]["timeout"] for i in invocations}
    assert worker_timeout == {int(header(text, "WEIGHTS_WAIT_SECONDS"))}
    assert "/usr/local/lib/llm-serving/fetch-oss.py" in user_data_files(text)
    (host_policy,) = [p for p in prod.of_type("alicloud:ram/policy:Policy") if p.name == "llm-prod-host-policy"]
    policy = json.loads(unwrap(host_policy.inputs)["policyDocument"])
    reads = [s for s in policy["Statement"] if "oss:GetObject" in s["Action"]]
    assert reads[0]["Resource"] == [f"acs:oss:*:*:{name}/models/Qwen/QwQ-32B/*"]
    assert prod.outputs["modelBucket"] == name
    assert prod.outputs["weightsSource"] == f"oss://{name}/models/Qwen/QwQ-32B/"


def test_the_import_runs_beside_the_host_and_neither_waits_for_the_other(prod):
    """The workers need the NAT and the bucket; the host needs the bucket (it lists it from its first boot) but not
    the workers: its own fetch waits for their manifests, so `up` overlaps the import with the host's boot."""
    host = host_instance(prod)
    ready = next(r for r in prod.of_type(INVOCATION) if r.name.endswith("-ready"))
    workers = {r.urn for r in prod.resources if "-import-" in r.name}
    bucket = prod.one(BUCKET).urn
    snat = {r.urn for r in prod.of_type("alicloud:vpc/snatEntry:SnatEntry")}
    assert bucket in closure(prod, host) and not closure(prod, host) & workers
    assert not closure(prod, ready) & workers
    for invocation in (r for r in prod.of_type(INVOCATION) if "-import-" in r.name):
        waits = closure(prod, invocation)
        assert bucket in waits and snat <= waits and host.urn not in waits


def test_destroy_deletes_the_workers_then_the_bucket_unless_it_is_retained(prod):
    assert not prod.one(BUCKET).retain_on_delete
    cleanup = next(r for r in prod.resources if "abort-uploads" in r.name)
    for worker in (r for r in prod.of_type(INSTANCE) if "-import-" in r.name):
        assert cleanup.urn in closure(prod, worker) and not worker.protect  # no protection: destroy removes it
    kept = run_stack("prod", {"ecs.weights.retain": True})
    assert kept.one(BUCKET).retain_on_delete and not [r for r in kept.resources if "abort-uploads" in r.name]


def test_the_imports_cost_is_itemised(prod):
    lines = {i["resource"]: i for i in prod.outputs["costEstimate"]["items"]}
    (workers,) = [line for name, line in lines.items() if name.startswith("model import workers (ECS ecs.g7.xlarge)")]
    assert workers["quantity"] == 8 and "OSS model bucket" in prod.outputs["costEstimate"]["unknown"]


def test_a_configured_bucket_name_and_worker_type_are_used():
    run = run_stack(
        "prod", {"ecs.weights.bucket": "my-prod-models", "ecs.weights.importInstanceType": "ecs.g8i.xlarge"}
    )
    assert unwrap(run.one(BUCKET).inputs)["bucket"] == "my-prod-models"
    assert {unwrap(r.inputs)["instanceType"] for r in run.of_type(INSTANCE) if "-import-" in r.name} == {
        "ecs.g8i.xlarge"
    }


@pytest.mark.parametrize(
    "overrides, key, says",
    [
        ({**NO_IMPORT, "ecs.weights.importWorkers": 4}, "ecs.weights.importWorkers", "source is modelscope"),
        ({**OSS, "ecs.weights.retain": True}, "ecs.weights.retain", "source is oss"),
        ({**NO_IMPORT, "ecs.weights.importInstanceType": "ecs.g7.xlarge"}, "ecs.weights.importInstanceType", ""),
        ({"ecs.weights.importWorkers": 21}, "ecs.weights.importWorkers", "1-20"),
        ({"ecs.weights.importWorkers": 0}, "ecs.weights.importWorkers", "1-20"),
        (
            {"access.public": True, "access.allowedCidrs": ["203.0.113.0/24"], **PEM_TLS},
            "ecs.weights.source",
            "needs the NAT gateway",
        ),
    ],
)
def test_import_settings_that_cannot_work_are_refused(overrides, key, says):
    from harness import settings_for

    with pytest.raises(ConfigError) as refused:
        settings_for("prod", overrides)
    text = str(refused.value)
    assert key in text and says in text and "pulumi config" in text


def test_the_worker_count_is_taken_at_its_bounds():
    from harness import settings_for

    assert settings_for("prod", {"ecs.weights.importWorkers": 20}).ecs.weights.import_workers == 20
    assert settings_for("prod", {"ecs.weights.importWorkers": 1}).ecs.weights.import_workers == 1
    assert settings_for("prod", {"ecs.weights.importWorkers": None}).ecs.weights.import_workers == 3  # 65.5 GB / 25


@pytest.mark.parametrize("overrides", [{}, {"network.natBandwidthMbps": 200}], ids=["prod", "one EIP"])
def test_up_waits_for_the_host_as_long_as_the_workers_may_run_and_then_the_copy_and_load(overrides):
    """The host may wait for the workers as long as their command may run (the NAT-bound import doubled, should
    ModelScope's internal path not be taken); Pulumi's readiness wait covers that wait and the host's steps after
    it, so `up` does not give up on a host that is still legitimately waiting."""
    from harness import settings_for

    from core import durations

    settings = settings_for("prod", overrides)
    host = settings.ecs
    run = run_stack("prod", overrides)
    worker_timeouts = {
        unwrap(c.inputs)["timeout"] for c in run.of_type(COMMAND) if "-import-" in c.name and "-ready" not in c.name
    }
    assert worker_timeouts == {host.import_wait_minutes * 60}
    after_import = (
        durations.ecs_readiness(settings.model, host.egress_mbps, host.start).minutes - host.start.import_minutes
    )
    assert host.readiness_timeout_minutes >= host.import_wait_minutes + after_import
    assert run.outputs["readinessTimeoutMinutes"] == host.readiness_timeout_minutes


def test_the_stacks_own_import_can_be_streamed_by_the_engine_after_the_hosts_check_waits_for_it():
    run = run_stack("prod", {"ecs.weights.load": "stream", "engine.image": "vllm/vllm-openai:v0.32.0"})
    name = unwrap(run.one(BUCKET).inputs)["bucket"]
    text = user_data(run)
    assert header(text, "WEIGHTS_LOAD") == "stream" and int(header(text, "WEIGHTS_WAIT_SECONDS")) > 0
    assert f"s3://{name}/models/Qwen/QwQ-32B" in text and "--load-format runai_streamer" in text
