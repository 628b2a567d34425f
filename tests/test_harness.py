"""The shared harness itself: what it must undo between stack runs."""

from __future__ import annotations

from harness import run_stack


def test_the_harness_undoes_pulumis_pickler_patch_after_every_run():
    """pulumi's serialize_provider leaves a wrapper on pickle._Pickler per dynamic resource; unrestored, a long run
    of this suite ends in RecursionError (tests/harness.py _restore_pickler)."""
    import pickle

    from pulumi.dynamic.dynamic import serialize_provider

    import components.alibaba.multipart_cleanup as cleanup

    before = pickle._Pickler._batch_setitems
    serialize_provider(cleanup._provider())
    assert pickle._Pickler._batch_setitems is not before  # pulumi's patch, left in place
    run_stack("ack")
    assert pickle._Pickler._batch_setitems is before
