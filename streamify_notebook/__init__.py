"""Jupyter widgets for Streamify.

- ``Uploader``: a file the kernel can read, uploaded in the background with Start, Pause,
  Resume, Cancel and a progress bar; resumes after a kernel restart.
- ``upload(source, destination)``: the one-liner, with a bar, returning the result.
- ``BrowserUploader``: a file on the analyst's own machine, sent by the browser straight
  to S3 through presigned URLs; resumes after a page reload.
"""

from ._browser import BrowserUploader
from ._kernel import Uploader, upload

__all__ = ["BrowserUploader", "Uploader", "upload"]
