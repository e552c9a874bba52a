"""Endpoint workers: model processes apart from the control plane, and the channel to them."""
