"""A small Python client of the task API, sync and async.

Both clients are thin shells around one pure core: functions that build an
:class:`ApiRequest` and functions that turn an ``httpx.Response`` into a body
or an error, plus :class:`StatusPoll`, which decides what ``wait`` asks next
(a long-poll for the next change) and how long it sleeps when the API does not
wait. Only sending and sleeping differ between the two classes.

Modules: ``errors`` (the exceptions, problem bodies into errors), ``core``
(requests, answers into bodies, :class:`TaskHandle`), ``polling`` (the ``wait``
schedule: long-polls, backoff), ``webhooks`` (signature check), ``tls`` (certificate
verification: CA bundle or insecure), ``sync`` and ``aio`` (the clients).
"""

from asyncarch.client.aio import AsyncAsyncarchClient
from asyncarch.client.core import DEFAULT_BASE_URL as DEFAULT_BASE_URL
from asyncarch.client.core import HEADERS as HEADERS
from asyncarch.client.core import ApiRequest as ApiRequest
from asyncarch.client.core import TaskHandle
from asyncarch.client.core import TaskRef as TaskRef
from asyncarch.client.core import document_request as document_request
from asyncarch.client.core import parse_result as parse_result
from asyncarch.client.core import parse_status as parse_status
from asyncarch.client.core import parse_submit as parse_submit
from asyncarch.client.core import result_request as result_request
from asyncarch.client.core import status_request as status_request
from asyncarch.client.core import submit_request as submit_request
from asyncarch.client.errors import (
    ApiUnreachable,
    ClientError,
    ServiceUnavailable,
    TaskNotFinished,
    TaskNotFound,
    TaskTimeout,
    TlsSetupError,
    WebhookSignatureError,
)
from asyncarch.client.errors import error_from_response as error_from_response
from asyncarch.client.errors import parse_retry_after as parse_retry_after
from asyncarch.client.polling import TERMINAL_STATES
from asyncarch.client.polling import StatusCallback as StatusCallback
from asyncarch.client.polling import StatusPoll as StatusPoll
from asyncarch.client.polling import backoff_delays as backoff_delays
from asyncarch.client.sync import AsyncarchClient
from asyncarch.client.tls import CA_BUNDLE_ENV, tls_verify
from asyncarch.client.webhooks import verify_webhook_signature

__all__ = [
    "CA_BUNDLE_ENV",
    "TERMINAL_STATES",
    "ApiUnreachable",
    "AsyncAsyncarchClient",
    "AsyncarchClient",
    "ClientError",
    "ServiceUnavailable",
    "TaskHandle",
    "TaskNotFinished",
    "TaskNotFound",
    "TaskTimeout",
    "TlsSetupError",
    "WebhookSignatureError",
    "tls_verify",
    "verify_webhook_signature",
]
