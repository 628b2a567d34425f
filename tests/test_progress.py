"""Progress during `pulumi up`: a long step says on its row what it waits for, how long, and how to follow it."""

from __future__ import annotations

import pytest
from harness import run_program

from stacks.progress import announce, message


def _program():
    import pulumi
    import pulumi_random as random

    before = random.RandomString("before", length=8)
    step = random.RandomString("step", length=8, opts=pulumi.ResourceOptions(depends_on=[before]))
    announce(step, "the model import", 12.4, pulumi.Output.concat("kubectl logs -f job/", before.id), [before.id])


def test_a_long_step_logs_on_its_row_once_what_it_starts_after_exists():
    up = run_program(_program)
    [(text, row)] = up.logged("waiting for the model import")
    assert row == "step"
    assert text.startswith("waiting for the model import (modelled 12 min); follow it with: kubectl logs -f job/")


def test_a_preview_logs_nothing_of_it():
    assert run_program(_program, preview=True).logged("waiting for") == []


def test_a_step_with_nothing_to_start_after_is_refused():
    with pytest.raises(ValueError, match="would log at preview"):
        announce(None, "x", 1, "cmd", [])  # type: ignore[arg-type]


def test_the_message_rounds_the_minutes():
    assert (
        message("the GPU pool", 9.6, "gcloud ...")
        == "waiting for the GPU pool (modelled 10 min); follow it with: gcloud ..."
    )


@pytest.mark.parametrize(
    ("stack", "row", "fragments"),
    [
        ("dev", "llm-dev", ("waiting for the host's first boot", "aliyun ecs DescribeInvocationResults --RegionId")),
        ("ack", "llm-ack-gpu", ("waiting for the GPU node pool", "aliyun cs GET /clusters/")),
        ("ack", "llm-ack", ("waiting for the serving pods", "logs -f deploy/llm -c engine")),
        ("gke", "llm-gke-gpu", ("waiting for the GPU node pool (a4-highgpu-8g", "gcloud container operations list")),
        (
            "acs-r1",
            "llm-acs-r1",
            (
                "waiting for the serving pods",
                "logs -f -l leaderworkerset.sigs.k8s.io/name=llm,leaderworkerset.sigs.k8s.io/worker-index=0 -c engine",
            ),
        ),
        ("acs", "llm-acs-import-0", ("waiting for the model import, worker 1/", "DescribeInvocationResults")),
    ],
)
def test_every_long_step_of_a_stack_says_what_it_waits_for_and_how_to_follow_it(stack, row, fragments):
    from harness import run_stack

    up = run_stack(stack)
    said = [(text, name) for text, name in up.logs if fragments[0] in text]
    assert said, [text for text, _ in up.logs]
    text, name = said[0]
    assert name == row and all(f in text for f in fragments) and "modelled " in text, (name, text)
    assert not run_stack(stack, preview=True).logged(fragments[0])  # a preview shows the estimate instead


def test_the_import_hint_has_the_minutes_of_the_estimate_when_the_mirror_shares_the_nat():
    """Outside ModelScope's intranet regions the import workers and the image mirror share the NAT: the hint on each
    worker's row says the import's modelled minutes as the estimate (and the worker's deadline) count them."""
    import re

    from harness import run_stack, settings_for

    from core.ready_time import IMPORT_DONE, IMPORT_START, timeline

    overrides = {
        "alicloud:region": "cn-beijing",
        "network.natBandwidthMbps": 200,
        "engine.mirror.instanceId": "cri-abc123",
        "engine.mirror.registry": "myacr-registry-vpc.cn-beijing.cr.aliyuncs.com",
        "engine.mirror.namespace": "llm",
    }
    up = run_stack("ack", overrides)
    [text] = [text for text, _ in up.logs if "waiting for the model import" in text]
    said = float(re.search(r"modelled (\d+) min", text).group(1))
    expected = timeline(settings_for("ack", overrides))
    span = expected.span(IMPORT_START, IMPORT_DONE)
    alone = timeline(settings_for("ack", {k: v for k, v in overrides.items() if "mirror" not in k}))
    assert span > alone.span(IMPORT_START, IMPORT_DONE) + 1  # the mirror's copy slows the import down
    assert said == round(span)
