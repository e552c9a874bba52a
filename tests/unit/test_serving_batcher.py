"""The endpoint worker's batcher: requests that arrive together are predicted in one call, and
each still gets only its own rows' predictions or its own error."""

from __future__ import annotations

from typing import Any

from charter.adapters.serving.worker import Batcher


class Model:
    """Doubles the first column; refuses a row with a string in it (as a numeric model does)."""

    def __init__(self, batch_size: int | None = None) -> None:
        self.calls: list[int] = []
        self.batch_size = batch_size

    def __call__(self, rows: list[list[Any]]) -> list[Any]:
        self.calls.append(len(rows))
        if self.batch_size is not None and len(rows) != self.batch_size:
            raise ValueError(f"the model takes batches of {self.batch_size} rows")
        if any(isinstance(v, str) for row in rows for v in row):
            raise ValueError("could not convert string to float")
        return [row[0] * 2 for row in rows]


def predict(*rows: list[Any]) -> dict[str, Any]:
    return {"op": "predict", "rows": list(rows)}


def test_requests_that_arrive_together_are_predicted_in_one_call_and_split_back() -> None:
    model = Model()
    answers = Batcher(model).answer([predict([1], [2]), predict([3]), predict([4], [5], [6])])
    assert answers == [{"ok": True, "predictions": [2, 4]}, {"ok": True, "predictions": [6]},
                       {"ok": True, "predictions": [8, 10, 12]}]
    assert model.calls == [6]


def test_a_bad_request_fails_alone_and_the_others_are_answered() -> None:
    model = Model()
    answers = Batcher(model).answer([predict([1]), predict(["x"]), predict([3])])
    assert answers[0] == {"ok": True, "predictions": [2]} and answers[2] == {"ok": True, "predictions": [6]}
    assert answers[1]["ok"] is False and answers[1]["kind"] == "input"
    assert "string" in answers[1]["error"]


def test_a_model_that_cannot_take_joint_batches_is_no_longer_batched() -> None:
    model = Model(batch_size=1)
    batcher = Batcher(model)
    assert batcher.answer([predict([1]), predict([2])]) == [{"ok": True, "predictions": [2]},
                                                            {"ok": True, "predictions": [4]}]
    assert batcher.batchable is False
    model.calls.clear()
    batcher.answer([predict([1]), predict([2])])
    assert model.calls == [1, 1]


def test_batches_are_cut_at_the_row_limit_and_other_requests_are_answered_in_place() -> None:
    model = Model()
    answers = Batcher(model, max_rows=3).answer(
        [predict([1], [1]), {"op": "ping"}, predict([2], [2]), predict([3]), {"op": "nonsense"}])
    assert [a["ok"] for a in answers] == [True, True, True, True, False]
    assert answers[0]["predictions"] == [2, 2] and answers[2]["predictions"] == [4, 4]
    assert answers[3]["predictions"] == [6] and "pid" in answers[1]
    assert model.calls == [2, 3]  # [1,1] alone (adding [2,2] passes 3 rows), then [2,2]+[3]
