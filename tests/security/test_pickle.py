"""Pickle, joblib and cloudpickle payloads under every model format and content type: a model file
is only ever loaded from a safe format (skops, ONNX), checked at upload when a format is named and
again at registration; pickle-bearing files are refused naming pickle, and nothing is registered."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from functools import cache

import pytest
from fastapi.testclient import TestClient

from .conftest import Org, auth, refused
from .support import DEV, group, package_body


class Exploit:
    """Runs a command when unpickled: what an attacker ships (never unpickled here)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/charter-pwned",))


@cache
def payloads() -> dict[str, bytes]:
    import cloudpickle
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), np.array([0, 1]))
    out = {f"pickle protocol {p}": pickle.dumps(Exploit(), protocol=p) for p in range(0, 6)}
    out["pickled model"] = pickle.dumps(model)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    out["joblib"] = buffer.getvalue()
    buffer = io.BytesIO()
    joblib.dump(Exploit(), buffer, compress=("zlib", 3))
    out["joblib zlib"] = buffer.getvalue()
    out["cloudpickle"] = cloudpickle.dumps(lambda x: x)
    out["gzip pickle"] = gzip.compress(pickle.dumps(Exploit()))
    npy = io.BytesIO()
    np.save(npy, np.array([Exploit()], dtype=object), allow_pickle=True)
    out["numpy object array"] = npy.getvalue()
    torch = io.BytesIO()
    with zipfile.ZipFile(torch, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Exploit()))
        z.writestr("archive/version", "3")
    out["torch-style zip"] = torch.getvalue()
    skops_like = io.BytesIO()
    with zipfile.ZipFile(skops_like, "w") as z:
        z.writestr("schema.json", '{"__class__": "LogisticRegression", "__module__": "sklearn"}')
        z.writestr("model.pkl", pickle.dumps(Exploit()))
    out["skops zip with a pickle"] = skops_like.getvalue()
    return out


CONTENT_TYPES = ["application/octet-stream", "application/x-pickle", "application/zip"]
FORMATS = ["skops", "onnx"]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("payload", sorted(payloads()))
def test_a_pickle_payload_cannot_be_registered_as_a_model_whatever_it_is_uploaded_as(
        api: TestClient, org: Org, attack: object, payload: str, fmt: str, content_type: str) -> None:
    """The upload stores inert bytes (named by their digest, never loaded); a model is what a
    registration makes of them, and that is where a pickle is refused."""
    name = group(org)
    response = api.post(f"/api/v1/accounts/{DEV}/artifacts", params={"format": fmt}, content=payloads()[payload],
                        headers={**auth(org.bearer("sam")), "content-type": content_type})
    assert response.status_code == 201, response.text
    digest = response.json()["sha256"]
    with attack() as seen:  # type: ignore[operator]
        response = api.post(f"/api/v1/accounts/{DEV}/registry/groups/{name}/packages",
                            json=package_body("model." + fmt, digest, fmt),
                            headers={**auth(org.bearer("sam")), "content-type": "application/json"})
        assert refused(response, 400)["type"] == "ValidationError"
    seen.assert_audited(actor="sam")
    assert not os.path.exists("/tmp/charter-pwned")


@pytest.mark.parametrize("fmt", ["pickle", "pkl", "joblib", "cloudpickle", "dill", "torch", "pytorch", "sklearn",
                                 "keras", "python", "PICKLE", "skops ", "onnx\x00pickle", ""])
def test_a_declared_format_other_than_a_safe_one_is_refused(api: TestClient, org: Org, attack: object,
                                                            fmt: str) -> None:
    name = group(org)
    response = api.post(f"/api/v1/accounts/{DEV}/artifacts", content=payloads()["joblib"],
                        headers={**auth(org.bearer("sam")), "content-type": "application/octet-stream"})
    digest = response.json()["sha256"]
    with attack():  # type: ignore[operator]
        response = api.post(f"/api/v1/accounts/{DEV}/registry/groups/{name}/packages",
                            json=package_body("model.bin", digest, fmt), headers=auth(org.bearer("sam")))
        refused(response, 400)
    assert not os.path.exists("/tmp/charter-pwned")
