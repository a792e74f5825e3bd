"""Document extraction, chunking and the claim-check store."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest

from asyncarch.blobstore import BlobError, BlobRef, BlobSettings, LocalBlobStore, open_store
from inference_consumer.documents import chunk_text, extract_text
from inference_consumer.exceptions import InvalidTaskInputs
from tests.helpers import make_pdf


def test_pdf_text_is_extracted() -> None:
    text = extract_text(
        make_pdf(["Cables carry power.", "Fibre carries light."]), "application/pdf"
    )
    assert "Cables carry power." in text and "Fibre carries light." in text


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (b"\xff\xfe\x00bad", "text/plain", "not UTF-8"),
        (b"%PDF-1.7 garbage", "application/pdf", "PDF cannot be read"),
        (b"hello", "image/png", "unsupported document type"),
    ],
)
def test_unreadable_documents_are_invalid_inputs(
    data: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(InvalidTaskInputs, match=message):
        extract_text(data, content_type)


def test_chunks_cover_the_text_with_true_offsets() -> None:
    text = " ".join(f"word{i}" for i in range(1000))
    passages = chunk_text(text, size=200, overlap=50)
    assert len(passages) > 10
    assert passages[0].start == 0 and passages[-1].end == len(text)
    for passage in passages:
        assert text[passage.start : passage.end].strip() == passage.text
        assert len(passage.text) <= 200
        assert not passage.text.startswith("ord")  # cut on word boundaries
    for before, after in itertools.pairwise(passages):
        assert after.start < before.end  # overlap
        assert after.start > before.start  # progress


def test_blank_text_has_no_chunks() -> None:
    assert chunk_text("   \n\t ") == []


def test_local_store_round_trip_and_checks(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    ref = store.put([b"hello ", b"world"], suffix=".txt")
    assert ref.size == 11 and ref.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert store.read(ref) == b"hello world"
    with pytest.raises(BlobError, match="does not match"):
        store.read(BlobRef(ref.uri, ref.size, "0" * 64))
    store.delete(ref.uri)
    with pytest.raises(BlobError, match="cannot read"):
        store.read(ref)


def test_local_store_refuses_paths_outside_its_root(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"s")
    with pytest.raises(BlobError, match="outside the document store"):
        store.read(BlobRef(secret.as_uri(), 1, hashlib.sha256(b"s").hexdigest()))
    with pytest.raises(BlobError, match="outside the document store"):
        store.read(BlobRef((tmp_path / "blobs" / ".." / "secret.txt").as_uri(), 1, ""))


def test_store_url_selects_the_store(tmp_path: Path) -> None:
    assert isinstance(open_store(BlobSettings(url=tmp_path.as_uri())), LocalBlobStore)
    with pytest.raises(BlobError, match="unsupported BLOB_URL scheme"):
        open_store(BlobSettings(url="ftp://example.test/docs"))
