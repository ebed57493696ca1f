"""Level-triggered cancellation for the gateway's long-running loops.

asyncio delivers a cancellation once, as one `CancelledError`, and a library below can lose it:
Python 3.11's `asyncio.wait_for` returns the awaited result instead of raising when the
cancellation and the result arrive in the same loop iteration (CPython gh-86296, fixed in 3.12
by building `wait_for` on `asyncio.timeout`), and Bumble awaits every HCI command and ATT
request through it. A lost cancellation left the device loop scanning forever and the hub's
`TaskGroup` waiting for it. The task still counts the request (`Task.cancelling()`), so the
loops check it at their own boundaries, like a cancel scope that stays cancelled (trio, anyio):
once the hub is asked to stop, every checkpoint raises until the task is gone.
"""

from __future__ import annotations

import asyncio


def checkpoint() -> None:
    """Raise `CancelledError` when the current task was asked to stop, even if the request was
    lost below (see the module docstring).

    Raises:
        asyncio.CancelledError: the current task has an outstanding cancellation request.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError("cancellation lost below the gateway, raised again")
