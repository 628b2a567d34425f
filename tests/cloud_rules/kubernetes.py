"""Kubernetes API rules kubernetes-validate's schemas do not hold (names), with their sources."""

from __future__ import annotations

import re

from cloud_rules import Candidate, known, rule

# metadata.name of most kinds is a DNS subdomain (253); Services, Namespaces and pod-template-derived names
# must be DNS labels (63). kubernetes.io/docs/concepts/overview/working-with-objects/names
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
LABEL_KINDS = ("kubernetes:core/v1:Service", "kubernetes:core/v1:Namespace")
# RBAC objects only need a path segment name: anything but "." and "..", without "/" or "%" (kubernetes
# pkg/apis/rbac/validation ValidateRBACName = path.IsValidPathSegmentName), so system:auth-delegator is valid.
RBAC = "kubernetes:rbac.authorization.k8s.io/"


@rule(source="kubernetes.io/docs/concepts/overview/working-with-objects/names (DNS-1123 subdomain / label)")
def object_names_are_dns_names(candidate: Candidate, run) -> str | None:
    if not candidate.type.startswith("kubernetes:") or candidate.type.startswith(("kubernetes:helm", "pulumi:")):
        return None
    from harness import unwrap

    name = (unwrap(candidate.inputs.get("metadata")) or {}).get("name")
    if not known(name) or not isinstance(name, str):
        return None
    if candidate.type.startswith(RBAC):
        bad = name in (".", "..") or "/" in name or "%" in name
        return f"metadata.name {name!r} must be a path segment name (no '/' or '%')" if bad else None
    pattern = DNS_LABEL if candidate.type in LABEL_KINDS else DNS_SUBDOMAIN
    if not pattern.fullmatch(name):
        what = "a DNS-1123 label (63)" if pattern is DNS_LABEL else "a DNS-1123 subdomain (253)"
        return f"metadata.name {name!r} must be {what}"
    return None
