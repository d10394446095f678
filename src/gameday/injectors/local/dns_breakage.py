"""dns-breakage (NETWORK002): the server's upstream name stops resolving.

The server runs in a network namespace whose resolver is a dnsmasq the
harness controls (``target.local.network``). The fault breaks that resolver
the way a broken CoreDNS breaks a pod: ``nxdomain`` removes the names (the
domain stays local, so the answer is NXDOMAIN: ``[Errno -2] Name or service not
known``), ``servfail`` forwards the domain to a server that refuses
connections (dnsmasq answers SERVFAIL: ``[Errno -3] Temporary failure in name
resolution``), ``timeout`` stops dnsmasq (SIGSTOP) so queries go unanswered.
Nothing in the server is told: it finds out when it next resolves the name.
Each change is applied only once the resolver itself answers the broken way.
"""

from __future__ import annotations

import shutil
import signal
from typing import Literal

from pydantic import Field

from gameday.core.errors import InjectionError
from gameday.core.journal import process_start_time
from gameday.core.undo import RestoreFile
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.targets.local.network import DnsAnswer, ServerNetwork, SignalProcess
from gameday.targets.local.target import LocalTarget

__all__ = ["DnsBreakage", "DnsBreakageSpec"]

DEAD_RESOLVER = "127.0.0.1#1"
"""Where servfail forwards queries: nothing listens there, so dnsmasq gives up."""


class DnsBreakageSpec(FaultSpec):
    mode: Literal["nxdomain", "servfail", "timeout"] = "nxdomain"
    names: list[str] = Field(default_factory=list)
    """Names to break (default: every name of target.local.network.dns). timeout
    breaks the whole resolver."""


@faults.register("dns-breakage")
class DnsBreakage(Injector[DnsBreakageSpec, LocalTarget]):
    Params = DnsBreakageSpec
    target_kinds = frozenset({"local"})
    runbook = "NETWORK002"
    summary = "The server's resolver answers NXDOMAIN, SERVFAIL or nothing for its upstream names."

    @classmethod
    def describe(cls, spec: DnsBreakageSpec) -> str:
        names = ", ".join(spec.names) or "the scenario's names"
        return {
            "nxdomain": f"make the server's resolver answer NXDOMAIN for {names}",
            "servfail": f"make the server's resolver answer SERVFAIL for {names}",
            "timeout": "stop the server's resolver (SIGSTOP): queries go unanswered",
        }[spec.mode]

    def _network(self) -> ServerNetwork:
        network = self.target.network
        if network is None:
            raise InjectionError(
                "dns-breakage needs the server in its own network namespace: "
                "set target.local.network.dns"
            )
        return network

    def _names(self, network: ServerNetwork) -> list[str]:
        names = self.spec.names or sorted(network.spec.dns)
        unknown = [n for n in names if n not in network.spec.dns]
        if unknown or not names:
            raise InjectionError(
                f"dns-breakage: {', '.join(unknown) or 'no names'} not in target.local.network.dns"
            )
        return names

    def _rewrite(self, path_attr: str, network: ServerNetwork, text: str) -> None:
        """Save the file, record how to put it back, then replace it."""
        path = getattr(network, path_attr)
        saved = network.dir / f"{path.name}.before-{self.spec.name}"
        shutil.copy2(path, saved)
        self.ctx.changes.record(RestoreFile(original=str(path), saved_at=str(saved)))
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)

    def apply(self) -> dict[str, str]:
        network = self._network()
        dnsmasq = network.dnsmasq
        assert dnsmasq is not None
        mode = self.spec.mode
        if mode == "timeout":
            self.ctx.changes.record(
                SignalProcess(
                    pid=dnsmasq.pid, start_time=process_start_time(dnsmasq.pid), signal="SIGCONT"
                )
            )
            dnsmasq.popen.send_signal(signal.SIGSTOP)
            answer = network.wait_for(lambda a: a.rcode == "TIMEOUT", "the resolver to stop", 10)
            return {"resolver": f"dnsmasq pid {dnsmasq.pid} stopped", "answer": answer.rcode}

        names = self._names(network)
        kept = {n: ip for n, ip in network.spec.dns.items() if n not in names}
        if mode == "servfail":
            self.ctx.changes.record(
                SignalProcess(
                    pid=dnsmasq.pid, start_time=process_start_time(dnsmasq.pid), signal="SIGHUP"
                )
            )
            domains = sorted({n.split(".", 1)[1] for n in names})
            servers = "".join(f"server=/{d}/{DEAD_RESOLVER}\n" for d in domains)
            self._rewrite("servers_file", network, servers)
        self._rewrite("hosts_file", network, network.records_text(kept))
        if mode == "servfail":
            dnsmasq.popen.send_signal(signal.SIGHUP)  # re-read the servers file
        wanted = {"nxdomain": {"NXDOMAIN"}, "servfail": {"SERVFAIL", "TIMEOUT"}}[mode]
        answer = network.wait_for(lambda a: a.rcode in wanted, f"{mode} answers", 10, name=names[0])
        return {"names": ", ".join(names), "answer": answer.rcode}

    def revert(self) -> dict[str, str]:
        details = super().revert()
        network = self._network()

        def resolves(answer: DnsAnswer) -> bool:
            return answer.rcode == "NOERROR" and bool(answer.addresses)

        answer = network.wait_for(resolves, "the resolver to answer again", 20)
        details["answer"] = f"{answer.rcode} {', '.join(answer.addresses)}"
        return details
