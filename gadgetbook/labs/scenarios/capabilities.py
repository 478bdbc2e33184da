"""Lab 4, capabilities and least privilege: an app that needs four capabilities, run with podman's defaults,
with a first guess at dropping them, and with exactly what the advisor found."""

from __future__ import annotations

import os

from gadgetbook.errors import GadgetError
from gadgetbook.labs.check import Question, columns, values
from gadgetbook.labs.scenarios.containers import ContainerScenario

# What the app's loop needs, check by check: chown of a file another user owns (CHOWN), chmod of it (FOWNER),
# reading it although its mode keeps others out (DAC_OVERRIDE), listening on port 80 (NET_BIND_SERVICE).
NEEDED = {"CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE", "CAP_NET_BIND_SERVICE"}
# Checks the kernel makes that the app does not need to pass: a refused DAC_READ_SEARCH before DAC_OVERRIDE on
# a read, and CAP_SYS_ADMIN probes made without auditing.
NOT_NEEDED = {"CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN"}
# What the app never does: podman grants these by default.
NEVER = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
         "CAP_SETUID", "CAP_SYS_CHROOT"}
OWNER = 1000


def _script(data: str) -> str:
    return (f"while true; do /bin/chown {OWNER}:{OWNER} {data}; /bin/chmod 640 {data}; /bin/cat {data} >/dev/null; "
            "/bin/nc -l -p 80 & /bin/sleep 0.1; kill $! 2>/dev/null; /bin/sleep 0.2; done")


def _effective(pid: int) -> list[str]:
    from gadgetbook.kernel.capability_names import capability_name

    with open(f"/proc/{pid}/status") as f:
        bits = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return sorted(capability_name(n) for n in range(64) if bits >> n & 1)


def _lacks(names: set[str]):
    def expect(df) -> str | None:
        extra = sorted(names & set(df["capability"].astype(str)))
        return f"It holds {', '.join(extra)}, which do not belong in the answer." if extra else None

    return expect


class CapabilitiesLab(ContainerScenario):
    """`app` runs with podman's default capabilities; `guess` with every capability dropped but
    NET_BIND_SERVICE; `least`, started by start_least(), with the options the advisor gives."""

    lab = "capabilities"

    def start(self) -> None:
        app = self.app("app")
        self.facts["default_capabilities"] = _effective(app.pid)
        self.app("guess", ["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"])

    def app(self, role: str, options: list[str] = ()):
        data = f"/data/{role}/upload"
        path = self.file(data, "order 1\n", 0o640)
        os.chown(path, OWNER, OWNER)
        return self.container(role, _script(data), options=list(options))

    def start_least(self, options: list[str]) -> None:
        """Start the app again with these podman options (--cap-drop ALL --cap-add ...); replayed, nothing to do."""
        if not self.live:
            return
        if "least" in self.containers:
            raise GadgetError("The least-privilege app runs already; lab.close() removes it with the others.")
        self.app("least", options)
        self.facts["least_options"] = list(options)
        self.save_facts()

    def questions(self) -> dict[str, Question]:
        defaults = set(self.facts["default_capabilities"])
        return {
            "used": Question(
                "Which capabilities does the app use?",
                columns("capability"), values("capability", NEEDED, exactly=False), _lacks(NOT_NEEDED),
                hint="Keep the checks the kernel allowed (verdict == 'allowed') and audited (audit is True): a "
                     "refused check ran without the capability, an unaudited one is a probe. Then the distinct "
                     "capability values."),
            "unused": Question(
                "Which of podman's default capabilities can the app drop?",
                columns("capability"), values("capability", NEVER & defaults, exactly=False), _lacks(NEEDED),
                hint="lab.default_capabilities lists what podman grants; keep those that are not in your answer "
                     "to the first exercise (isin, with ~)."),
            "missing": Question(
                "Which capabilities does the first guess (only NET_BIND_SERVICE) lack?",
                columns("capability"), values("capability", NEEDED - {"CAP_NET_BIND_SERVICE"}, exactly=False),
                _lacks({"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"}),
                hint="Refused (verdict == 'denied') and audited checks are what the app tried and could not do; "
                     "DAC_READ_SEARCH is refused with any set (the kernel tries it before DAC_OVERRIDE): leave it "
                     "out."),
        }

    @property
    def default_capabilities(self) -> list[str]:
        """What podman grants a container by default (read from the app container)."""
        return list(self.facts["default_capabilities"])
