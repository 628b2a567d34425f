"""An Artifact Registry remote repository that proxies Docker Hub, and the image paths through it.

The nodes pull the engine image from the repository in the cluster's region instead of Docker Hub, and the
import's Cloud Run job its slim Python image: the first pull fills the cache, later pulls (new nodes, restarts,
the import's other tasks) stay inside Google's network and are not subject to Docker Hub's rate limits. The node
service account may read the repository; Cloud Run's service agent may read repositories of its own project.

GKE image streaming takes images from such a repository: "Your container images must be stored in standard or
remote repositories in Artifact Registry" (GKE how-to image-streaming, Requirements); the GPU pool turns it on
(components/gcp/gpu_node_pool.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp

DOCKER_HUB_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


@dataclass(frozen=True)
class DockerHubMirrorArgs:
    project: str
    region: str
    repository_id: str  # lowercase letters, digits and '-'
    reader: pulumi.Input[str]  # IAM member that pulls, e.g. serviceAccount:<node SA email>
    depends_on: Sequence[pulumi.Resource] = ()  # the enabled APIs (artifactregistry): every child waits for them


def proxied_image(image: str, project: str, region: str, repository_id: str) -> Optional[str]:
    """The Docker Hub image `image` as served by the remote repository; None when it is not a Docker Hub image."""
    for prefix in DOCKER_HUB_PREFIXES:
        if image.startswith(prefix):
            path = image[len(prefix) :]
            break
    else:
        first = image.split("/", 1)[0]
        if "." in first or ":" in first or first == "localhost":
            return None  # another registry (ghcr.io, nvcr.io, a private one): pulled as it is
        path = image
    if "/" not in path.split(":", 1)[0].split("@", 1)[0]:
        path = f"library/{path}"  # official images live under library/
    return f"{region}-docker.pkg.dev/{project}/{repository_id}/{path}"


class DockerHubMirror(pulumi.ComponentResource):
    repository_id: str
    repository: gcp.artifactregistry.Repository
    reader: gcp.artifactregistry.RepositoryIamMember  # pods that pull through the repository wait for it

    def __init__(self, name: str, args: DockerHubMirrorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:DockerHubMirror", name, None, opts)
        self.repository_id = args.repository_id
        # A component's depends_on does not hold back its children: each child waits for the APIs itself.
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-repo",
            project=args.project,
            location=args.region,
            repository_id=args.repository_id,
            format="DOCKER",
            mode="REMOTE_REPOSITORY",
            description="Docker Hub, cached for the LLM serving nodes",
            remote_repository_config={
                "description": "Docker Hub",
                "docker_repository": {"public_repository": "DOCKER_HUB"},
            },
            opts=child,
        )
        self.reader = gcp.artifactregistry.RepositoryIamMember(
            f"{name}-reader",
            project=args.project,
            location=args.region,
            repository=self.repository.name,
            role="roles/artifactregistry.reader",
            member=args.reader,
            opts=child,
        )
        self.register_outputs({"repository": self.repository.name})
