"""The control-plane API service (``streamify serve``)."""
