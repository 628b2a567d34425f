"""The image mirror worker's script (components/scripts/llm-image-mirror.py) on its own, with fakes: the ACR token
request and its answer, the auth file, the platform choice in an index, the copy's retries and its final check, the
failure message, and the rendered user-data and command under shellcheck. tests/engine/test_image_mirror.py runs the
same script's copy with real skopeo against real registries.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import stat
import subprocess

import pytest
from worker_scripts import fake_api, load

from components.alibaba.image_mirror import ImageMirrorArgs, render_command, render_setup


@functools.cache
def mirror_module():
    return load("llm-image-mirror.py", "llm_image_mirror")


SECRET = "eyJ-temporary-registry-password-FAKE"


# --- The token --------------------------------------------------------------------------------------------------


def test_parse_token_reads_the_temporary_user_and_password():
    m = mirror_module()
    body = {
        "IsSuccess": True,
        "TempUsername": "cr_temp_user",
        "AuthorizationToken": SECRET,
        "ExpireTime": 1767225600000,
        "RequestId": "3D1E6F2A-0000-0000-0000-000000000000",
    }
    assert m.parse_token(json.dumps(body).encode()) == ("cr_temp_user", SECRET)
    assert m.parse_token(json.dumps(body)) == ("cr_temp_user", SECRET)


@pytest.mark.parametrize(
    "body",
    [
        {"IsSuccess": False, "Code": "INSTANCE_NOT_EXIST", "TempUsername": "u", "AuthorizationToken": SECRET},
        {"Code": "NO_TOKEN", "TempUsername": "u"},
        {"IsSuccess": True, "Code": "EMPTY", "TempUsername": "u", "AuthorizationToken": ""},
    ],
)
def test_parse_token_refuses_a_failed_answer_without_printing_the_token(body):
    m = mirror_module()
    with pytest.raises(SystemExit) as refused:
        m.parse_token(json.dumps(body))
    message = str(refused.value)
    assert body["Code"] in message and SECRET not in message


def test_token_asks_acr_for_the_instances_token_with_the_workers_role(monkeypatch):
    m = mirror_module()
    answer = json.dumps({"IsSuccess": True, "TempUsername": "cr_temp_user", "AuthorizationToken": SECRET}).encode()
    sent, asked = fake_api(monkeypatch, {"ram/security-credentials/": "mirror-worker-role"}, answer)
    assert m.token("cri-abc123", "cn-hangzhou") == ("cr_temp_user", SECRET)
    assert asked == ["ram/security-credentials/"]  # the role's name, from the metadata service
    assert sent == {
        "domain": "cr.cn-hangzhou.aliyuncs.com",
        "version": "2018-12-01",
        "action": "GetAuthorizationToken",
        "params": {"InstanceId": "cri-abc123"},
        "method": "POST",
        "region": "cn-hangzhou",
        "role": "mirror-worker-role",
        "done": True,
    }


# --- The auth file ----------------------------------------------------------------------------------------------


def test_auth_file_is_readable_by_its_owner_only_and_holds_user_and_password(tmp_path):
    m = mirror_module()
    path = m.auth_file(str(tmp_path), "mirror-registry-vpc.cn-hangzhou.cr.aliyuncs.com", "cr_temp_user", SECRET)
    assert path == str(tmp_path / "auth.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    auths = json.loads((tmp_path / "auth.json").read_text())["auths"]
    assert list(auths) == ["mirror-registry-vpc.cn-hangzhou.cr.aliyuncs.com"]
    entry = auths["mirror-registry-vpc.cn-hangzhou.cr.aliyuncs.com"]
    assert list(entry) == ["auth"] and base64.b64decode(entry["auth"]).decode() == f"cr_temp_user:{SECRET}"


# --- Fakes of skopeo --------------------------------------------------------------------------------------------

SOURCE = "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0-pytorch2.8-cu128"
DESTINATION = "mirror-registry-vpc.cn-hangzhou.cr.aliyuncs.com/llm/engine-dev:0.11.0"
AMD64 = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"digest": "sha256:" + "c" * 64},
    "layers": [{"digest": "sha256:" + "1" * 64}, {"digest": "sha256:" + "2" * 64}],
}
ARM64 = {**AMD64, "config": {"digest": "sha256:" + "a" * 64}}


def index(*platforms: tuple[str, str, str]) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"digest": digest, "platform": {"os": os_, "architecture": arch}} for os_, arch, digest in platforms
        ],
    }


def missing(args: list[str]) -> subprocess.CalledProcessError:
    return subprocess.CalledProcessError(
        1, ["skopeo", *args], stderr="time=... level=fatal msg=... reading manifest v1: manifest unknown"
    )


class FakeSkopeo:
    """Answers `inspect --raw` from a dict of reference -> manifest (absent: 'manifest unknown'), and `copy` with
    the scripted outcomes in turn (an exception is raised; True copies the source's manifest to the destination)."""

    def __init__(self, manifests: dict[str, dict], copies: list = ()):
        self.manifests = dict(manifests)
        self.copies = list(copies)
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str]) -> str:
        self.calls.append(args)
        if args[0] == "inspect":
            reference = args[-1].removeprefix("docker://")
            if reference not in self.manifests:
                raise missing(args)
            return json.dumps(self.manifests[reference])
        outcome = self.copies.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is True:
            self.manifests[args[-1].removeprefix("docker://")] = AMD64
        return ""

    @property
    def copy_calls(self) -> list[list[str]]:
        return [c for c in self.calls if "copy" in c]


# --- The platform -----------------------------------------------------------------------------------------------


def test_platform_manifest_takes_the_linux_amd64_image_of_an_index():
    m = mirror_module()
    listed = index(("linux", "arm64", "sha256:" + "b" * 64), ("linux", "amd64", "sha256:" + "d" * 64))
    run = FakeSkopeo(
        {
            "registry.example.com:5000/ns/engine:v1": listed,
            "registry.example.com:5000/ns/engine@sha256:" + "d" * 64: AMD64,
            "registry.example.com:5000/ns/engine@sha256:" + "b" * 64: ARM64,
        }
    )
    assert m.platform_manifest(run, "registry.example.com:5000/ns/engine:v1", ["--tls-verify=false"]) == AMD64
    assert run.calls == [
        ["inspect", "--raw", "--tls-verify=false", "docker://registry.example.com:5000/ns/engine:v1"],
        ["inspect", "--raw", "--tls-verify=false", "docker://registry.example.com:5000/ns/engine@sha256:" + "d" * 64],
    ]


def test_platform_manifest_of_a_single_image_is_that_image():
    m = mirror_module()
    run = FakeSkopeo({SOURCE: AMD64})
    assert m.platform_manifest(run, SOURCE, []) == AMD64 and len(run.calls) == 1


def test_platform_manifest_refuses_an_index_without_linux_amd64():
    m = mirror_module()
    listed = index(("linux", "arm64", "sha256:" + "b" * 64), ("windows", "amd64", "sha256:" + "e" * 64))
    with pytest.raises(SystemExit, match="has no linux/amd64 image"):
        m.platform_manifest(FakeSkopeo({SOURCE: listed}), SOURCE, [])


def test_platform_manifest_is_none_when_missing_and_raises_any_other_failure():
    m = mirror_module()
    assert m.platform_manifest(FakeSkopeo({}), DESTINATION, []) is None

    def unauthorized(args):
        raise subprocess.CalledProcessError(1, ["skopeo", *args], stderr="unauthorized: authentication required")

    with pytest.raises(subprocess.CalledProcessError):
        m.platform_manifest(unauthorized, DESTINATION, [])


# --- The copy ---------------------------------------------------------------------------------------------------


def failure(text: str = "reading blob: connection reset by peer") -> subprocess.CalledProcessError:
    return subprocess.CalledProcessError(1, ["skopeo", "copy"], stderr=text)


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(mirror_module().time, "sleep", slept.append)
    return slept


def test_copy_retries_a_failing_skopeo_copy_then_checks_the_copy(sleeps):
    m = mirror_module()
    assert m.COPY_ATTEMPTS == 3
    run = FakeSkopeo({SOURCE: AMD64}, copies=[failure(), failure(), True])
    assert m.copy(SOURCE, DESTINATION, "/tmp/llm-mirror-x/auth.json", run=run) == "copied"
    assert len(run.copy_calls) == 3 and sleeps == [20, 40]
    assert run.copy_calls[0] == [
        "--override-os",
        "linux",
        "--override-arch",
        "amd64",
        "copy",
        "--dest-authfile",
        "/tmp/llm-mirror-x/auth.json",
        f"docker://{SOURCE}",
        f"docker://{DESTINATION}",
    ]
    assert run.calls[-1] == ["inspect", "--raw", "--authfile", "/tmp/llm-mirror-x/auth.json", f"docker://{DESTINATION}"]


def test_copy_gives_up_after_copy_attempts(sleeps):
    m = mirror_module()
    run = FakeSkopeo({SOURCE: AMD64}, copies=[failure()] * 5)
    with pytest.raises(subprocess.CalledProcessError):
        m.copy(SOURCE, DESTINATION, "auth.json", run=run)
    assert len(run.copy_calls) == m.COPY_ATTEMPTS and sleeps == [20, 40]


def test_copy_fails_when_the_destination_differs_after_the_copy(sleeps):
    m = mirror_module()
    run = FakeSkopeo({SOURCE: AMD64}, copies=[False])  # skopeo "succeeds" but the destination stays empty
    with pytest.raises(SystemExit, match="does not hold the image"):
        m.copy(SOURCE, DESTINATION, "auth.json", run=run)
    other = FakeSkopeo({SOURCE: AMD64}, copies=[False])
    other.manifests[DESTINATION] = ARM64  # a different image under the tag, and after the copy too
    with pytest.raises(SystemExit, match="does not hold the image"):
        m.copy(SOURCE, DESTINATION, "auth.json", run=other)
    assert len(other.copy_calls) == 1 and sleeps == []


def test_copy_with_the_image_present_copies_nothing(sleeps):
    m = mirror_module()
    run = FakeSkopeo({SOURCE: AMD64, DESTINATION: {**AMD64, "mediaType": "application/vnd.oci.image.manifest.v1+json"}})
    assert m.copy(SOURCE, DESTINATION, "auth.json", run=run) == "present"
    assert run.copy_calls == []


def test_plain_http_is_only_for_the_local_registries(sleeps):
    m = mirror_module()
    run = FakeSkopeo({SOURCE: AMD64}, copies=[True])
    m.copy(SOURCE, DESTINATION, "auth.json", run=run)
    assert not [a for call in run.calls for a in call if "tls-verify" in a]
    local = FakeSkopeo({SOURCE: AMD64}, copies=[True])
    m.copy(SOURCE, DESTINATION, "auth.json", plain_http=True, run=local)
    assert {"--src-tls-verify=false", "--dest-tls-verify=false"} <= set(local.copy_calls[0])


def test_a_missing_source_is_refused_before_the_destination_is_asked():
    m = mirror_module()
    run = FakeSkopeo({})
    with pytest.raises(SystemExit, match=f"the source image {SOURCE} does not exist"):
        m.copy(SOURCE, DESTINATION, "auth.json", run=run)
    assert len(run.calls) == 1


def test_a_failing_skopeo_ends_the_script_with_its_reason_and_no_traceback(monkeypatch, capsys):
    m = mirror_module()

    def refused(*args, **kwargs):
        raise subprocess.CalledProcessError(
            1, ["skopeo", "inspect"], stderr='level=fatal msg="reading manifest: unauthorized: authentication required"'
        )

    monkeypatch.setattr(m, "copy", refused)
    assert m.main(["llm-image-mirror", "copy", SOURCE, DESTINATION, "auth.json"]) == 1
    printed = capsys.readouterr()
    assert "skopeo failed (exit 1)" in printed.err and "unauthorized: authentication required" in printed.err
    assert printed.out == ""


# --- The rendered scripts ---------------------------------------------------------------------------------------


def test_rendered_setup_and_command_pass_shellcheck(tmp_path):
    from test_scripts import shellcheck

    args = ImageMirrorArgs(
        region="cn-hangzhou",
        instance_id="cri-abc123",
        registry="mirror-registry-vpc.cn-hangzhou.cr.aliyuncs.com",
        namespace="llm",
        repository="engine-dev",
        tag="0.11.0-pytorch2.8-cu128",
        source=SOURCE,
        vpc_id="vpc-1",
        vswitch_id="vsw-1",
        security_group_id="sg-1",
        instance_type="ecs.g7.large",
        image_id="ubuntu_22_04_x64_20G_alibase_20250101.vhd",
        timeout_minutes=60,
    )
    command = render_command(args, 3600)
    assert f"DESTINATION={args.destination}" in command and "TIMEOUT_SECONDS=3600" in command
    setup = render_setup("0123456789abcdef")
    assert "/usr/local/bin/llm-image-mirror" in setup
    for name, text in (("command.sh", command), ("setup.sh", setup)):
        path = tmp_path / name
        path.write_text(text)
        shellcheck(path)
