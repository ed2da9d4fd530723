"""The pieces of the ``streamify`` command, one role per module.

``streamify.cli`` holds the commands themselves; these modules hold what they share:
``sources`` (what to upload and under which names), ``progress`` (bars and notices),
``results`` (the summary lines), ``batch`` (several files at once over one connection pool,
and Ctrl-C), ``options`` (connection options, and the control planes a command may send
credentials to) and ``housekeeping`` (the ``status``, ``abort``, ``gc`` and
``setup-bucket`` commands).
"""
