"""Reusable Pulumi ComponentResources; each module is one concept."""
