"""The control-plane API service (``streamify serve``).

Build the app with ``create_app(ServiceSettings(...))`` or ``create_app(load_settings())``;
run everything locally (moto + the app, in threads) with ``start_local_stack()``.
"""

from ._app import app_from_environment, create_app
from ._auth import SESSION_COOKIE, Principal
from ._local import LocalStack, local_s3, local_settings, serve_in_thread, start_local_stack
from ._middleware import ACCESS_LOGGER
from ._settings import PrincipalSettings, ServiceSettings, hash_api_key, load_settings

__all__ = [
    "ACCESS_LOGGER",
    "SESSION_COOKIE",
    "LocalStack",
    "Principal",
    "PrincipalSettings",
    "ServiceSettings",
    "app_from_environment",
    "create_app",
    "hash_api_key",
    "load_settings",
    "local_s3",
    "local_settings",
    "serve_in_thread",
    "start_local_stack",
]
