"""Blob identity: digests and account names are validated, and storage keys are only ever derived."""

from __future__ import annotations

import hashlib

import pytest

from charter.adapters.artifacts.s3 import parse_s3_url
from charter.domain.artifacts import BlobInfo, BlobRef, Digester, blob_key, check_digest, verified
from charter.errors import IntegrityError, TooLarge, ValidationError

DIGEST = hashlib.sha256(b"model").hexdigest()

TRAVERSALS = [
    "../", "..", ".", "../../etc/passwd", "%2e%2e", "%2e%2e%2f", "..%2f", "/etc/passwd", "/",
    "a/../b", "a\\b", "..\\..\\windows", "a\0b", "\0", "~root", "a b", "a\nb", "",
]


def test_the_key_of_a_blob_fans_out_by_the_first_two_bytes_of_its_digest() -> None:
    assert blob_key("ml-dev", DIGEST) == f"ml-dev/sha256/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}"


def test_a_digest_of_64_lowercase_hex_digits_is_accepted() -> None:
    assert check_digest(DIGEST) == DIGEST


@pytest.mark.parametrize("digest", [
    DIGEST.upper(), DIGEST[:-1], DIGEST + "0", f"sha256:{DIGEST}", DIGEST + "\n", " " + DIGEST,
    "g" * 64, "../" + DIGEST[3:], DIGEST[:-2] + "/.", "%2e%2e" + DIGEST[6:], "/" + DIGEST[1:],
    "\\" + DIGEST[1:], DIGEST[:-1] + "\0", "０" * 64,
    *TRAVERSALS,
])
def test_a_malformed_digest_is_refused(digest: str) -> None:
    with pytest.raises(ValidationError):
        check_digest(digest)


@pytest.mark.parametrize("account", [*TRAVERSALS, ".staging", "ML-dev", "ml-dev/", "ml-", "-ml", "a" * 64,
                                     "ml_dev", "ml-dev/../ml-prod"])
def test_a_key_for_a_malformed_account_is_refused(account: str) -> None:
    with pytest.raises(ValidationError):
        blob_key(account, DIGEST)


@pytest.mark.parametrize("digest", TRAVERSALS)
def test_a_key_for_a_malformed_digest_is_refused(digest: str) -> None:
    with pytest.raises(ValidationError):
        blob_key("ml-dev", digest)


def test_a_blob_ref_refuses_a_malformed_digest() -> None:
    with pytest.raises(ValidationError):
        BlobRef("ml-dev", "../../etc/passwd")


def test_a_blob_ref_knows_its_key() -> None:
    assert BlobRef("ml-dev", DIGEST).key == blob_key("ml-dev", DIGEST)


def test_blob_info_refuses_a_negative_size() -> None:
    with pytest.raises(ValidationError):
        BlobInfo("ml-dev", DIGEST, -1)


def test_the_digester_hashes_what_streams_through_it() -> None:
    digester = Digester()
    for chunk in (b"mo", b"d", b"el"):
        digester.update(chunk)
    assert digester.result("ml-dev") == BlobInfo("ml-dev", DIGEST, 5)


def test_the_digester_refuses_a_stream_beyond_its_limit() -> None:
    digester = Digester(max_bytes=4)
    digester.update(b"mode")
    with pytest.raises(TooLarge) as refused:
        digester.update(b"l")
    assert refused.value.details["max_bytes"] == 4


def test_the_digester_refuses_content_that_is_not_what_was_announced() -> None:
    digester = Digester()
    digester.update(b"other")
    with pytest.raises(ValidationError) as refused:
        digester.result("ml-dev", expected_sha256=DIGEST)
    assert refused.value.details["expected"] == DIGEST


def test_verified_reading_passes_the_exact_blob_through() -> None:
    assert b"".join(verified([b"mod", b"el"], BlobInfo("ml-dev", DIGEST, 5))) == b"model"


def test_verified_reading_fails_at_the_end_when_the_bytes_differ() -> None:
    stream = verified([b"mod", b"EL"], BlobInfo("ml-dev", DIGEST, 5))
    assert next(stream) == b"mod"
    with pytest.raises(IntegrityError):
        list(stream)


def test_an_s3_url_splits_into_a_bucket_template_and_a_prefix() -> None:
    assert parse_s3_url("s3://charter-{account}/blobs/v1/") == ("charter-{account}", "blobs/v1")


def test_an_s3_url_without_a_prefix_keeps_blobs_at_the_top_of_the_bucket() -> None:
    assert parse_s3_url("s3://artifacts") == ("artifacts", "")


@pytest.mark.parametrize("url", [
    "s3://", "s3:///prefix", "s3://Upper/x", "s3://ab/x", "s3://a..b/x", "s3://{account}{account}x/y",
    "s3://b-{other}/x", "s3://bucket/../x", "s3://bucket/a/./b", "s3://bucket/%2e%2e/x",
    "s3://bucket/a\\b", "s3://bucket/a\0b", "s3://bucket/x?y=1", "s3://bucket/x#f", "s3://bucket/a//b",
    "s3://bucket/.staging", "file:///tmp/x", "S3://bucket/x",
])
def test_a_malformed_s3_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        parse_s3_url(url)
