"""Lab 2, networking: the lab app (web and api servers, a DNS server, a client and a worker on a private network)
seen with tcptracer and tcptop, and a NetworkPolicy tested against a recording of its traffic."""

from __future__ import annotations

from typing import Any

from gadgetbook.labs.app import API_PORT, NetworkLab
from gadgetbook.labs.check import Question, columns, holds, rows, values
from gadgetbook.labs.scenarios.base import Scenario


class NetworkingLab(Scenario):
    """`client` fetches from `web` and `api`, `worker` only from `api`, every 0.2 and 0.4 s, after looking their
    names up in `dns`. Containers carry lab=<tag> and app=<role>."""

    lab = "networking"

    def setup(self) -> None:
        app = NetworkLab(subnet="10.213.62.0/24")
        self.on_close(app.close)
        self.facts["selector"] = app.selector
        self.facts["containers"] = {role: c.name for role, c in app.containers.items()}
        self.facts["addresses"] = dict(app.addresses)
        self.facts["network"] = app.net.name

    @property
    def selector(self) -> str:
        return self.facts["selector"]

    def name(self, role: str) -> str:
        return self.facts["containers"][role]

    def address(self, role: str) -> str:
        return self.facts["addresses"][role]

    def labels(self, role: str) -> dict[str, str]:
        return {"app": role, "lab": self.selector.split("=", 1)[1]}

    def workload(self, role: str) -> str:
        """The role's container as policies and their checks name it (without the run's suffix)."""
        from gadgetbook.compare.workloads import base_name

        return base_name(self.name(role))

    def questions(self) -> dict[str, Question]:
        return {
            "peers": Question(
                "Which servers (address and port) does the worker connect to?",
                columns("daddr", "dport"), values("daddr", {self.address("api")}), values("dport", {API_PORT}),
                hint="Keep the worker's connect rows (container and type), then the distinct daddr and dport.",
            ),
            "busiest": Question(
                "Which container sent the most bytes?",
                columns("container"), rows(1), values("container", {self.name("api")}),
                hint="Sum `sent` per container over every interval, sort it, keep the top row "
                     "(reset_index() turns the group into a column).",
            ),
            "refused": Question(
                "Which connections would the policy refuse?",
                columns("client", "server", "port"), values("client", {self.workload("worker")}),
                values("server", {self.workload("api")}), values("port", {API_PORT}),
                hint="check_network_policy(policy, recording) returns a check; its `refused` is the DataFrame.",
            ),
            "fixed": Question(
                "A policy for api that refuses nothing the app did, and nothing else either",
                holds(lambda p: isinstance(p, str), "The answer should be the policy's YAML, as a string."),
                self._selects_api, self._refuses_nothing_seen, self._refuses_others,
                hint="Keep podSelector app: api and policyTypes [Ingress]; list both clients in `from` (a "
                     "podSelector each) and keep the port.",
                dataframe=False,
            ),
        }

    # -- the policy exercise's expectations --

    def _policies(self, text: str) -> list[dict[str, Any]]:
        from gadgetbook.policy.network import load_policies

        return load_policies(text)

    def _selects_api(self, text: str) -> str | None:
        from gadgetbook.policy.labels import matches

        try:
            docs = self._policies(text)
        except Exception as exc:  # a policy that does not parse is a wrong answer, said in its words
            return f"The policy does not load: {exc}"
        for doc in docs:
            spec = doc.get("spec") or {}
            types = spec.get("policyTypes") or ["Ingress"]
            if "Ingress" in types and matches(spec.get("podSelector"), self.labels("api")):
                return None
        return "No policy selects the api pods (podSelector app: api) for Ingress: api is not isolated at all."

    def _refuses_nothing_seen(self, text: str) -> str | None:
        from gadgetbook.policy.network import check_network_policy

        check = check_network_policy(text, str(self.runs / "traffic"))
        if len(check.refused):
            who = sorted(set(check.refused.client))
            return f"It would refuse {len(check.refused)} connections the app made (from {', '.join(who)})."
        return None

    def _refuses_others(self, text: str) -> str | None:
        from gadgetbook.policy.network import Endpoint, verdict

        api = Endpoint(self.workload("api"), self.address("api"), "default", self.labels("api"))
        web = Endpoint(self.workload("web"), self.address("web"), "default", self.labels("web"))
        if verdict(self._policies(text), api, web, API_PORT, "ingress", "default", set()) is None:
            return "It would also admit web, which never connected to api: list only the clients that did."
        return None
