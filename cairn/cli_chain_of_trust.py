"""``cairn task verify`` and ``cairn worker --generate-key``: chains of trust from the reader's side.

``verify`` trusts nothing it downloads until it has checked it. It reads
the run's ``public/chain-of-trust.json`` and ``.sig``, checks the signature
with the worker's public key, checks that the document speaks of this task
(its id, run, worker and definition as the queue has them), and then, for
each artifact the document lists, compares three sha256 hashes: the one
signed in the document, the one the object service recorded when the data
was uploaded, and the one of the bytes received now. Data is fetched with
the object service's ``getUrl`` method, which hands out the recorded hashes
and leaves the checking to the client — here, to this command.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import click

from cairn.cli_output import CairnCommand, api, json_option, print_json, taskcluster_options

# cairn.worker.chain_of_trust (cryptography, the asynchronous client) is imported
# by the commands that use it: every `cairn` command loads this module.

DOWNLOAD_TIMEOUT = 60


def generate_signing_key(path: str) -> None:
    """Write a new key to ``path`` and print its public key (base64), as generic-worker does."""
    from cairn.worker import chain_of_trust

    try:
        public = chain_of_trust.generate_key(path)
    except FileExistsError:
        raise click.ClickException(f"{path} already exists; it is left as it is") from None
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e}") from None
    click.echo(public)


@dataclass
class Fetched:
    name: str
    data: bytes | None = None
    recorded: str | None = None
    problem: str | None = None

    @property
    def sha256(self) -> str | None:
        return None if self.data is None else hashlib.sha256(self.data).hexdigest()


@dataclass
class Report:
    task_id: str
    run_id: int
    checks: list[dict[str, Any]] = field(default_factory=list)

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append({"check": what, "ok": ok, "detail": detail})
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)


def _fetch(queue: Any, task_id: str, run_id: int, name: str) -> Fetched:
    """An artifact's bytes as stored and the sha256 the object service recorded, without trusting either."""
    import requests
    import taskcluster

    fetched = Fetched(name)
    try:
        content = queue.artifact(task_id, str(run_id), name)
        if content["storageType"] != "object":
            fetched.problem = f"is a {content['storageType']} artifact, not data uploaded by the worker"
            return fetched
        objects = taskcluster.Object({**taskcluster_options(), "credentials": content["credentials"]})
        download = objects.startDownload(content["name"], {"acceptDownloadMethods": {"getUrl": True}})
        fetched.recorded = download.get("hashes", {}).get("sha256")
        response = requests.get(download["url"], timeout=DOWNLOAD_TIMEOUT)
        response.raise_for_status()
        fetched.data = response.content
    except taskcluster.exceptions.TaskclusterRestFailure as e:
        fetched.problem = f"cannot be fetched: {e.status_code} {e.body.get('code', '') if e.body else ''}".strip()
    except (taskcluster.exceptions.TaskclusterFailure, requests.RequestException) as e:
        fetched.problem = f"cannot be fetched: {e}"
    return fetched


def _check_data(report: Report, fetched: Fetched, signed: str | None) -> None:
    """The bytes against the object service's record and, when given, against the signed hash."""
    name = fetched.name
    if fetched.problem:
        report.check(name, False, fetched.problem)
        return
    if signed is not None:
        report.check(f"{name}: data matches the signed sha256", fetched.sha256 == signed,
                     f"signed {signed}, data {fetched.sha256}")
        report.check(f"{name}: object service's sha256 matches the signed one", fetched.recorded == signed,
                     f"signed {signed}, recorded {fetched.recorded}")
    else:
        report.check(f"{name}: data matches the object service's sha256", fetched.sha256 == fetched.recorded,
                     f"recorded {fetched.recorded}, data {fetched.sha256}")


def _same_definition(signed: Any, current: dict[str, Any]) -> bool:
    """The signed definition is the task's, but for its priority, which may have changed since it ran."""
    if not isinstance(signed, dict):
        return False
    return {**signed, "priority": None} == {**current, "priority": None}


def verify(task_id: str, run_id: int | None, key: Any) -> Report:
    from cairn.worker import chain_of_trust

    queue = api("queue")
    status = queue.status(task_id)["status"]
    if not status["runs"]:
        raise click.ClickException(f"task {task_id} has no runs")
    if run_id is None:
        run_id = len(status["runs"]) - 1
    if not 0 <= run_id < len(status["runs"]):
        raise click.ClickException(f"task {task_id} has no run {run_id}")
    run = status["runs"][run_id]
    report = Report(task_id, run_id)

    document = _fetch(queue, task_id, run_id, chain_of_trust.DOCUMENT)
    signature = _fetch(queue, task_id, run_id, chain_of_trust.SIGNATURE)
    _check_data(report, document, None)
    _check_data(report, signature, None)
    if document.data is None or signature.data is None:
        return report
    report.check("signature", chain_of_trust.signature_valid(key, document.data, signature.data),
                 f"ed25519, public key {chain_of_trust.public_key_text(key)}")
    try:
        cot = json.loads(document.data)
        if not isinstance(cot, dict) or not isinstance(cot.get("artifacts"), dict):
            raise ValueError("not a chain-of-trust document")
    except ValueError as e:
        report.check("document", False, f"{chain_of_trust.DOCUMENT} cannot be read: {e}")
        return report
    report.check("document: chainOfTrustVersion", cot.get("chainOfTrustVersion") == chain_of_trust.VERSION,
                 f"version {cot.get('chainOfTrustVersion')!r}")
    report.check("document: taskId and runId", (cot.get("taskId"), cot.get("runId")) == (task_id, run_id),
                 f"{cot.get('taskId')} run {cot.get('runId')}")
    worker = (run.get("workerGroup"), run.get("workerId"))
    report.check("document: workerGroup and workerId", (cot.get("workerGroup"), cot.get("workerId")) == worker,
                 f"document {cot.get('workerGroup')}/{cot.get('workerId')}, queue {worker[0]}/{worker[1]}")
    report.check("document: task definition", _same_definition(cot.get("task"), queue.task(task_id)),
                 "differs from the queue's")
    for name, listed in sorted(cot["artifacts"].items()):
        signed = listed.get("sha256") if isinstance(listed, dict) else None
        if not isinstance(signed, str):
            report.check(name, False, "the document lists no sha256")
            continue
        _check_data(report, _fetch(queue, task_id, run_id, name), signed)
    return report


@click.command("verify", cls=CairnCommand)
@click.argument("task_id")
@click.option("--run-id", type=int, default=None, help="The run to verify.  [default: the latest]")
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False),
              help="The worker's public key: base64 of its 32 bytes (as --generate-key prints), or PEM.")
@click.option("--worker-key", "worker_key", type=click.Path(dir_okay=False),
              help="Or the worker's signing key file, whose public key is used.")
@json_option
def verify_task(task_id: str, run_id: int | None, public_key: str | None, worker_key: str | None,
                as_json: bool) -> None:
    """Check a run's artifacts against its signed chain of trust (exit 1 on any failure).

    The signature of public/chain-of-trust.json must verify with the worker's
    key; the document must name this task, run, worker and definition; and
    every artifact it lists must have the signed sha256, both in the object
    service's record and in the data downloaded now.
    """
    from cairn.worker import chain_of_trust

    if (public_key is None) == (worker_key is None):
        raise click.UsageError("give the worker's key: --public-key FILE or --worker-key FILE")
    try:
        if public_key is not None:
            key = chain_of_trust.load_public_key(public_key)
        else:
            key = chain_of_trust.public_key_of_signing_key(worker_key)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    report = verify(task_id, run_id, key)
    if as_json:
        print_json({"taskId": report.task_id, "runId": report.run_id, "ok": report.ok, "checks": report.checks})
    else:
        click.echo(f"Chain of trust of task {report.task_id} run {report.run_id}")
        for c in report.checks:
            # The details of what failed; of what passed, only the key that verified the signature.
            shown = c["detail"] and (not c["ok"] or c["check"] == "signature")
            click.echo(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}" + (f"  ({c['detail']})" if shown else ""))
        click.echo("verified" if report.ok else "NOT verified", err=not report.ok)
    if not report.ok:
        raise SystemExit(1)
