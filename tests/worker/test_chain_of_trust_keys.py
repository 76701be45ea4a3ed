"""The worker's signing key, its file format, and the signed document, without I/O beyond a file."""

from __future__ import annotations

import base64
import json

import pytest

from cairn.worker import chain_of_trust
from cairn.worker.content_types import content_type_for


def test_a_generated_key_is_generic_workers_format_and_signs_what_its_public_key_verifies(tmp_path):
    path = tmp_path / "key"
    public = chain_of_trust.generate_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(path.read_text(), validate=True)) == 32
    (tmp_path / "key.pub").write_text(public + "\n")
    key = chain_of_trust.load_signing_key(path)
    data = chain_of_trust.document({"payload": {}}, "T", 0, "g", "w", {}, {"public/a": "00" * 32})
    signature = chain_of_trust.sign(key, data)
    assert len(signature) == 64
    verifier = chain_of_trust.load_public_key(tmp_path / "key.pub")
    assert chain_of_trust.signature_valid(verifier, data, signature)
    assert not chain_of_trust.signature_valid(verifier, data + b" ", signature)
    assert not chain_of_trust.signature_valid(verifier, data, bytes([signature[0] ^ 1]) + signature[1:])
    with pytest.raises(FileExistsError):
        chain_of_trust.generate_key(path)


def test_the_document_has_generic_workers_fields():
    data = json.loads(chain_of_trust.document({"x": 1}, "T", 2, "g", "w", {"region": ""}, {"b": "2", "a": "1"}))
    assert data == {
        "chainOfTrustVersion": 1,
        "artifacts": {"a": {"sha256": "1"}, "b": {"sha256": "2"}},
        "task": {"x": 1},
        "taskId": "T",
        "runId": 2,
        "workerGroup": "g",
        "workerId": "w",
        "environment": {"region": ""},
    }


@pytest.mark.parametrize("content", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_a_bad_key_file_is_refused_with_generic_workers_words(tmp_path, content):
    (tmp_path / "key").write_text(content)
    with pytest.raises(ValueError, match="Missing ED25519 Private Key"):
        chain_of_trust.load_signing_key(tmp_path / "key")


def test_a_payload_asking_for_a_chain_of_trust_needs_a_key_and_may_not_take_its_names():
    key = chain_of_trust.Ed25519PrivateKey.generate()
    asking = {"command": "true", "features": {"chainOfTrust": True}}
    assert chain_of_trust.payload_problems({"command": "true"}, None) == []
    assert chain_of_trust.payload_problems(asking, key) == []
    assert "not enabled on this worker" in chain_of_trust.payload_problems(asking, None)[0]
    forging = {**asking, "artifacts": [{"type": "file", "name": "public/logs/certified.log", "path": "x"}]}
    assert "public/logs/certified.log" in chain_of_trust.payload_problems(forging, key)[0]


@pytest.mark.parametrize(("name", "expected"), [
    ("build.log", "text/plain"),
    ("result.json", "application/json"),
    ("page.html", "text/html"),
    ("target.tar.gz", "application/gzip"),
    ("data.jsonl", "application/jsonl"),
    ("blob.bin", "application/octet-stream"),
    ("no-extension", "application/octet-stream"),
    ("SHOUT.JSON", "application/json"),
])
def test_content_types_by_file_name(name, expected):
    assert content_type_for(name) == expected


def test_a_tasks_additional_data_is_merged_under_the_workers_fields(tmp_path):
    assert chain_of_trust.additional_data(tmp_path) is None
    (tmp_path / chain_of_trust.ADDITIONAL_DATA).write_text(
        '{"taskId": "forged", "environment": {"region": "x", "image": "i"}, "extra": 1}'
    )
    additional = chain_of_trust.additional_data(tmp_path)
    data = json.loads(chain_of_trust.document({}, "T", 0, "g", "w", {"region": ""}, {}, additional))
    assert (data["taskId"], data["extra"], data["environment"]) == ("T", 1, {"region": "", "image": "i"})
    (tmp_path / chain_of_trust.ADDITIONAL_DATA).write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        chain_of_trust.additional_data(tmp_path)
    (tmp_path / chain_of_trust.ADDITIONAL_DATA).write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read as JSON"):
        chain_of_trust.additional_data(tmp_path)
