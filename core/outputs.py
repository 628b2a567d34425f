"""What each stack output holds, in one place: the outputs reference (docs/reference/outputs.md) joins these
descriptions to the outputs the example stacks actually export under the mocks (scripts/docgen/outputs.py).

An output a stack exports without a description here, or a description no stack exports, fails the docs check
(tests/test_docs.py), so this list cannot drift from the stacks.
"""

from __future__ import annotations

from collections.abc import Mapping

OUTPUTS: Mapping[str, str] = {
    "apiKey": "The API key clients send as `Authorization: Bearer <key>`: `pulumi stack output apiKey --show-secrets`.",
    "privateApiUrl": (
        "The OpenAI-compatible base URL inside the network: `http://<address>:<apiPort>/v1` (the host's private IP "
        "on ecs, the internal load balancer on the Kubernetes targets, the Service's cluster DNS name on kubernetes, "
        "which resolves only inside the cluster)."
    ),
    "publicApiUrl": "The base URL on the public address (the host's public IP or the public load balancer).",
    "servedModelName": "The `model` value clients send, e.g. `deepseek-ai/DeepSeek-R1-Distill-Qwen-7B`.",
    "curlCommand": (
        "A chat-completions request; it reads the key with `pulumi stack output apiKey --show-secrets` when run, "
        "so the output holds no key. It uses the public URL when there is one."
    ),
    "openaiSnippet": "Python with the `openai` client, reading the key the same way as `curlCommand`.",
    "chatboxSettings": (
        'The fields of Chatbox\'s "Add custom provider" form (API host, path, model, how to get the key).'
    ),
    "target": "The deployment target of the stack.",
    "hostImage": (
        "The image the ecs host boots: the public Ubuntu image on a first host, or the prepared image "
        "(`ecs.preparedImage`, docs/targets/ecs-prepared-image.md) with the driver, Docker and the engine image in it."
    ),
    "weightsSource": "Where the ecs host takes the weights from: an oss:// prefix (`ecs.weights.source` oss or "
    "import), else the ModelScope id and revision.",
    "modelLoad": "How the engine loads the weights (streamed from the store or read from the mount) and the log line "
    "that shows its progress (docs/loading.md).",
    "modelImportWorkers": (
        "The ECS instances that import the model into the bucket (acs, ack, ack-edge); each stops itself, billing "
        "only its disk, once its share is in (docs/model-store.md)."
    ),
    "modelImportProgress": "The `aliyun ecs DescribeInvocationResults` command that shows the import's progress.",
    "modelImportJob": "The Cloud Run job that imports the model into the bucket (gke).",
    "modelImportLogsHint": "The gcloud command that follows the import job's logs (docs/targets/gke-import.md).",
    "gpus": "What serves: `4x A10` on ecs; `<replicas> x <pods> pod(s) x <GPUs>x <kind>` on the Kubernetes targets.",
    "engine": "The inference engine, `vllm` or `sglang`.",
    "engineImage": "The exact engine image the host or the pods run.",
    "region": "The region the stack runs in.",
    "zone": "The zone of the GPU host (ecs) or of the GPU node pool (gke).",
    "zones": "The two zones of the cluster's vSwitches.",
    "instanceId": "The GPU instance.",
    "instanceType": "The GPU instance type.",
    "healthCheck": "`curl http://<private IP>:<apiPort>/health`, run from inside the VPC.",
    "readinessTimeoutMinutes": "How long `pulumi up` waits for the host to serve before it fails.",
    "sshCommand": "`ssh -i <keypair.pem> root@<address>` for the host (ecs) or the jump host (acs).",
    "namespace": "The Kubernetes namespace of the workload.",
    "modelPath": "The model's path inside the serving pods, e.g. `/models/Qwen/QwQ-32B`.",
    "loadMinutesEstimate": "The modelled model load time in minutes, which sizes the startup probe.",
    "clusterId": "The ACS, ACK Pro or ACK Edge cluster.",
    "clusterName": "The GKE cluster.",
    "modelBucket": "The bucket that holds the weights (and, on Kubernetes, the benchmark results); on ecs with "
    "`ecs.weights.source: import` only.",
    "kubeconfig": (
        "A kubeconfig for the cluster. On the Alibaba targets it carries a credential: a secret, valid for 3 days "
        "(4,320 minutes) after the `pulumi up` that fetched it; on gke it holds none (gke-gcloud-auth-plugin "
        "supplies one)."
    ),
    "kubectlHint": "The commands to point kubectl at the cluster and list the workload's pods.",
    "jumpHostId": "The jump host in the VPC (with `acs.jumpHost.enabled`).",
    "jumpHostPrivateIp": "The jump host's private address.",
    "modelClaim": "The PersistentVolumeClaim that holds the weights.",
    "costEstimate": (
        "Hourly and monthly cost item by item, each price with its source; an unknown price stays unknown and "
        "the totals are then null (see the costs page)."
    ),
    "expectedReadyMinutes": (
        "The modelled time from `pulumi up` to a serving API: its total and critical path, step by step."
    ),
    "autoscaling": "The replica range and the metric the HorizontalPodAutoscaler scales on, or `off`.",
    "gpuNodes": "The GPU node pool's size range on gke and how it scales (within the capacity mode).",
    "metrics": "What scrapes the engine's metrics on this target (PodMonitor, PodMonitoring, ARMS), or how to.",
    "dashboard": "The Cloud Monitoring dashboard of the serving metrics (gke); elsewhere import dashboards/vllm.json.",
    "benchmarkReport": "Where the benchmark Job writes its HTML report (oss:// or gs://), next to the raw JSON.",
    "gpuNodePoolId": "The autoscaling GPU node pool.",
    "systemNodePoolId": "The node pool of the cluster's system components.",
    "gpuInstanceType": "The GPU node pool's instance type.",
    "edgeNodePoolId": "The edge node pool that holds the IDC GPU nodes.",
    "cloudBurst": "How many serving pods may run on cloud virtual nodes when the IDC is full.",
    "project": "The Google Cloud project.",
    "gpuNodePool": "The GPU node pool (what to delete by hand if the cluster's API cannot be reached at destroy).",
    "benchmarkResults": "Where the benchmark Job writes its results (`gs://<bucket>/benchmarks/`).",
    "imageRepository": "The Artifact Registry remote repository that mirrors Docker Hub for the engine image.",
}
