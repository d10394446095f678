"""A network namespace of its own for the server, with a resolver the harness controls.

With ``target.local.network`` set, the server runs in a fresh network namespace
joined to the host by a veth pair (host side ``.1``, server side ``.2`` of a
/30 in 10.213.0.0/16). ``ip netns exec`` bind-mounts
``/etc/netns/<ns>/resolv.conf`` over ``/etc/resolv.conf``, which points the
server's resolver at a dnsmasq the harness starts on the host side. dnsmasq
answers the scenario's names from a hosts directory (re-read on change, through
inotify) and treats their domains as local (NXDOMAIN for anything else), with
its server list in a file it re-reads on SIGHUP. A DNS fault changes those
files or stops dnsmasq: the server's ``getaddrinfo`` then fails the way it
would against a broken CoreDNS.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from gameday.core.changes import ChangeSet
from gameday.core.errors import ComponentMissing, ComponentUnreachable, PermissionProblem
from gameday.core.journal import process_start_time
from gameday.core.processes import Spawned, spawn
from gameday.core.undo import RemoveTree, RevertFailed, UndoAction, register_undo
from gameday.scenario.model import StrictModel

__all__ = [
    "DeleteLink",
    "DeleteNetns",
    "DnsAnswer",
    "NetworkSpec",
    "ServerNetwork",
    "SignalProcess",
    "query_dns",
]

NETNS_ETC = Path("/etc/netns")
SUBNET_POOL = ipaddress.IPv4Network("10.213.0.0/16")


class NetworkSpec(StrictModel):
    """Run the server in its own network namespace, resolving names through the harness."""

    dns: dict[str, str] = Field(default_factory=dict)
    """Names the private resolver answers, and their address ("host" for the host side of
    the namespace's link). Their domains are local: other names in them are NXDOMAIN."""

    @field_validator("dns")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for name, address in value.items():
            if "." not in name or name.startswith(".") or name.endswith("."):
                raise ValueError(
                    f"{name!r} is not a fully qualified name (e.g. registry.models.internal)"
                )
            if address != "host":
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ValueError(
                        f"{name}: {address!r} is not an IP address or 'host'"
                    ) from None
        return value


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise ComponentUnreachable(f"ip {' '.join(args)}: {result.stderr.strip()}")


@register_undo
class DeleteNetns(UndoAction):
    kind: ClassVar[str] = "delete-netns"
    name: str

    def revert(self) -> str:
        if not (Path("/run/netns") / self.name).exists():
            return f"network namespace {self.name} already gone"
        result = subprocess.run(
            ["ip", "netns", "delete", self.name], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RevertFailed(f"ip netns delete {self.name}: {result.stderr.strip()}")
        return f"deleted network namespace {self.name}"

    def describe(self) -> str:
        return f"delete network namespace {self.name}"


@register_undo
class DeleteLink(UndoAction):
    kind: ClassVar[str] = "delete-link"
    name: str

    def revert(self) -> str:
        if not Path(f"/sys/class/net/{self.name}").exists():
            return f"link {self.name} already gone"
        result = subprocess.run(
            ["ip", "link", "delete", self.name], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RevertFailed(f"ip link delete {self.name}: {result.stderr.strip()}")
        return f"deleted link {self.name} (and its peer)"

    def describe(self) -> str:
        return f"delete network link {self.name}"


@register_undo
class SignalProcess(UndoAction):
    """Send a signal to a process we started (SIGCONT after a SIGSTOP, SIGHUP to reload)."""

    kind: ClassVar[str] = "signal-process"
    pid: int
    start_time: int | None
    signal: str

    def revert(self) -> str:
        if process_start_time(self.pid) != self.start_time:
            return f"process {self.pid} is gone; no {self.signal} needed"
        os.kill(self.pid, signal.Signals[self.signal])
        return f"sent {self.signal} to {self.pid}"

    def describe(self) -> str:
        return f"send {self.signal} to process {self.pid}"


class DnsAnswer(StrictModel):
    rcode: str
    """NOERROR, NXDOMAIN, SERVFAIL, REFUSED, or TIMEOUT when nothing answered."""
    addresses: list[str] = Field(default_factory=list)


_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def query_dns(server: str, name: str, timeout: float = 1.0) -> DnsAnswer:
    """One A query over UDP, straight to ``server``: what the resolver says right now."""
    query_id = int.from_bytes(os.urandom(2), "big")
    header = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # recursion desired
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = header + question + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, 53))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return DnsAnswer(rcode="TIMEOUT")
    _, flags, _, answers, _, _ = struct.unpack(">HHHHHH", data[:12])
    rcode = _RCODES.get(flags & 0xF, str(flags & 0xF))
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(answers):
        if data[offset] & 0xC0 == 0xC0:  # a compressed name pointer
            offset += 2
        else:
            while data[offset]:
                offset += data[offset] + 1
            offset += 1
        rtype, _, _, length = struct.unpack(">HHIH", data[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(data[offset : offset + 4]))
        offset += length
    return DnsAnswer(rcode=rcode, addresses=addresses)


class ServerNetwork:
    """The namespace, its link, its resolv.conf and its dnsmasq; every piece journaled."""

    def __init__(
        self, spec: NetworkSpec, changes: ChangeSet, scratch: Path, artifacts: Path
    ) -> None:
        self.spec = spec
        self.changes = changes
        digest = hashlib.sha256(f"{changes.run_id}/{changes.scenario}".encode()).hexdigest()
        self.namespace = f"gameday-{digest[:10]}"
        self.host_link, self.server_link = f"gdh{digest[:8]}", f"gdn{digest[:8]}"
        self.subnet = self._free_subnet(int(digest[8:12], 16))
        hosts = list(self.subnet.hosts())
        self.host_ip, self.server_ip = str(hosts[0]), str(hosts[1])
        self.dir = scratch / "dns"
        self.hosts_file = self.dir / "hosts" / "records"
        self.servers_file = self.dir / "servers"
        self.artifacts = artifacts
        self.dnsmasq: Spawned | None = None

    @staticmethod
    def _free_subnet(seed: int) -> ipaddress.IPv4Network:
        result = subprocess.run(
            ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False
        )
        used = result.stdout
        subnets = list(SUBNET_POOL.subnets(new_prefix=30))
        for step in range(len(subnets)):
            candidate = subnets[(seed + step) % len(subnets)]
            if str(next(candidate.hosts())) + "/" not in used:
                return candidate
        raise ComponentUnreachable(f"no free /30 left in {SUBNET_POOL} for a server namespace")

    def up(self) -> None:
        if os.geteuid() != 0:
            raise PermissionProblem("a server network namespace needs root (target.local.network)")
        for binary in ("ip", "dnsmasq"):
            if shutil.which(binary) is None:
                package = "dnsmasq-base" if binary == "dnsmasq" else "iproute2"
                raise ComponentMissing(
                    f"{binary} is not installed (Debian: apt-get install {package})"
                )
        ns = self.namespace
        self.changes.record(DeleteNetns(name=ns))
        _ip("netns", "add", ns)
        self.changes.record(DeleteLink(name=self.host_link))
        _ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.server_link)
        _ip("link", "set", self.server_link, "netns", ns)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        _ip("-n", ns, "addr", "add", f"{self.server_ip}/30", "dev", self.server_link)
        _ip("-n", ns, "link", "set", self.server_link, "up")
        _ip("-n", ns, "link", "set", "lo", "up")

        etc = NETNS_ETC / ns
        self.changes.record(RemoveTree(path=str(etc)))
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(
            f"# written by gameday for {ns}\nnameserver {self.host_ip}\n"
        )

        self.hosts_file.parent.mkdir(parents=True, exist_ok=True)
        self.hosts_file.write_text(self.records_text(dict(self.spec.dns)))
        self.servers_file.write_text(self.local_domains_text())
        log = (self.artifacts / "dnsmasq.log").open("ab")
        try:
            self.dnsmasq = spawn(
                [
                    "dnsmasq",
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    f"--listen-address={self.host_ip}",
                    "--pid-file=",
                    # not nobody: it could not read its files in the scratch dir when
                    # TMPDIR is private (0700), as make soak's is, or systemd's PrivateTmp
                    "--user=root",
                    f"--hostsdir={self.hosts_file.parent}",
                    f"--servers-file={self.servers_file}",
                    "--log-queries",
                    "--log-facility=-",
                ],
                name="dnsmasq",
                changes=self.changes,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        self.wait_for(lambda answer: answer.rcode != "TIMEOUT", "dnsmasq to answer", timeout=10)

    def domains(self) -> list[str]:
        return sorted({name.split(".", 1)[1] for name in self.spec.dns})

    def local_domains_text(self) -> str:
        return "".join(f"server=/{domain}/\n" for domain in self.domains())

    def records_text(self, records: dict[str, str]) -> str:
        lines = [
            f"{self.host_ip if ip == 'host' else ip} {name}" for name, ip in sorted(records.items())
        ]
        return "# names the scenario's resolver answers (gameday)\n" + "".join(
            f"{line}\n" for line in lines
        )

    def wrap(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside the server's namespace (and its resolv.conf)."""
        return ["ip", "netns", "exec", self.namespace, *command]

    def probe_name(self) -> str:
        return sorted(self.spec.dns)[0] if self.spec.dns else f"probe.{self.namespace}.invalid"

    def ask(self, name: str | None = None, timeout: float = 1.0) -> DnsAnswer:
        return query_dns(self.host_ip, name or self.probe_name(), timeout)

    def wait_for(
        self, accept: object, what: str, timeout: float, name: str | None = None
    ) -> DnsAnswer:
        """Ask the resolver until ``accept(answer)``; a fault is applied once dnsmasq says so."""
        assert callable(accept)
        deadline = time.monotonic() + timeout
        answer = DnsAnswer(rcode="TIMEOUT")
        while time.monotonic() < deadline:
            answer = self.ask(name, timeout=0.5)
            if accept(answer):
                return answer
            time.sleep(0.05)  # dnsmasq re-reads its files asynchronously (inotify, SIGHUP)
        raise ComponentUnreachable(f"timed out waiting for {what}; last answer {answer.rcode}")
