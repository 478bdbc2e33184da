"""The Kubernetes API client from a kubeconfig, and API errors turned into one sentence."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

from gadgetbook.errors import GadgetError

NAMESPACE = "gadgetbook"
DAEMONSET = "gadgetbook-node"
SECRET = "gadgetbook-node-token"
NODE_PORT = 8765
NODE_LABELS = {"app.kubernetes.io/name": "gadgetbook-node"}


def kubeconfig_path(explicit: str | None = None) -> str | None:
    """The kubeconfig in use: --kubeconfig, then $KUBECONFIG, then ~/.kube/config; None when there is none."""
    for candidate in (explicit, *(os.environ.get("KUBECONFIG", "").split(os.pathsep)), "~/.kube/config"):
        # os.path.exists: an unreadable home directory means "none", not an error.
        if candidate and os.path.exists(os.path.expanduser(candidate)):
            return os.path.expanduser(candidate)
    if explicit:
        raise GadgetError(f"No kubeconfig at {explicit}; pass an existing file to --kubeconfig.")
    return None


@dataclass(frozen=True)
class Kube:
    """An API client and the typed APIs gadgetbook uses."""

    client: object
    context: str | None
    context_name: str = ""  # the context in use, named: the one asked for or the kubeconfig's current one

    @functools.cached_property
    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.client)

    @functools.cached_property
    def apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.client)

    @functools.cached_property
    def rbac(self):
        from kubernetes import client

        return client.RbacAuthorizationV1Api(self.client)


def connect(kubeconfig: str | None = None, context: str | None = None) -> Kube:
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig_path(kubeconfig)
    if path is None:
        raise GadgetError("No kubeconfig found ($KUBECONFIG, ~/.kube/config); pass --kubeconfig, "
                          "or --local to trace this host.")
    try:
        api_client = config.new_client_from_config(config_file=path, context=context)
    except ConfigException as exc:
        raise GadgetError(f"Cannot use the kubeconfig {path}: {exc}.") from None
    # Every call gets a bound: an API server that does not answer must not hang a run.
    api_client.configuration.retries = 1
    return Kube(api_client, context, context or _current_context(path))


def _current_context(path: str) -> str:
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        return config.list_kube_config_contexts(config_file=path)[1]["name"]
    except (ConfigException, KeyError, TypeError, IndexError):
        return ""


def explain(exc: Exception, doing: str) -> GadgetError:
    """An API exception as one sentence: unreachable, forbidden (which verb on what), not found."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(exc, ApiException):
        reason = ""
        try:
            reason = json.loads(exc.body or "{}").get("message", "")
        except ValueError:
            reason = (exc.body or "")[:200]
        if exc.status == 401:
            return GadgetError(f"The API server did not accept your credentials while {doing}; "
                               "check the kubeconfig's user.")
        if exc.status == 403:
            return GadgetError(f"Permission denied while {doing}: {reason or 'forbidden'}; "
                               "ask for the gadgetbook-user role (see images/k8s/RBAC.md).")
        if exc.status == 404:
            return GadgetError(f"Not found while {doing}: {reason or exc.reason}.")
        return GadgetError(f"The API server answered {exc.status} while {doing}: {reason or exc.reason}.")
    if isinstance(exc, (Urllib3Error, OSError)):
        return GadgetError(f"Cannot reach the Kubernetes API server while {doing} ({type(exc).__name__}); "
                           "check the cluster is up and the kubeconfig's server address.")
    return GadgetError(f"Failed while {doing}: {exc}.")


def call(doing: str, fn, *args, **kwargs):
    """Run one API call with a time bound; errors become one sentence."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    kwargs.setdefault("_request_timeout", 15)
    try:
        return fn(*args, **kwargs)
    except (ApiException, Urllib3Error, OSError) as exc:
        raise explain(exc, doing) from None
