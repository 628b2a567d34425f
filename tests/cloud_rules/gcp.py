"""Google Cloud rules the provider does not check (sources cited per rule)."""

from __future__ import annotations

from collections.abc import Iterable

from cloud_rules import InvokeCandidate, invoke_rule, run_rule

# Google APIs answer "SERVICE_DISABLED: <API> has not been used in project <p> before or it is disabled" until
# the API is enabled in the project (cloud.google.com/service-usage/docs/enable-disable). The API each pulumi_gcp
# module calls: the service named in the provider's resource documentation (terraform-provider-google
# website/docs/r/*), e.g. google_container_cluster -> container.googleapis.com.
API_OF_MODULE = {
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "serviceaccount": "iam.googleapis.com",
    "storage": "storage.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "projects": "cloudresourcemanager.googleapis.com",  # IAMMember: projects.getIamPolicy / setIamPolicy
}
# Enabled before the stack runs (the documented one-time step): gcp.projects.Service itself calls Service Usage,
# and Cloud Resource Manager's projects.get on every read (terraform-provider-google
# resource_google_project_service.go: "Verify project for services still exists"), so neither can be enabled
# by the stack it is needed for.
PREREQUISITE_APIS = frozenset({"serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com"})
SERVICE = "gcp:projects/service:Service"


def _unwrap(value):
    from harness import unwrap

    return unwrap(value)


def api_of(resource_type: str) -> str | None:
    """The API a gcp resource type calls: `gcp:<module>/<name>:<Name>` -> the module's API."""
    module = resource_type.split(":", 2)[1].split("/", 1)[0]
    return API_OF_MODULE.get(module)


def transitive_dependencies(run, urn: str) -> set[str]:
    """Every resource `urn` waits for: its dependencies (custom resources; the SDK expands components to
    their children) and theirs. A parent component's depends_on is not among them: Pulumi does not pass it on."""
    seen: set[str] = set()
    todo = [urn]
    by_urn = {r.urn: r for r in run.resources}
    while todo:
        current = by_urn.get(todo.pop())
        for dep in current.dependencies if current else ():
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


@run_rule(
    source="cloud.google.com/service-usage/docs/enable-disable (a disabled API refuses every call: SERVICE_DISABLED); "
    "pulumi sdk/python pulumi/runtime/resource.py: a resource waits only for its own depends_on and inputs, not "
    "its parent component's (audit gke.md claim 23)"
)
def every_gcp_resource_waits_for_its_api(run) -> Iterable[str]:
    services = {r.urn: _unwrap(r.inputs).get("service") for r in run.resources if r.type == SERVICE}
    for resource in run.resources:
        if not resource.type.startswith("gcp:") or resource.type == SERVICE:
            continue
        api = api_of(resource.type)
        if api is None:
            yield (
                f"{resource.type} {resource.name}: no API is known for this resource type "
                "(add its module to tests/cloud_rules/gcp.py API_OF_MODULE)"
            )
            continue
        if api in PREREQUISITE_APIS:
            continue
        enabled_first = {services[u] for u in transitive_dependencies(run, resource.urn) if u in services}
        if api not in enabled_first:
            yield (
                f"{resource.type} {resource.name} is created without waiting for the projects.Service of {api}: "
                "on a project where the API is off, the call fails with SERVICE_DISABLED"
            )


# The API each data source calls (terraform-provider-google): google_container_engine_versions is GKE's
# projects.locations.getServerConfig (data_source_google_container_engine_versions.go), google_project is
# Cloud Resource Manager's projects.get (data_source_google_project.go -> readGoogleProject).
API_OF_INVOKE = {
    "gcp:container/getEngineVersions:getEngineVersions": "container.googleapis.com",
    "gcp:organizations/getProject:getProject": "cloudresourcemanager.googleapis.com",
}


@invoke_rule(
    source="cloud.google.com/service-usage/docs/enable-disable (SERVICE_DISABLED until the API is on); a data source "
    "runs when the program runs, at `pulumi preview` too, before any projects.Service exists (audit gke.md B2)"
)
def a_gcp_data_source_needs_its_api_on(call: InvokeCandidate, run) -> str | None:
    if not call.token.startswith("gcp:"):
        return None
    api = API_OF_INVOKE.get(call.token)
    if api is None:
        return "no API is known for this data source (add it to tests/cloud_rules/gcp.py API_OF_INVOKE)"
    if api in PREREQUISITE_APIS:
        on = api not in call.disabled_prerequisites
    else:
        # The project is new: only what this run enabled is on, and a preview enables nothing.
        on = not call.preview and any(
            r.type == SERVICE and _unwrap(r.inputs).get("service") == api for r in run.resources
        )
    if on:
        return None
    project = call.args.get("project") or call.args.get("projectId") or "<project>"
    return f"{api} has not been used in project {project} before or it is disabled (SERVICE_DISABLED)"
