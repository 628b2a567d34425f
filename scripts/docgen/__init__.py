"""Generators of the documentation pages that come from the program itself (run by scripts/docs.py).

Each page is built from the example stacks run under the test harness's Pulumi mocks (tests/harness.py), so
a page cannot describe a stack the program does not build.
"""
