"""The steps of the train-from-dataset pipeline (pipelines/train.yaml)."""
