"""The deployment targets and the families they fall into; config keys name the targets they apply to."""

from __future__ import annotations

ECS = "ecs"
ACS = "acs"
ACK = "ack"
ACK_EDGE = "ack-edge"
GKE = "gke"
KUBERNETES = "kubernetes"

ALL_TARGETS = (ECS, ACS, ACK, ACK_EDGE, GKE, KUBERNETES)
ALIBABA = (ECS, ACS, ACK, ACK_EDGE)  # Alibaba Cloud: alicloud:* provider config, an Alibaba region
MANAGED_ALIBABA = (ACS, ACK, ACK_EDGE)  # a managed cluster this program creates in a VPC
ACK_FAMILY = (ACK, ACK_EDGE)  # node pools, the HPA, logtail
ON_KUBERNETES = (ACS, ACK, ACK_EDGE, GKE, KUBERNETES)  # the shared serving workload
