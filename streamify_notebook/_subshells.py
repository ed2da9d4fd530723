"""Which kernel thread handles the page's messages to a widget: the one the page chose.

JupyterLab (4.4 and later) sends a widget's messages on a kernel subshell (JEP 91; its
kernels setting ``commsOverSubshells``, one subshell per comm target by default), and
ipykernel 7 handles a subshell's messages in a thread of its own, even while a cell runs in
the main shell. But ipykernel (7.3 and later) overrides the page's choice per comm: it sends
a message from the page to the subshell that last published on the comm
(``BaseComm._reply_subshell_for``, asked by ``Kernel.shell_channel_thread_main``), so that
an answer reaches kernel code waiting for it in that subshell. A widget made in a cell last
published from the main shell, so every request of its page would wait for the running
cell to end.

A widget that answers its page and never waits for it lets the page choose instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_the_page_addresses"]


def as_the_page_addresses(comm: Any) -> None:
    """Handle the page's messages on ``comm`` in the subshell the page addressed them to (the
    main shell when it names none). Does nothing for a comm the kernel does not route (no
    kernel, or a kernel without subshells)."""
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = _addressed


def _addressed(_data: object, addressed: str | None) -> str | None:
    return addressed
